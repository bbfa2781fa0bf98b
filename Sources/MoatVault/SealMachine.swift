import Foundation
public import MoatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What a seal is bound to on this machine: a machine secret where the machine has one (systemd's
/// credential host key, with the TPM2 as well when there is one), else only the machine fingerprint.
///
/// Tests inject their own: a fingerprint of their choosing, and systemd-creds with a host key file of
/// their own, so a test run never creates or uses the machine's real host key.
public struct SealMachine: Sendable {
    /// The fingerprint: the whole binding when there is no machine secret.
    public var fingerprint: MachineFingerprint
    /// systemd-creds, when it is installed; nil seals to the fingerprint alone.
    public var hostKey: SystemdCredentials?

    public init(fingerprint: MachineFingerprint, hostKey: SystemdCredentials?) {
        self.fingerprint = fingerprint
        self.hostKey = hostKey
    }

    /// This machine: its fingerprint, and systemd-creds when it is installed.
    public static func current() -> SealMachine {
        SealMachine(fingerprint: .current(), hostKey: SystemdCredentials.installed())
    }
}

/// `systemd-creds encrypt/decrypt` with the machine's credential host key
/// (`/var/lib/systemd/credential.secret`, readable by root only), and the TPM2 as well where
/// `/dev/tpmrm0` exists. Only the seal's 32-byte machine share passes through it, on a pipe.
public struct SystemdCredentials: Sendable {
    /// The absolute path of `systemd-creds`; never looked up in `PATH`.
    public let tool: String
    /// The host key file for this tool only (`SYSTEMD_CREDENTIAL_SECRET`), for tests; nil uses systemd's.
    public let hostKeyFile: String?
    /// Whether to try binding to the TPM2 as well as the host key.
    public let useTPM: Bool

    /// The credential name systemd-creds binds into the ciphertext and checks on decryption.
    static let credentialName = "moat-vault-seal"
    /// The longest credential Moat accepts back from systemd-creds (a 32-byte one is about 300 bytes).
    static let maximumCredentialLength = 4096

    public init(tool: String, hostKeyFile: String? = nil, useTPM: Bool = false) {
        self.tool = tool
        self.hostKeyFile = hostKeyFile
        self.useTPM = useTPM
    }

    /// systemd-creds from `/usr/bin` or `/bin`, when installed.
    public static func installed() -> SystemdCredentials? {
        for path in ["/usr/bin/systemd-creds", "/bin/systemd-creds"] where access(path, X_OK) == 0 {
            return SystemdCredentials(tool: path, useTPM: access("/dev/tpmrm0", F_OK) == 0)
        }
        return nil
    }

    /// Encrypts `share` with the host key, and the TPM2 when `withTPM`; the result is not secret.
    func encrypt(_ share: SecretBytes, withTPM: Bool) throws(VaultError) -> [UInt8] {
        try encrypt(share, name: Self.credentialName, key: withTPM ? "host+tpm2" : "host")
    }

    /// Encrypts `secret` as the credential `name` with the host key, for a unit's
    /// `LoadCredentialEncrypted=` (the seal's PIN for `moat service install`); the result is not secret.
    public func encryptCredential(_ secret: SecretBytes, name: String) throws(VaultError) -> [UInt8] {
        try encrypt(secret, name: name, key: "host")
    }

    private func encrypt(_ secret: SecretBytes, name: String, key: String) throws(VaultError) -> [UInt8] {
        let (status, output, errors) = try run(
            ["encrypt", "--name=\(name)", "--with-key=\(key)", "-", "-"], input: secret
        ) { fd throws(VaultError) in try Self.readOutput(fd, limit: Self.maximumCredentialLength) }
        guard status == 0, !output.isEmpty else {
            throw VaultError(.io, "systemd-creds encrypt --with-key=\(key) failed: \(errors)")
        }
        return output
    }

    /// Decrypts a credential written by ``encrypt(_:)`` into a `length`-byte secret.
    func decrypt(_ credential: [UInt8], length: Int) throws(VaultError) -> SecretBytes {
        let (status, share, errors) = try run(
            ["decrypt", "--name=\(Self.credentialName)", "-", "-"],
            input: credential.withUnsafeBytes { SecretBytes(copying: $0) }
        ) { fd throws(VaultError) in
            var complete = false
            let share = SecretBytes(count: length) { buffer in
                complete = Self.readExactly(fd, into: buffer) && Self.readAll(fd, limit: 0) != nil
            }
            return complete ? share : nil
        }
        guard status == 0, let share else {
            throw VaultError(.sealDidNotOpen, "systemd-creds decrypt failed: \(errors)")
        }
        return share
    }

    /// Runs the tool with `input` already in its standard input (so it can never block on it),
    /// waits at most 30 seconds, then hands its standard output to `output`.
    private func run<Output>(
        _ arguments: [String],
        input: SecretBytes,
        output: (Int32) throws(VaultError) -> Output
    ) throws(VaultError) -> (Int32, Output, String) {
        var environment: [String: String]?
        if let hostKeyFile {
            environment = ProcessInfo.processInfo.environment
            environment?["SYSTEMD_CREDENTIAL_SECRET"] = hostKeyFile
        }
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        // The input is at most a few hundred bytes, well inside a pipe's buffer.
        let written = input.withUnsafeBytes { bytes in
            bytes.isEmpty ? 0 : write(stdin.fileHandleForWriting.fileDescriptor, bytes.baseAddress, bytes.count)
        }
        try? stdin.fileHandleForWriting.close()
        guard written == input.count else { throw VaultError(.io, "cannot write to a pipe for \(tool)") }
        let process: ChildProcess
        do {
            process = try ChildProcess(
                tool, arguments, environment: environment, standardInput: .pipe(stdin), standardOutput: .pipe(stdout),
                standardError: .pipe(stderr))
        } catch {
            throw VaultError(.io, "cannot run \(tool): \(error)")
        }
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        // The outputs are small: the tool could finish writing them before it exited.
        let result = try output(stdout.fileHandleForReading.fileDescriptor)
        let errorBytes = Self.readAll(stderr.fileHandleForReading.fileDescriptor, limit: 4096) ?? []
        let firstLine = String(decoding: errorBytes, as: UTF8.self)
            .split(separator: "\n").first { !$0.contains("not located on encrypted media") }
        let reason = process.terminatedBySignal ? "killed after 30 seconds" : "exit status"
        let errors = firstLine.map(String.init) ?? "\(reason) \(process.terminationStatus)"
        return (process.terminationStatus, result, PrintableText.strip(errors))
    }

    /// Reads `fd` to its end; nil when there is more than `limit` bytes.
    private static func readAll(_ fd: Int32, limit: Int) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += chunk[0..<count]
            if bytes.count > limit { return nil }
        }
        return bytes
    }

    private static func readOutput(_ fd: Int32, limit: Int) throws(VaultError) -> [UInt8] {
        guard let bytes = readAll(fd, limit: limit) else {
            throw VaultError(.io, "systemd-creds wrote more than \(limit) bytes")
        }
        return bytes
    }

    /// Fills `buffer` from `fd`; false when the stream ends first.
    private static func readExactly(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        var offset = 0
        while offset < buffer.count {
            let count = read(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return false }
            offset += count
        }
        return true
    }
}
