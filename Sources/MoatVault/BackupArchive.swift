public import MoatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The file `moat backup` writes: the installation's files, encrypted under a backup passphrase.
///
/// The layout is the vault's (``VaultHeader``) with its own magic, so the same parser, downgrade guard,
/// cost ceiling and AES-256-GCM code serve both (Docs/Operations.md, "Backup and restore"):
///
///     offset  size  field
///          0     8  magic "MOATBAK" followed by a zero byte
///          8     2  format version, big-endian (1)
///         10     1  KDF id (1 = Argon2id, version 0x13)
///         11    12  Argon2 memory KiB, iterations, parallelism (u32 each, big-endian)
///         23    32  salt (random for every backup)
///         55    12  AES-256-GCM nonce (random for every backup)
///         67     …  ciphertext
///   end - 16    16  GCM tag
///
/// Key: `Argon2id(passphrase, salt, m, t, p)`; associated data: bytes 0-66. Plaintext: `u8 count`,
/// then per member `u8 name length, name (ASCII), u64 length, bytes`, in the order written.
public enum BackupArchive {
    static let magic: [UInt8] = Array("MOATBAK".utf8) + [0]
    /// The names a backup may hold; anything else in a decrypted archive is refused.
    public static let memberNames: Set<String> = ["moat.db", "vault.moat", "config.yaml"]

    /// One file of the installation, by its name in the state layout.
    public struct Member: Sendable, Equatable {
        public let name: String
        public let bytes: [UInt8]

        public init(name: String, bytes: [UInt8]) {
            self.name = name
            self.bytes = bytes
        }
    }

    /// Encrypts `members` under `passphrase` with a new salt and nonce and the vault's recommended
    /// key-derivation parameters.
    public static func seal(
        _ members: [Member],
        passphrase: SecretBytes,
        parameters: Argon2Parameters = .recommended
    ) throws(VaultError) -> [UInt8] {
        var plain: [UInt8] = [UInt8(members.count)]
        for member in members {
            guard memberNames.contains(member.name) else {
                throw VaultError(.badInput, "\(member.name) is not a file a backup holds")
            }
            plain += [UInt8(member.name.utf8.count)] + Array(member.name.utf8)
            plain += (0..<8).reversed().map { UInt8((UInt64(member.bytes.count) >> (8 * UInt64($0))) & 0xff) }
            plain += member.bytes
        }
        let payload = SecretBytes(wiping: &plain)
        let header = VaultHeader(
            parameters: parameters, salt: Sodium.randomBytes(VaultHeader.saltLength), magic: magic)
        let key = try Argon2id.deriveKey(password: passphrase, salt: header.salt, parameters: parameters)
        return try VaultCipher.seal(payload: payload, header: header, key: key)
    }

    /// Authenticates and decrypts an archive. A wrong passphrase, any changed byte and a cut-off file
    /// all fail here, before the caller writes anything.
    public static func open(_ file: [UInt8], passphrase: SecretBytes, path: String) throws(VaultError) -> [Member] {
        let header = try VaultHeader.parse(file, path: path, magic: magic, what: "backup")
        let key = try Argon2id.deriveKey(password: passphrase, salt: header.salt, parameters: header.parameters)
        let failure = VaultError(
            .cannotDecrypt,
            "\(path) does not open: the passphrase is wrong, or the file was changed or cut short "
                + "(AES-GCM cannot tell these apart); nothing was written"
        )
        return try VaultCipher.open(file: file, header: header, key: key, failure: failure) {
            (plain) throws(VaultError) -> [Member] in
            try decode(Array(plain), path: path)
        }
    }

    static func decode(_ plain: [UInt8], path: String) throws(VaultError) -> [Member] {
        var offset = 0
        func take(_ count: Int, _ field: String) throws(VaultError) -> ArraySlice<UInt8> {
            guard count >= 0, plain.count - offset >= count else {
                throw VaultError(.corrupt, "\(path): the decrypted payload ends inside \(field)")
            }
            defer { offset += count }
            return plain[offset..<(offset + count)]
        }
        let count = Int(try take(1, "the member count").first!)
        var members: [Member] = []
        for index in 0..<count {
            let nameLength = Int(try take(1, "member \(index + 1)'s name length").first!)
            let name = String(decoding: try take(nameLength, "member \(index + 1)'s name"), as: UTF8.self)
            guard memberNames.contains(name), !members.contains(where: { $0.name == name }) else {
                throw VaultError(.corrupt, "\(path): member \(index + 1) is named \(name), which a backup never holds")
            }
            let length = try take(8, "\(name)'s length").reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard length <= UInt64(Int.max) else { throw VaultError(.corrupt, "\(path): \(name) is too long") }
            members.append(Member(name: name, bytes: Array(try take(Int(length), "\(name)"))))
        }
        guard offset == plain.count else {
            throw VaultError(.corrupt, "\(path): \(plain.count - offset) bytes follow the last member")
        }
        return members
    }

    /// Reads `vault.moat` under the vault's shared lock and runs `body` with its bytes while the lock is
    /// still held: no `moat vault` change (each records its audit entry under the exclusive lock, then
    /// renames) can fall between the database copy `body` makes and the vault it is given.
    public static func withVaultFile<Result>(
        _ paths: VaultPaths,
        _ body: ([UInt8]) throws -> Result
    ) throws -> Result {
        try VaultLock.holding(paths.lock, .shared) { () throws(VaultError) -> Result in
            guard let (bytes, _) = try VaultFileSystem.readFile(paths.vault) else {
                throw VaultError(.notFound, "there is no vault at \(paths.vault)")
            }
            do { return try body(bytes) } catch let error as VaultError { throw error } catch {
                throw VaultError(.io, "\(error)")
            }
        }
    }

    /// Writes `bytes` to `path` with mode 0600 through a flushed temporary file, then links it in place
    /// (refused when `path` exists, unless `replacing`) or renames it over the old file.
    public static func write(_ bytes: [UInt8], to path: String, replacing: Bool) throws(VaultError) {
        let staged = try VaultFileSystem.stage(path, with: bytes)
        try VaultFileSystem.install(staged, exclusive: !replacing)
    }
}
