public import MoatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a password, PIN or secret value comes from. Never argv, never an environment variable: both
/// leak through process listings, `/proc`, crash reports and child processes.
public enum SecretSource: Sendable, Equatable {
    /// Asked on the controlling terminal (`/dev/tty`) with echo off.
    case terminal
    /// Read from a file (a password file keeps one trailing newline out; a value file is taken exactly).
    case file(String)
    /// Read from standard input until end of file, one trailing newline removed.
    case standardInput
}

/// Reads secrets from a terminal, a file or standard input straight into ``SecretBytes``.
public enum SecretInput {
    /// The shortest master password accepted, in characters.
    public static let minimumPasswordLength = 12
    /// The longest password or PIN accepted, in bytes.
    public static let maximumPasswordBytes = 1024

    /// Whether a person can be asked: standard input is a terminal and `/dev/tty` opens.
    public static var terminalAvailable: Bool {
        guard isatty(STDIN_FILENO) == 1 else { return false }
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// Reads a master password: at least 12 characters; on a terminal asked twice when `confirm`.
    public static func password(
        from source: SecretSource,
        prompt: String = "Master password: ",
        confirm: Bool
    ) throws(VaultError) -> SecretBytes {
        let password = try readSecret(from: source, prompt: prompt, limit: maximumPasswordBytes, exact: false)
        try checkPassword(password)
        try confirmOnTerminal(password, source: source, confirm: confirm, prompt: "Repeat it: ", what: "passwords")
        return password
    }

    /// Reads a PIN. With `confirm` it is a new one: at least ``VaultSeal/minimumPINLength`` characters,
    /// asked twice on a terminal. Without, it opens an existing seal (possibly an older, shorter one).
    public static func pin(from source: SecretSource, confirm: Bool) throws(VaultError) -> SecretBytes {
        let pin = try readSecret(from: source, prompt: "Seal PIN: ", limit: maximumPasswordBytes, exact: false)
        if confirm {
            try VaultSeal.checkPIN(pin)
        } else if characterCount(pin) < 4 {
            // No seal was ever written with a shorter PIN (format 1 took 4 characters and up).
            throw VaultError(.badInput, "the PIN is too short: no seal has a PIN under 4 characters")
        }
        try confirmOnTerminal(pin, source: source, confirm: confirm, prompt: "Repeat the PIN: ", what: "PINs")
        return pin
    }

    /// On a terminal, asks again and refuses a mismatch: a typo would otherwise lock the owner out.
    private static func confirmOnTerminal(
        _ first: SecretBytes,
        source: SecretSource,
        confirm: Bool,
        prompt: String,
        what: String
    ) throws(VaultError) {
        guard confirm && source == .terminal else { return }
        let again = try readSecret(from: .terminal, prompt: prompt, limit: maximumPasswordBytes, exact: false)
        guard again == first else { throw VaultError(.badInput, "the two \(what) differ; nothing changed") }
    }

    /// Reads a secret value: from a file byte for byte, from standard input or a terminal without its
    /// trailing newline. Empty values and values over 1 MiB are refused.
    public static func value(from source: SecretSource, name: String) throws(VaultError) -> SecretBytes {
        let value = try readSecret(
            from: source,
            prompt: "Value of \(name): ",
            limit: SecretEntry.maximumValueBytes,
            exact: { if case .file = source { true } else { false } }()
        )
        guard !value.isEmpty else { throw VaultError(.invalidValue, "the value of \(name) is empty; nothing changed") }
        return value
    }

    /// Refuses passwords shorter than ``minimumPasswordLength`` characters.
    public static func checkPassword(_ password: SecretBytes) throws(VaultError) {
        guard characterCount(password) >= minimumPasswordLength else {
            throw VaultError(
                .badInput,
                "the password is too short: use at least \(minimumPasswordLength) characters "
                    + "(a few random words work well)"
            )
        }
    }

    /// Unicode scalars in UTF-8 text (continuation bytes not counted); every byte when not UTF-8.
    static func characterCount(_ secret: SecretBytes) -> Int {
        secret.withUnsafeBytes { bytes in bytes.reduce(0) { $0 + ($1 & 0xc0 == 0x80 ? 0 : 1) } }
    }

    static func readSecret(from source: SecretSource, prompt: String, limit: Int, exact: Bool) throws(VaultError)
        -> SecretBytes
    {
        switch source {
        case .terminal:
            return try readTerminal(prompt: prompt, limit: limit)
        case .file(let path):
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw VaultFileSystem.ioError("cannot read \(path)") }
            defer { close(fd) }
            return try readAll(fd, limit: limit, what: path, stripNewline: !exact)
        case .standardInput:
            return try readAll(STDIN_FILENO, limit: limit, what: "standard input", stripNewline: true)
        }
    }

    /// Reads `fd` to its end into secret memory; refuses more than `limit` bytes.
    static func readAll(_ fd: Int32, limit: Int, what: String, stripNewline: Bool) throws(VaultError) -> SecretBytes {
        var length = 0
        var failure: VaultError?
        let buffer = SecretBytes(count: limit + 1) { buffer in
            while length < buffer.count {
                let count = read(fd, buffer.baseAddress! + length, buffer.count - length)
                if count < 0 && errno == EINTR { continue }
                if count < 0 {
                    failure = VaultFileSystem.ioError("cannot read \(what)")
                    return
                }
                if count == 0 { break }
                length += count
            }
        }
        if let failure { throw failure }
        guard length <= limit else {
            throw VaultError(.invalidValue, "\(what) holds more than \(limit) bytes; nothing changed")
        }
        return buffer.withUnsafeBytes { bytes in
            var end = length
            if stripNewline && end > 0 && bytes[end - 1] == UInt8(ascii: "\n") {
                end -= 1
                if end > 0 && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            }
            return SecretBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
        }
    }

    /// Asks on `/dev/tty` with echo off. Signals from the keyboard are turned off too, so Ctrl-C arrives
    /// as a character and is handled here: the terminal is always restored, never left without echo.
    static func readTerminal(prompt: String, limit: Int) throws(VaultError) -> SecretBytes {
        guard isatty(STDIN_FILENO) == 1 else {
            throw VaultError(
                .noTerminal,
                "no terminal to ask for it on: use --password-file FILE or --password-stdin (never an argument)"
            )
        }
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            throw VaultError(.noTerminal, "cannot open /dev/tty: use --password-file FILE or --password-stdin")
        }
        defer { close(fd) }
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { throw VaultFileSystem.ioError("cannot read the terminal settings") }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO | ISIG)
        quiet.c_lflag |= tcflag_t(ECHONL)
        _ = prompt.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        guard tcsetattr(fd, TCSAFLUSH, &quiet) == 0 else {
            throw VaultFileSystem.ioError("cannot turn off terminal echo")
        }
        defer { tcsetattr(fd, TCSAFLUSH, &saved) }
        var length = 0
        var cancelled = false
        let line = SecretBytes(count: limit + 1) { buffer in
            while length < buffer.count {
                let count = read(fd, buffer.baseAddress! + length, 1)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    cancelled = true
                    return
                }
                let byte = buffer[length]
                if byte == 0x03 {
                    cancelled = true
                    return
                }
                if byte == UInt8(ascii: "\n") { return }
                length += 1
            }
        }
        if cancelled { throw VaultError(.cancelled, "cancelled; nothing changed") }
        guard length <= limit else { throw VaultError(.invalidValue, "the input is longer than \(limit) bytes") }
        return line.withUnsafeBytes { bytes in
            var end = length
            if end > 0 && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            return SecretBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
        }
    }
}
