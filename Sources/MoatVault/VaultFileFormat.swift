import Crypto
import Foundation
import MoatCore

/// The fixed-size start of `vault.moat`, authenticated as the AEAD's associated data.
///
///     offset  size  field
///          0     8  magic "MOATVLT" followed by a zero byte
///          8     2  format version, big-endian (1)
///         10     1  KDF id (1 = Argon2id, version 0x13)
///         11     4  Argon2 memory in KiB, big-endian
///         15     4  Argon2 iterations, big-endian
///         19     4  Argon2 parallelism, big-endian
///         23    32  salt
///         55    12  AES-256-GCM nonce (fresh for every write)
///         67     …  ciphertext
///   end - 16    16  GCM tag
///
/// Everything before the ciphertext (magic through nonce) is the associated data: changing a parameter
/// or the salt makes decryption fail even when the new values would be accepted.
public struct VaultHeader: Sendable, Equatable {
    static let magic: [UInt8] = Array("MOATVLT".utf8) + [0]
    static let formatVersion: UInt16 = 1
    static let kdfArgon2id: UInt8 = 1
    static let saltLength = 32
    static let nonceLength = 12
    static let tagLength = 16
    /// Bytes from the start of the file to the end of the salt.
    static let length = 8 + 2 + 1 + 4 + 4 + 4 + saltLength
    /// The smallest well-formed file: header, nonce, an empty ciphertext and the tag.
    static let minimumFileLength = length + nonceLength + tagLength

    /// The key-derivation cost.
    public let parameters: Argon2Parameters
    let salt: [UInt8]
    /// The first 8 bytes: the vault's, or another file's that shares this layout (a backup archive).
    let magic: [UInt8]

    init(parameters: Argon2Parameters, salt: [UInt8], magic: [UInt8] = Self.magic) {
        self.parameters = parameters
        self.salt = salt
        self.magic = magic
    }

    var encoded: [UInt8] {
        var bytes = magic
        bytes += [UInt8(Self.formatVersion >> 8), UInt8(Self.formatVersion & 0xff), Self.kdfArgon2id]
        for value in [parameters.memoryKiB, parameters.iterations, parameters.parallelism] {
            bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
        }
        return bytes + salt
    }

    /// Parses and checks the header of a whole vault file. Errors name the file and the field.
    ///
    /// The downgrade guard lives here: parameters below the floor are refused before any key is derived.
    /// `magic` and `what` ("vault", "backup") let a file of the same layout share this parser.
    static func parse(
        _ file: [UInt8],
        path: String,
        magic: [UInt8] = Self.magic,
        what: String = "vault"
    ) throws(VaultError) -> VaultHeader {
        let remedy = what == "vault" ? "restore it from a backup" : "use an intact copy of the \(what)"
        guard file.count >= magic.count, Array(file[0..<magic.count]) == magic else {
            throw VaultError(
                .corrupt,
                "\(path) is not a Moat \(what) (bytes 0-7 are not the \(what) magic); \(remedy)"
            )
        }
        guard file.count >= minimumFileLength else {
            throw VaultError(
                .corrupt,
                "\(path) is truncated (\(file.count) bytes; a \(what) has at least \(minimumFileLength)); \(remedy)"
            )
        }
        let version = UInt16(file[8]) << 8 | UInt16(file[9])
        guard version == formatVersion else {
            throw VaultError(
                .unsupportedVersion,
                "\(path) has format version \(version) (byte 8); this Moat reads version \(formatVersion): "
                    + "upgrade Moat, or \(remedy)"
            )
        }
        guard file[10] == kdfArgon2id else {
            throw VaultError(
                .unsupportedVersion,
                "\(path) names key-derivation function \(file[10]) (byte 10), which this Moat does not know"
            )
        }
        func u32(_ offset: Int) -> UInt32 {
            file[offset..<(offset + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        let parameters = Argon2Parameters(uncheckedMemoryKiB: u32(11), iterations: u32(15), parallelism: u32(19))
        try parameters.checkVaultBounds(source: "\(path): the header (bytes 11-22)")
        return VaultHeader(parameters: parameters, salt: Array(file[23..<length]), magic: magic)
    }
}

/// Encrypts and decrypts whole vault files with AES-256-GCM (swift-crypto).
enum VaultCipher {
    /// `header | nonce | AES-256-GCM(payload) | tag`, with a fresh random nonce.
    static func seal(payload: SecretBytes, header: VaultHeader, key: SecretBytes) throws(VaultError) -> [UInt8] {
        let associated = header.encoded
        let nonce = AES.GCM.Nonce()
        do {
            let box = try key.withUnsafeBytes { keyBytes in
                try payload.withUnsafeBytes { plaintext in
                    try AES.GCM.seal(
                        plaintext,
                        using: SymmetricKey(data: keyBytes),
                        nonce: nonce,
                        authenticating: associated + Array(nonce)
                    )
                }
            }
            return associated + Array(nonce) + Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw VaultError(.io, "encryption failed: \(error)")
        }
    }

    /// Authenticates and decrypts `file`, then hands the plaintext to `body` and wipes it.
    ///
    /// A failure cannot tell a wrong key from a changed byte: GCM only says the tag does not match.
    static func open<Result>(
        file: [UInt8],
        header: VaultHeader,
        key: SecretBytes,
        failure: @autoclosure () -> VaultError,
        _ body: (UnsafeRawBufferPointer) throws(VaultError) -> Result
    ) throws(VaultError) -> Result {
        let nonceStart = VaultHeader.length
        let cipherStart = nonceStart + VaultHeader.nonceLength
        let tagStart = file.count - VaultHeader.tagLength
        var plaintext: Data
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: file[nonceStart..<cipherStart]),
                ciphertext: file[cipherStart..<tagStart],
                tag: file[tagStart...]
            )
            plaintext = try key.withUnsafeBytes { keyBytes in
                try AES.GCM.open(box, using: SymmetricKey(data: keyBytes), authenticating: file[0..<cipherStart])
            }
        } catch {
            throw failure()
        }
        defer { plaintext.withUnsafeMutableBytes { SecretBytes.wipe($0) } }
        // Data.withUnsafeBytes only rethrows untyped errors: carry the result out instead.
        let result: Swift.Result<Result, VaultError> = plaintext.withUnsafeBytes { bytes in
            do throws(VaultError) { return .success(try body(bytes)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
