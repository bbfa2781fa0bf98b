import Crypto
import Foundation
public import MoatCore

/// `vault.seal`: the vault's 32-byte key (never the master password) encrypted to this machine, so
/// `moat serve` can start unattended.
///
///     offset  size  field
///          0     8  magic "MOATSEAL"
///          8     1  format version (2)
///          9     1  flags: bit 0 set when a PIN is part of the key
///         10     1  machine secret: 1 = none (fingerprint only), 2 = systemd host key, 3 = host key + TPM2
///         11     1  KDF id (1 = Argon2id, version 0x13)
///         12    12  Argon2 memory KiB, iterations, parallelism (u32 big-endian each)
///         24    16  salt (random)
///         40     2  length n of the credential (u16 big-endian; 0 for a fingerprint-only seal)
///         42     n  systemd credential holding the 32-byte machine share
///     42 + n    12  AES-256-GCM nonce
///     54 + n     …  ciphertext
///   end - 16    16  GCM tag
///
/// key = Argon2id(password: PIN or empty, salt, secret: machine share, m, t, p), where the machine share
/// is what systemd-creds decrypts with the host key, or SHA-256 of the fingerprint when the machine has
/// no secret Moat can use. Everything before the ciphertext is the associated data. The plaintext is
/// `u8 count` and one or two 32-byte vault keys: two only while a re-key is in flight, so that a crash
/// between writing the new seal and the new vault still leaves a seal that opens whichever vault is on
/// disk. The parameters must be exactly the ones Moat writes for the PIN flag, checked before any
/// derivation. Format 1 (Moat before issue 13) held the master password itself; it still opens, and
/// `moat vault seal` replaces it.
public enum VaultSeal {
    /// What binds a seal to the machine.
    public enum Protection: UInt8, Sendable {
        /// The machine fingerprint alone: nothing secret.
        case fingerprint = 1
        /// systemd's credential host key (`/var/lib/systemd/credential.secret`, root only).
        case hostKey = 2
        /// The host key and the machine's TPM2.
        case hostKeyAndTPM = 3
    }

    /// What can be read from a seal without opening it.
    public struct Info: Sendable, Equatable {
        /// Whether the seal needs a PIN.
        public let hasPIN: Bool
        /// What binds it to this machine.
        public let protection: Protection
        /// A format-1 seal, written by an older Moat: it holds the master password itself.
        public let holdsPassword: Bool

        public init(hasPIN: Bool, protection: Protection, holdsPassword: Bool = false) {
            self.hasPIN = hasPIN
            self.protection = protection
            self.holdsPassword = holdsPassword
        }

        /// How the seal is bound, in a few words.
        public var binding: String {
            switch protection {
            case .fingerprint: "to the machine fingerprint only (no machine secret)"
            case .hostKey: "with this machine's systemd credential host key"
            case .hostKeyAndTPM: "with this machine's TPM2 and systemd credential host key"
            }
        }

        /// What someone holding a copy of the state directory can do with this seal.
        public var exposure: String {
            let guess = "guess the PIN offline, at one \(VaultSeal.pinParameters) per guess"
            let copy: String
            switch (protection, hasPIN) {
            case (.fingerprint, false):
                copy =
                    "a copy of the state directory plus this machine's host name and /etc/machine-id (readable "
                    + "by every local user) opens the vault"
            case (.fingerprint, true):
                copy =
                    "a copy of the state directory plus this machine's host name and /etc/machine-id lets one \(guess)"
            case (.hostKey, false):
                copy =
                    "a copy of the state directory, even with the host name and machine-id, does not open the "
                    + "vault; root on this machine, or a copy of the whole disk (which holds the host key), does"
            case (.hostKey, true):
                copy =
                    "a copy of the state directory, even with the host name and machine-id, does not open the "
                    + "vault; root on this machine, or a copy of the whole disk, can \(guess)"
            case (.hostKeyAndTPM, false):
                copy =
                    "a copy of the state directory or of the whole disk does not open the vault without this "
                    + "machine's TPM2; root on this running machine does"
            case (.hostKeyAndTPM, true):
                copy =
                    "a copy of the state directory or of the whole disk does not open the vault without this "
                    + "machine's TPM2; root on this running machine can \(guess)"
            }
            guard holdsPassword else { return copy }
            return
                "this seal was written by an older Moat and holds the master password itself (\(copy), and "
                + "learns the password, which opens every copy of vault.moat made with it): seal again with "
                + "moat vault seal, then change the password with moat vault rekey"
        }
    }

    /// A seal just written, and why no machine secret was used when none was.
    public struct Written: Sendable {
        public let info: Info
        /// Why the seal is bound to the fingerprint only, when systemd-creds was missing or failed.
        public let hostKeyProblem: String?
    }

    static let magic: [UInt8] = Array("MOATSEAL".utf8)
    static let version: UInt8 = 2
    static let kdfArgon2id: UInt8 = 1
    static let saltLength = 16
    static let keyLength = 32
    /// Bytes from the start of the file to the end of the credential length.
    static let fixedHeaderLength = 8 + 1 + 1 + 1 + 1 + 12 + saltLength + 2
    /// A seal without a PIN: the machine share is either 32 random bytes or public, so stretching it
    /// would buy nothing; m = 8 MiB, t = 1, p = 1.
    static let parameters = Argon2Parameters(uncheckedMemoryKiB: 8 * 1024, iterations: 1, parallelism: 1)
    /// A seal with a PIN: each offline guess costs what a guess of the vault's password costs.
    public static let pinParameters = Argon2Parameters.recommended
    /// The shortest PIN `moat vault seal --pin` accepts: searching 14 random digits at one 64 MiB,
    /// t = 3 Argon2id per guess takes about 300,000 core-years on average (figures in Docs/Vault.md).
    public static let minimumPINLength = 14

    /// Refuses a new PIN shorter than ``minimumPINLength``.
    public static func checkPIN(_ pin: SecretBytes) throws(VaultError) {
        guard SecretInput.characterCount(pin) >= minimumPINLength else {
            throw VaultError(
                .badInput,
                "the PIN is too short: use at least \(minimumPINLength) characters (digits or any others), "
                    + "so that someone with a copy of the state directory cannot guess it offline; nothing changed"
            )
        }
    }

    /// Reads the header of the seal at `path`; nil when there is no seal.
    public static func inspect(_ path: String) throws(VaultError) -> Info? {
        guard let (file, _) = try VaultFileSystem.readFile(path, limit: 1 << 16) else { return nil }
        return try SealFile.parse(file, path: path).info
    }

    /// Encrypts `keys` (the first is the current one) with a fresh machine share and replaces the seal
    /// file. With `requireHostKey`, a host key that cannot be used is an error rather than a fallback
    /// to the fingerprint (a re-key must not weaken a seal). The caller holds the vault lock.
    @discardableResult
    static func write(
        keys: [SecretBytes],
        pin: SecretBytes?,
        machine: SealMachine,
        requireHostKey: Bool = false,
        to path: String
    ) throws(VaultError) -> Written {
        precondition((1...2).contains(keys.count) && keys.allSatisfy { $0.count == keyLength })
        if let pin { try checkPIN(pin) }
        var protection = Protection.fingerprint
        var credential: [UInt8] = []
        var share = machine.fingerprint.digest.withUnsafeBytes { SecretBytes(copying: $0) }
        var problem = "systemd-creds is not installed"
        // The strongest binding that works: host key and TPM2, host key alone, the fingerprint.
        if let hostKey = machine.hostKey {
            let random = Sodium.randomSecret(keyLength)
            for withTPM in hostKey.useTPM ? [true, false] : [false] where protection == .fingerprint {
                do {
                    credential = try hostKey.encrypt(random, withTPM: withTPM)
                    share = random
                    protection = withTPM ? .hostKeyAndTPM : .hostKey
                } catch {
                    problem = error.message
                }
            }
        }
        if protection == .fingerprint && requireHostKey {
            throw VaultError(
                .io,
                "the seal used this machine's host key, which cannot be used now (\(problem)); nothing changed. "
                    + "Run the command as the user who sealed (root for the host key), or seal again: moat vault seal"
            )
        }
        let cost = pin == nil ? parameters : pinParameters
        let salt = Sodium.randomBytes(saltLength)
        var header = magic + [version, pin == nil ? 0 : 1, protection.rawValue, kdfArgon2id]
        for value in [cost.memoryKiB, cost.iterations, cost.parallelism] {
            header += withUnsafeBytes(of: value.bigEndian, Array.init)
        }
        header += salt + withUnsafeBytes(of: UInt16(credential.count).bigEndian, Array.init) + credential
        let key = try Argon2id.deriveKey(
            password: pin ?? SecretBytes(count: 0) { _ in }, salt: salt, secret: share, parameters: cost)
        let plaintext = SecretBytes(count: 1 + keys.count * keyLength) { buffer in
            var writer = ByteWriter(buffer: buffer)
            writer.append(UInt8(keys.count))
            for vaultKey in keys { vaultKey.withUnsafeBytes { writer.append($0) } }
        }
        try VaultFileSystem.replace(path, with: try SealFile.encrypt(plaintext, header: header, key: key))
        return Written(
            info: Info(hasPIN: pin != nil, protection: protection),
            hostKeyProblem: protection == .fingerprint ? problem : nil
        )
    }

    /// Opens the seal at `path` (or the bytes in `data`, for tests) and returns what it holds: one or
    /// two vault keys, or, from a format-1 seal, passwords.
    static func open(
        path: String,
        pin: SecretBytes?,
        machine: SealMachine,
        data: [UInt8]? = nil
    ) throws(VaultError) -> [VaultCredential] {
        var stored = data
        if stored == nil { stored = try VaultFileSystem.readFile(path, limit: 1 << 16)?.0 }
        guard let file = stored else {
            throw VaultError(.notSealed, "\(path) does not exist: the vault is not sealed")
        }
        let parsed = try SealFile.parse(file, path: path)
        let info = parsed.info
        if info.hasPIN && pin == nil {
            throw VaultError(.noTerminal, "the seal has a PIN: give it with --pin-file FILE or on a terminal")
        }
        let password = info.hasPIN ? pin! : SecretBytes(count: 0) { _ in }
        if info.holdsPassword {
            let key = try Argon2id.deriveKey(
                password: password, salt: machine.fingerprint.digest, parameters: parsed.parameters)
            return try SealFile.decrypt(file, parsed: parsed, key: key, failure: failure(info), path: path)
        }
        let share: SecretBytes
        if info.protection == .fingerprint {
            share = machine.fingerprint.digest.withUnsafeBytes { SecretBytes(copying: $0) }
        } else {
            guard let hostKey = machine.hostKey else {
                throw hostKeyFailure("systemd-creds is not installed")
            }
            do {
                share = try hostKey.decrypt(parsed.credential, length: keyLength)
            } catch {
                throw hostKeyFailure(error.message)
            }
        }
        let key = try Argon2id.deriveKey(
            password: password, salt: parsed.salt, secret: share, parameters: parsed.parameters)
        return try SealFile.decrypt(file, parsed: parsed, key: key, failure: failure(info), path: path)
    }

    private static func hostKeyFailure(_ reason: String) -> VaultError {
        VaultError(
            .sealDidNotOpen,
            "the seal does not open with this machine's systemd credential host key (\(reason)): it was sealed "
                + "on another machine, the host key (/var/lib/systemd/credential.secret) changed, or this user "
                + "cannot read it (only root can). Unlock with the master password and seal again: moat vault seal"
        )
    }

    private static func failure(_ info: Info) -> VaultError {
        let message: String
        switch (info.protection, info.hasPIN) {
        case (.fingerprint, true):
            message =
                "the seal did not open: the PIN is wrong, or this is not the machine it was sealed on "
                + "(host name, OS, architecture or /etc/machine-id changed). If the PIN is right, "
                + "unlock with the master password and seal again: moat vault seal --pin"
        case (.fingerprint, false):
            message =
                "the seal does not open on this machine: it was sealed on another machine, or this "
                + "machine's host name, OS, architecture or /etc/machine-id changed. Unlock with the "
                + "master password and seal again: moat vault seal"
        case (_, true):
            message =
                "the seal did not open: the PIN is wrong (this machine's host key did open its part), or the "
                + "file was changed. If the PIN is right, unlock with the master password and seal again: "
                + "moat vault seal --pin"
        case (_, false):
            message =
                "the seal did not open although this machine's host key did: the file was changed or damaged. "
                + "Unlock with the master password and seal again: moat vault seal"
        }
        return VaultError(.sealDidNotOpen, message)
    }
}

/// Parsing and the AES-256-GCM layer of `vault.seal`, both formats.
enum SealFile {
    struct Parsed {
        let info: VaultSeal.Info
        let parameters: Argon2Parameters
        let salt: [UInt8]
        let credential: [UInt8]
        /// Where the nonce starts; the associated data is everything before the ciphertext.
        let nonceStart: Int
    }

    /// `header | nonce | AES-256-GCM(plaintext) | tag`, with a fresh random nonce.
    static func encrypt(_ plaintext: SecretBytes, header: [UInt8], key: SecretBytes) throws(VaultError) -> [UInt8] {
        let nonce = AES.GCM.Nonce()
        let associated = header + Array(nonce)
        do {
            let box = try key.withUnsafeBytes { keyBytes in
                try plaintext.withUnsafeBytes { bytes in
                    try AES.GCM.seal(
                        bytes, using: SymmetricKey(data: keyBytes), nonce: nonce, authenticating: associated)
                }
            }
            return associated + Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw VaultError(.io, "sealing failed: \(error)")
        }
    }

    /// Authenticates and decrypts the seal and reads what it holds; `failure` when the tag does not match.
    static func decrypt(
        _ file: [UInt8],
        parsed: Parsed,
        key: SecretBytes,
        failure: VaultError,
        path: String
    ) throws(VaultError) -> [VaultCredential] {
        let cipherStart = parsed.nonceStart + VaultHeader.nonceLength
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: file[parsed.nonceStart..<cipherStart]),
                ciphertext: file[cipherStart..<(file.count - VaultHeader.tagLength)],
                tag: file[(file.count - VaultHeader.tagLength)...]
            )
            var opened = try key.withUnsafeBytes { keyBytes in
                try AES.GCM.open(box, using: SymmetricKey(data: keyBytes), authenticating: file[0..<cipherStart])
            }
            defer { opened.withUnsafeMutableBytes { SecretBytes.wipe($0) } }
            return try opened.withUnsafeBytes { bytes throws(VaultError) in
                try contents(bytes, holdsPassword: parsed.info.holdsPassword, path: path)
            }
        } catch let error as VaultError {
            throw error
        } catch {
            throw failure
        }
    }

    /// `u8 count`, then per entry a 32-byte key, or (format 1) a `u16` length and a password.
    private static func contents(
        _ bytes: UnsafeRawBufferPointer,
        holdsPassword: Bool,
        path: String
    ) throws(VaultError) -> [VaultCredential] {
        var reader = ByteReader(bytes: bytes, path: path)
        let count = try reader.u8("key count")
        guard (1...2).contains(count) else { throw VaultError(.corrupt, "\(path): the seal holds \(count) keys") }
        var held: [VaultCredential] = []
        for _ in 0..<count {
            if holdsPassword {
                let length = Int(try reader.u16("password length"))
                held.append(.password(SecretBytes(copying: try reader.bytes(length, "password"))))
            } else {
                held.append(.key(SecretBytes(copying: try reader.bytes(VaultSeal.keyLength, "key"))))
            }
        }
        guard reader.isAtEnd else { throw VaultError(.corrupt, "\(path): trailing bytes in the seal") }
        return held
    }

    static func parse(_ file: [UInt8], path: String) throws(VaultError) -> Parsed {
        guard file.count >= VaultSeal.magic.count, Array(file[0..<VaultSeal.magic.count]) == VaultSeal.magic else {
            throw VaultError(.corrupt, "\(path) is not a Moat seal (bytes 0-7); delete it and run moat vault seal")
        }
        let truncated = VaultError(.corrupt, "\(path) is truncated; delete it and run moat vault seal")
        guard file.count >= 12 else { throw truncated }
        guard file[9] & ~1 == 0 else {
            throw VaultError(.corrupt, "\(path): unknown flags in byte 9; delete it and run moat vault seal")
        }
        let hasPIN = file[9] & 1 == 1
        func u32(_ offset: Int) -> UInt32 {
            file[offset..<(offset + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        if file[8] == 1 && file[10] == VaultSeal.kdfArgon2id {
            // Format 1: magic, version, flags, KDF id, m/t/p at 11, nonce at 23; always m = 8 MiB, t = 1, p = 1.
            guard file.count >= 23 + VaultHeader.nonceLength + VaultHeader.tagLength + 3 else { throw truncated }
            let parameters = Argon2Parameters(uncheckedMemoryKiB: u32(11), iterations: u32(15), parallelism: u32(19))
            try check(parameters, expected: VaultSeal.parameters, bytes: "11-22", path: path)
            return Parsed(
                info: VaultSeal.Info(hasPIN: hasPIN, protection: .fingerprint, holdsPassword: true),
                parameters: parameters, salt: [], credential: [], nonceStart: 23)
        }
        guard file[8] == VaultSeal.version, file[11] == VaultSeal.kdfArgon2id else {
            throw VaultError(
                .unsupportedVersion,
                "\(path) was written by a newer Moat (byte 8 or 11); upgrade Moat or run moat vault seal again"
            )
        }
        guard let protection = VaultSeal.Protection(rawValue: file[10]) else {
            throw VaultError(
                .corrupt, "\(path): unknown machine secret kind in byte 10; delete it and run moat vault seal")
        }
        guard file.count >= VaultSeal.fixedHeaderLength else { throw truncated }
        let parameters = Argon2Parameters(uncheckedMemoryKiB: u32(12), iterations: u32(16), parallelism: u32(20))
        let expected = hasPIN ? VaultSeal.pinParameters : VaultSeal.parameters
        try check(parameters, expected: expected, bytes: "12-23", path: path)
        let credentialLength = Int(file[40]) << 8 | Int(file[41])
        guard (credentialLength == 0) == (protection == .fingerprint),
            credentialLength <= SystemdCredentials.maximumCredentialLength
        else {
            throw VaultError(.corrupt, "\(path): bytes 40-41 give a wrong credential length; run moat vault seal")
        }
        let nonceStart = VaultSeal.fixedHeaderLength + credentialLength
        let minimum = nonceStart + VaultHeader.nonceLength + 1 + VaultSeal.keyLength + VaultHeader.tagLength
        guard file.count >= minimum else { throw truncated }
        return Parsed(
            info: VaultSeal.Info(hasPIN: hasPIN, protection: protection),
            parameters: parameters,
            salt: Array(file[24..<40]),
            credential: Array(file[VaultSeal.fixedHeaderLength..<nonceStart]),
            nonceStart: nonceStart
        )
    }

    /// A seal's parameters are exactly the ones Moat writes; anything else is refused before deriving.
    private static func check(
        _ parameters: Argon2Parameters,
        expected: Argon2Parameters,
        bytes: String,
        path: String
    ) throws(VaultError) {
        guard parameters == expected else {
            throw VaultError(
                .weakParameters,
                "\(path): the header (bytes \(bytes)) asks for \(parameters), but Moat writes only \(expected) "
                    + "for this kind of seal: the file was changed or damaged; delete it and run moat vault seal"
            )
        }
    }
}
