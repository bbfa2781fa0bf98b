import Crypto
import Foundation
import MoatCore

/// `vault.seal`: the vault password encrypted to this machine, so `moat serve` can start unattended.
///
///     offset  size  field
///          0     8  magic "MOATSEAL"
///          8     1  format version (1)
///          9     1  flags: bit 0 set when a PIN is part of the key
///         10     1  KDF id (1 = Argon2id, version 0x13)
///         11    12  Argon2 memory KiB, iterations, parallelism (u32 big-endian each)
///         23    12  AES-256-GCM nonce
///         35     …  ciphertext
///   end - 16    16  GCM tag
///
/// key = Argon2id(password: PIN or empty, salt: SHA-256(machine fingerprint), m = 8 MiB, t = 1, p = 1).
/// Bytes 0-34 are the associated data. The plaintext is one or two passwords (`u8 count`, then per
/// password `u16 length` and the bytes): two only while a re-key is in flight, so that a crash between
/// writing the new seal and the new vault still leaves a seal that opens whichever vault is on disk.
public enum VaultSeal {
    /// What can be read from a seal without opening it.
    public struct Info: Sendable, Equatable {
        /// Whether the seal needs a PIN.
        public let hasPIN: Bool
    }

    static let magic: [UInt8] = Array("MOATSEAL".utf8)
    static let version: UInt8 = 1
    static let headerLength = 8 + 1 + 1 + 1 + 12
    static let parameters = Argon2Parameters(uncheckedMemoryKiB: 8 * 1024, iterations: 1, parallelism: 1)
    /// The shortest PIN `moat vault seal --pin` accepts.
    public static let minimumPINLength = 4

    /// Reads the header of the seal at `path`; nil when there is no seal.
    public static func inspect(_ path: String) throws(VaultError) -> Info? {
        guard let (file, _) = try VaultFileSystem.readFile(path, limit: 1 << 16) else { return nil }
        return try parse(file, path: path).info
    }

    /// Encrypts `passwords` (the first is the current one) to `fingerprint` and replaces the seal file.
    /// The caller holds the vault lock.
    static func write(
        passwords: [SecretBytes],
        pin: SecretBytes?,
        fingerprint: MachineFingerprint,
        to path: String
    ) throws(VaultError) {
        precondition((1...2).contains(passwords.count))
        var header = magic + [version, pin == nil ? 0 : 1, 1]
        for value in [parameters.memoryKiB, parameters.iterations, parameters.parallelism] {
            header += [
                UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff),
            ]
        }
        let key = try Argon2id.deriveKey(
            password: pin ?? SecretBytes(count: 0) { _ in },
            salt: fingerprint.salt,
            parameters: parameters
        )
        let size = 1 + passwords.reduce(0) { $0 + 2 + $1.count }
        let plaintext = SecretBytes(count: size) { buffer in
            var writer = ByteWriter(buffer: buffer)
            writer.append(UInt8(passwords.count))
            for password in passwords {
                writer.append(UInt16(password.count))
                password.withUnsafeBytes { writer.append($0) }
            }
        }
        let nonce = AES.GCM.Nonce()
        let associated = header + Array(nonce)
        let box: AES.GCM.SealedBox
        do {
            box = try key.withUnsafeBytes { keyBytes in
                try plaintext.withUnsafeBytes { bytes in
                    try AES.GCM.seal(
                        bytes, using: SymmetricKey(data: keyBytes), nonce: nonce, authenticating: associated)
                }
            }
        } catch {
            throw VaultError(.io, "sealing failed: \(error)")
        }
        try VaultFileSystem.replace(path, with: associated + Array(box.ciphertext) + Array(box.tag))
    }

    /// Opens the seal at `path` (or the bytes in `data`, for tests) and returns the passwords it holds
    /// (normally one).
    static func open(
        path: String,
        pin: SecretBytes?,
        fingerprint: MachineFingerprint,
        data: [UInt8]? = nil
    ) throws(VaultError) -> [SecretBytes] {
        var stored = data
        if stored == nil { stored = try VaultFileSystem.readFile(path, limit: 1 << 16)?.0 }
        guard let file = stored else {
            throw VaultError(.notSealed, "\(path) does not exist: the vault is not sealed")
        }
        let parsed = try parse(file, path: path)
        if parsed.info.hasPIN && pin == nil {
            throw VaultError(.noTerminal, "the seal has a PIN: give it with --pin-file FILE or on a terminal")
        }
        let key = try Argon2id.deriveKey(
            password: parsed.info.hasPIN ? pin! : SecretBytes(count: 0) { _ in },
            salt: fingerprint.salt,
            parameters: parsed.parameters
        )
        let cipherStart = headerLength + VaultHeader.nonceLength
        let failure = VaultError(
            .sealDidNotOpen,
            parsed.info.hasPIN
                ? "the seal did not open: the PIN is wrong, or this is not the machine it was sealed on "
                    + "(host name, OS, architecture or /etc/machine-id changed). If the PIN is right, "
                    + "unlock with the master password and seal again: moat vault seal --pin"
                : "the seal does not open on this machine: it was sealed on another machine, or this "
                    + "machine's host name, OS, architecture or /etc/machine-id changed. Unlock with the "
                    + "master password and seal again: moat vault seal"
        )
        let plaintext: [SecretBytes]
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: file[headerLength..<cipherStart]),
                ciphertext: file[cipherStart..<(file.count - VaultHeader.tagLength)],
                tag: file[(file.count - VaultHeader.tagLength)...]
            )
            var opened = try key.withUnsafeBytes { keyBytes in
                try AES.GCM.open(box, using: SymmetricKey(data: keyBytes), authenticating: file[0..<cipherStart])
            }
            defer { opened.withUnsafeMutableBytes { SecretBytes.wipe($0) } }
            plaintext = try opened.withUnsafeBytes { bytes throws(VaultError) in
                var reader = ByteReader(bytes: bytes, path: path)
                var passwords: [SecretBytes] = []
                let count = try reader.u8("password count")
                guard (1...2).contains(count) else {
                    throw VaultError(.corrupt, "\(path): the seal holds \(count) passwords")
                }
                for _ in 0..<count {
                    let length = Int(try reader.u16("password length"))
                    passwords.append(SecretBytes(copying: try reader.bytes(length, "password")))
                }
                guard reader.isAtEnd else { throw VaultError(.corrupt, "\(path): trailing bytes in the seal") }
                return passwords
            }
        } catch let error as VaultError {
            throw error
        } catch {
            throw failure
        }
        return plaintext
    }

    private static func parse(_ file: [UInt8], path: String) throws(VaultError) -> (
        info: Info, parameters: Argon2Parameters
    ) {
        guard file.count >= magic.count, Array(file[0..<magic.count]) == magic else {
            throw VaultError(.corrupt, "\(path) is not a Moat seal (bytes 0-7); delete it and run moat vault seal")
        }
        guard file.count >= headerLength + VaultHeader.nonceLength + VaultHeader.tagLength + 3 else {
            throw VaultError(.corrupt, "\(path) is truncated; delete it and run moat vault seal")
        }
        guard file[8] == version, file[10] == 1 else {
            throw VaultError(
                .unsupportedVersion,
                "\(path) was written by a newer Moat (byte 8 or 10); upgrade Moat or run moat vault seal again"
            )
        }
        guard file[9] & ~1 == 0 else {
            throw VaultError(.corrupt, "\(path): unknown flags in byte 9; delete it and run moat vault seal")
        }
        func u32(_ offset: Int) -> UInt32 {
            file[offset..<(offset + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        let parameters = Argon2Parameters(uncheckedMemoryKiB: u32(11), iterations: u32(15), parallelism: u32(19))
        try parameters.checkCeiling(source: "\(path): the header (bytes 11-22)")
        return (Info(hasPIN: file[9] & 1 == 1), parameters)
    }
}
