import Crypto
public import Foundation
public import MoatCore
import Synchronization

/// Which write of `vault.moat` a vault is: its generation, which every write raises by one, and the
/// SHA-256 of the file's bytes.
///
/// The generation is inside the encrypted payload, so only someone with the key can set it. Each vault
/// change records the revision it is about to write in the audit log; an unlock then refuses a vault
/// older than the newest recorded revision (a copied-back `vault.moat`).
public struct VaultRevision: Sendable, Equatable, CustomStringConvertible {
    /// 1 for a new vault, one more for each write (0 for a vault written before generations existed).
    public let generation: UInt64
    /// Hex SHA-256 of the whole file.
    public let sha256: String

    public init(generation: UInt64, sha256: String) {
        self.generation = generation
        self.sha256 = sha256
    }

    init(generation: UInt64, file: [UInt8]) {
        self.generation = generation
        self.sha256 = Hex.encode(SHA256.hash(data: file))
    }

    public var description: String { "generation \(generation) (sha256 \(sha256.prefix(12))…)" }
}

/// Records a vault write before it is made: called with the revision the new file will have, after the
/// file is written beside the vault and before it replaces it. Throwing abandons the write.
public typealias VaultWriteRecorder = (VaultRevision) throws -> Void

/// An open vault: its entries decrypted in memory, and the derived key to write them back.
///
/// One process may hold it for a long time (the server does), while another (the CLI) changes the file.
/// Every access first checks the file's identity (inode, size, modification time); when it changed,
/// the vault is read again under the shared lock. Every change is a read-modify-write under the
/// exclusive lock, so two writers never lose each other's changes. When another process re-keyed the
/// vault, the new key comes from `reopen` (the seal, for a server that unsealed); without it the
/// old contents stay in use and the error says to unlock again.
///
/// The master password is not kept: only the 32-byte key derived from it, in ``SecretBytes``. That key,
/// never the password, is also what the seal holds.
public final class UnlockedVault: Sendable {
    /// The vault's files.
    public let paths: VaultPaths
    private let state: Mutex<State>
    private let reopen: (@Sendable () throws(VaultError) -> [VaultCredential])?

    struct State {
        var header: VaultHeader
        var key: SecretBytes
        var entries: [String: SecretEntry]
        var identity: FileIdentity
        var scrubber: SecretScrubber
        var revision: VaultRevision
    }

    private init(
        paths: VaultPaths,
        state: State,
        reopen: (@Sendable () throws(VaultError) -> [VaultCredential])?
    ) {
        self.paths = paths
        self.state = Mutex(state)
        self.reopen = reopen
    }

    // MARK: Creating and opening

    /// Creates an empty vault protected by `password` (at least 12 characters). Fails if one exists.
    ///
    /// - Parameters:
    ///   - seed: entries the new vault starts with, each with a policy that allows nothing (the keys a
    ///     caller needs to record the creation, e.g. the audit log's, which cannot come from a vault that
    ///     does not exist yet).
    ///   - record: called with the new vault's revision once the file is written beside `vault.moat` and
    ///     before it takes that name; when it throws, no vault is created.
    public static func create(
        paths: VaultPaths,
        password: SecretBytes,
        parameters: Argon2Parameters = .recommended,
        seed: [String: SecretBytes] = [:],
        now: Date = Date(),
        record: VaultWriteRecorder? = nil
    ) throws(VaultError) -> UnlockedVault {
        try SecretInput.checkPassword(password)
        var entries: [String: SecretEntry] = [:]
        for (name, value) in seed {
            try SecretName.validate(name)
            entries[name] = SecretEntry(name: name, value: value, createdAt: now, updatedAt: now, policy: .none)
        }
        return try VaultLock.holding(paths.lock, .exclusive) { () throws(VaultError) -> UnlockedVault in
            guard !VaultFileSystem.exists(paths.vault) else {
                throw VaultError(
                    .alreadyExists,
                    "a vault already exists at \(paths.vault); to change its password use moat vault rekey"
                )
            }
            let header = VaultHeader(parameters: parameters, salt: Sodium.randomBytes(VaultHeader.saltLength))
            let key = try Argon2id.deriveKey(password: password, salt: header.salt, parameters: parameters)
            let payload = VaultPayload.encode(Array(entries.values), generation: 1)
            let file = try VaultCipher.seal(payload: payload, header: header, key: key)
            let revision = VaultRevision(generation: 1, file: file)
            try write(file, revision: revision, to: paths.vault, exclusive: true, record: record)
            guard let identity = FileIdentity.of(paths.vault) else {
                throw VaultFileSystem.ioError("cannot stat \(paths.vault)")
            }
            let state = State(
                header: header,
                key: key,
                entries: entries,
                identity: identity,
                scrubber: SecretScrubber(entries: entries.values),
                revision: revision
            )
            return UnlockedVault(paths: paths, state: state, reopen: nil)
        }
    }

    /// Writes a new vault file: staged beside the vault, recorded, then put in place. The caller holds
    /// the exclusive lock.
    private static func write(
        _ file: [UInt8],
        revision: VaultRevision,
        to path: String,
        exclusive: Bool = false,
        record: VaultWriteRecorder?
    ) throws(VaultError) {
        let staged = try VaultFileSystem.stage(path, with: file)
        do {
            try record?(revision)
        } catch {
            VaultFileSystem.discard(staged)
            if let error = error as? VaultError { throw error }
            throw VaultError(.io, "the change could not be recorded, so it was not made: \(error)")
        }
        try VaultFileSystem.install(staged, exclusive: exclusive)
    }

    /// Opens the vault with its master password.
    public static func open(paths: VaultPaths, password: SecretBytes) throws(VaultError) -> UnlockedVault {
        try VaultLock.holding(paths.lock, .shared) { () throws(VaultError) -> UnlockedVault in
            let state = try load(paths, candidates: [.password(password)], failure: cannotDecrypt(paths))
            return UnlockedVault(paths: paths, state: state, reopen: nil)
        }
    }

    /// Opens the vault with the key in its seal: no prompt unless the seal has a PIN.
    ///
    /// The returned vault follows re-keys made by other processes by opening the seal again.
    public static func unseal(
        paths: VaultPaths,
        pin: SecretBytes?,
        machine: SealMachine = .current()
    ) throws(VaultError) -> UnlockedVault {
        let reopen: @Sendable () throws(VaultError) -> [VaultCredential] = { () throws(VaultError) in
            try VaultSeal.open(path: paths.seal, pin: pin, machine: machine)
        }
        return try VaultLock.holding(paths.lock, .shared) { () throws(VaultError) -> UnlockedVault in
            guard VaultFileSystem.exists(paths.vault) else { throw missing(paths) }
            let state = try load(
                paths,
                candidates: try reopen(),
                failure: VaultError(
                    .sealDidNotOpen,
                    "the seal opened, but its key does not open \(paths.vault) (the vault was re-keyed "
                        + "or replaced without sealing again): unlock with the master password and seal again: "
                        + "moat vault seal"
                )
            )
            return UnlockedVault(paths: paths, state: state, reopen: reopen)
        }
    }

    /// Copies this vault's file to `destination` and opens the copy with the key held here, so no key is
    /// derived: the same header, salt and contents (the copy opens with the same password). For test
    /// fixtures that need a fresh vault each and do not test key derivation; it gives a caller nothing it
    /// does not have already, since whoever holds an open vault can read every value in it.
    @_spi(Testing) public func copy(to destination: VaultPaths) throws(VaultError) -> UnlockedVault {
        let (file, key) = try VaultLock.holding(paths.lock, .shared) {
            () throws(VaultError) -> ([UInt8], SecretBytes) in
            guard let (file, _) = try VaultFileSystem.readFile(paths.vault) else { throw Self.missing(paths) }
            return (file, state.withLock { $0.key })
        }
        return try VaultLock.holding(destination.lock, .exclusive) { () throws(VaultError) -> UnlockedVault in
            guard !VaultFileSystem.exists(destination.vault) else {
                throw VaultError(.alreadyExists, "a vault already exists at \(destination.vault)")
            }
            try VaultFileSystem.install(try VaultFileSystem.stage(destination.vault, with: file), exclusive: true)
            let state = try Self.load(destination, candidates: [.key(key)], failure: Self.cannotDecrypt(destination))
            return UnlockedVault(paths: destination, state: state, reopen: nil)
        }
    }

    /// Reads the vault and tries each candidate in turn (two only while a re-key was interrupted). The
    /// header's parameters are checked before any password is stretched.
    private static func load(
        _ paths: VaultPaths,
        candidates: [VaultCredential],
        failure: VaultError
    ) throws(VaultError) -> State {
        guard let (file, identity) = try VaultFileSystem.readFile(paths.vault) else { throw missing(paths) }
        let header = try VaultHeader.parse(file, path: paths.vault)
        for candidate in candidates {
            let key: SecretBytes
            switch candidate {
            case .key(let sealed):
                key = sealed
            case .password(let password):
                key = try Argon2id.deriveKey(password: password, salt: header.salt, parameters: header.parameters)
            }
            do {
                let (generation, entries) = try decrypt(file, header: header, key: key, path: paths.vault)
                return State(
                    header: header,
                    key: key,
                    entries: entries,
                    identity: identity,
                    scrubber: SecretScrubber(entries: entries.values),
                    revision: VaultRevision(generation: generation, file: file)
                )
            } catch  where error.code == .cannotDecrypt {
                continue
            }
        }
        throw failure
    }

    private static func decrypt(
        _ file: [UInt8],
        header: VaultHeader,
        key: SecretBytes,
        path: String
    ) throws(VaultError) -> (UInt64, [String: SecretEntry]) {
        let (generation, list) = try VaultCipher.open(
            file: file,
            header: header,
            key: key,
            failure: VaultError(.cannotDecrypt, "")
        ) { bytes throws(VaultError) in try VaultPayload.decodeWithGeneration(bytes, path: path) }
        return (generation, Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) }))
    }

    static func cannotDecrypt(_ paths: VaultPaths) -> VaultError {
        VaultError(
            .cannotDecrypt,
            "cannot decrypt \(paths.vault): the password is wrong, or the file was changed or damaged "
                + "(header, nonce, ciphertext or tag)"
        )
    }

    static func missing(_ paths: VaultPaths) -> VaultError {
        VaultError(.notFound, "there is no vault at \(paths.vault): create one with moat vault init (or moat serve)")
    }

    // MARK: Reading

    /// The key-derivation parameters of the vault as last read.
    public var parameters: Argon2Parameters {
        state.withLock { $0.header.parameters }
    }

    /// The revision of the vault as last read or written by this process.
    public var revision: VaultRevision {
        state.withLock { $0.revision }
    }

    /// Names, policies and dates of every secret, sorted by name; never values.
    public func secrets() throws(VaultError) -> [SecretSummary] {
        try refreshIfChanged()
        return state.withLock { state in state.entries.values.map(\.summary).sorted { $0.name < $1.name } }
    }

    /// The value of `name`, for consumers inside the gateway (signing keys, tokens); nil when absent.
    public func value(named name: String) throws(VaultError) -> SecretBytes? {
        try refreshIfChanged()
        return state.withLock { $0.entries[name]?.value }
    }

    /// The value and policy of `name` from one read (a consumer that checks the policy of the value it
    /// uses, like a webhook key, must not read them apart); nil when absent.
    public func entry(named name: String) throws(VaultError) -> SecretEntry? {
        try refreshIfChanged()
        return state.withLock { $0.entries[name] }
    }

    /// The 32-byte key Moat keeps under `name` for its own use (audit, policy row MACs), created from
    /// the system CSPRNG on first use.
    ///
    /// The entry's policy allows no tool and no host, so `{{secret:…}}` can never send it anywhere,
    /// while rekey, backup and the seal cover it like any secret. When another process creates the key
    /// between our read and our write, theirs is used.
    public func internalKey(named name: String) throws(VaultError) -> SecretBytes {
        if let existing = try value(named: name) {
            return existing
        }
        var fresh = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in fresh.indices { fresh[index] = generator.next() }
        let key = SecretBytes(wiping: &fresh)
        do {
            try add(name, value: key, policy: try SecretPolicy(tools: [], hosts: []))
        } catch {
            guard error.code == .duplicateSecret, let existing = try value(named: name) else { throw error }
            return existing
        }
        return key
    }

    /// `text` with every `{{secret:NAME}}` replaced by the value, when each secret's policy allows
    /// `tool` and the destination `host` (nil when the tool has no single destination).
    ///
    /// Fails with an error naming the secret and the rule otherwise, and on malformed placeholders or
    /// unknown names. The returned text holds secret values: hand it to the tool and drop it.
    public func resolvePlaceholders(in text: String, tool: String, host: String?) throws(VaultError) -> String {
        try refreshIfChanged()
        let entries = state.withLock { $0.entries }
        return try PlaceholderResolver.resolve(text, entries: entries, tool: tool, host: host)
    }

    /// `text` with every vault value (raw, base64, base64url, hex, percent-encoded) replaced by
    /// `[secret:NAME]`. If the vault file cannot be re-read, the values already in memory are used.
    public func scrub(_ text: String) -> String {
        _ = try? refreshIfChanged()
        let scrubber = state.withLock { $0.scrubber }
        return scrubber.scrub(text)
    }

    /// ``scrub(_:)`` for several texts of one moment (the fields of one audit entry): the vault file is
    /// checked for changes once, now, and the function returned scrubs with the values it then held.
    public func scrubber() -> @Sendable (String) -> String {
        _ = try? refreshIfChanged()
        let scrubber = state.withLock { $0.scrubber }
        return { scrubber.scrub($0) }
    }

    /// For text that arrives in pieces (a streamed model reply): `text` scrubbed up to the first place
    /// where a vault value may begin that `text` ends inside of, and that rest (`held`), which the caller
    /// prepends to the next piece; the last `held` goes through ``scrub(_:)``. A value split across
    /// pieces is therefore never shown in part, and the pieces shown add up to `scrub` of the whole.
    public func scrubPrefix(_ text: String) -> (scrubbed: String, held: String) {
        _ = try? refreshIfChanged()
        let scrubber = state.withLock { $0.scrubber }
        return scrubber.scrubPrefix(text)
    }

    /// Re-reads the vault if another process changed it; returns whether it did.
    @discardableResult
    public func refreshIfChanged() throws(VaultError) -> Bool {
        let current = FileIdentity.of(paths.vault)
        if state.withLock({ $0.identity }) == current { return false }
        return try VaultLock.holding(paths.lock, .shared) { () throws(VaultError) -> Bool in
            try state.withLock { state throws(VaultError) -> Bool in try reloadLocked(&state) }
        }
    }

    /// Brings `state` up to date with the file. The caller holds the vault lock.
    private func reloadLocked(_ state: inout State) throws(VaultError) -> Bool {
        guard let (file, identity) = try VaultFileSystem.readFile(paths.vault) else { throw Self.missing(paths) }
        if identity == state.identity { return false }
        let header = try VaultHeader.parse(file, path: paths.vault)
        if header == state.header {
            let (generation, entries) = try Self.decrypt(file, header: header, key: state.key, path: paths.vault)
            try checkNotOlder(generation, than: state.revision)
            state.entries = entries
            state.identity = identity
            state.scrubber = SecretScrubber(entries: entries.values)
            state.revision = VaultRevision(generation: generation, file: file)
            return true
        }
        guard let reopen else {
            throw VaultError(
                .changedElsewhere,
                "\(paths.vault) was re-keyed by another process; unlock it again with the new password"
            )
        }
        let loaded = try Self.load(paths, candidates: try reopen(), failure: Self.cannotDecrypt(paths))
        try checkNotOlder(loaded.revision.generation, than: state.revision)
        state = loaded
        return true
    }

    /// A vault file never goes back to a generation this process has already seen: the contents in
    /// memory stay in use and the error names the way out.
    private func checkNotOlder(_ generation: UInt64, than seen: VaultRevision) throws(VaultError) {
        guard generation < seen.generation else { return }
        throw VaultError(
            .rolledBack,
            "\(paths.vault) was replaced by an older copy (generation \(generation); this process has already "
                + "seen generation \(seen.generation)), which could revive removed secrets or an old password. "
                + Self.rollbackRecovery
        )
    }

    /// How to get out of a refused rollback, for every message that reports one.
    public static let rollbackRecovery =
        "Put the newest vault.moat (and vault.seal) back from your backup; or, if this older vault is the one "
        + "you want, accept it with `moat vault accept-rollback` (recorded in the audit log)"

    // MARK: Changing

    /// Adds a secret, or replaces one when `replace` is true (keeping its creation date).
    public func add(
        _ name: String,
        value: SecretBytes,
        policy: SecretPolicy,
        replace: Bool = false,
        now: Date = Date(),
        record: VaultWriteRecorder? = nil
    ) throws(VaultError) {
        try SecretName.validate(name)
        guard !value.isEmpty, value.count <= SecretEntry.maximumValueBytes else {
            throw VaultError(.invalidValue, "the value of \(name) must be 1 byte to 1 MiB long")
        }
        try mutate(record: record) { entries throws(VaultError) in
            let created: Date
            if let existing = entries[name] {
                guard replace else {
                    throw VaultError(
                        .duplicateSecret,
                        "a secret named \(name) exists already; add --replace to change its value and policy"
                    )
                }
                created = existing.createdAt
            } else {
                created = now
            }
            entries[name] = SecretEntry(name: name, value: value, createdAt: created, updatedAt: now, policy: policy)
        }
    }

    /// Removes the secret `name`.
    public func remove(_ name: String, record: VaultWriteRecorder? = nil) throws(VaultError) {
        try mutate(record: record) { entries throws(VaultError) in
            guard entries.removeValue(forKey: name) != nil else {
                throw VaultError(.unknownSecret, "there is no secret named \(name); moat vault list shows the names")
            }
        }
    }

    /// Re-encrypts the vault under `newPassword` with a new salt (and `parameters`), and seals it again
    /// when it was sealed (`sealPIN` is needed when the seal has a PIN). A seal bound to a host key stays
    /// bound to one; a format-1 seal is replaced by the current format.
    ///
    /// `currentPassword` nil is allowed for a vault that was unsealed: whoever can open the seal holds
    /// the key anyway.
    ///
    /// Crash-safe in every order: while the re-key is in flight the seal holds both keys, so whichever
    /// vault file is on disk after a crash, the seal (and the matching password) opens it.
    public func rekey(
        currentPassword: SecretBytes?,
        newPassword: SecretBytes,
        parameters: Argon2Parameters = .recommended,
        sealPIN: SecretBytes? = nil,
        machine: SealMachine = .current(),
        record: VaultWriteRecorder? = nil
    ) throws(VaultError) {
        try SecretInput.checkPassword(newPassword)
        try VaultLock.holding(paths.lock, .exclusive) { () throws(VaultError) in
            let prepared = try state.withLock { state throws(VaultError) -> PreparedRekey in
                _ = try reloadLocked(&state)
                try checkCurrent(currentPassword, state: state)
                let seal = try VaultSeal.inspect(paths.seal)
                if seal?.hasPIN == true && sealPIN == nil {
                    throw VaultError(
                        .noTerminal,
                        "the seal has a PIN and must be re-sealed: give the PIN with --pin-file FILE or on a terminal"
                    )
                }
                let header = VaultHeader(parameters: parameters, salt: Sodium.randomBytes(VaultHeader.saltLength))
                let key = try Argon2id.deriveKey(password: newPassword, salt: header.salt, parameters: parameters)
                let generation = state.revision.generation + 1
                let file = try VaultCipher.seal(
                    payload: VaultPayload.encode(Array(state.entries.values), generation: generation),
                    header: header,
                    key: key
                )
                return PreparedRekey(
                    oldKey: state.key,
                    sealed: seal != nil,
                    hostKey: seal.map { $0.protection != .fingerprint } ?? false,
                    pin: seal?.hasPIN == true ? sealPIN : nil,
                    header: header,
                    key: key,
                    file: file,
                    revision: VaultRevision(generation: generation, file: file)
                )
            }
            // Recorded outside the state lock: recording scrubs the entry with this vault's values.
            let staged = try VaultFileSystem.stage(paths.vault, with: prepared.file)
            do {
                try record?(prepared.revision)
                if prepared.sealed {
                    try VaultSeal.write(
                        keys: [prepared.key, prepared.oldKey],
                        pin: prepared.pin,
                        machine: machine,
                        requireHostKey: prepared.hostKey,
                        to: paths.seal
                    )
                }
            } catch {
                VaultFileSystem.discard(staged)
                if let error = error as? VaultError { throw error }
                throw VaultError(.io, "the re-key could not be recorded, so it was not made: \(error)")
            }
            try VaultFileSystem.install(staged)
            if prepared.sealed {
                try VaultSeal.write(
                    keys: [prepared.key],
                    pin: prepared.pin,
                    machine: machine,
                    requireHostKey: prepared.hostKey,
                    to: paths.seal
                )
            }
            state.withLock { state in
                state.header = prepared.header
                state.key = prepared.key
                state.identity = FileIdentity.of(paths.vault) ?? state.identity
                state.revision = prepared.revision
            }
        }
    }

    /// What a re-key computed under the state lock, to be recorded and written outside it.
    private struct PreparedRekey {
        let oldKey: SecretBytes
        let sealed: Bool
        let hostKey: Bool
        let pin: SecretBytes?
        let header: VaultHeader
        let key: SecretBytes
        let file: [UInt8]
        let revision: VaultRevision
    }

    /// Writes `vault.seal` so the vault opens on this machine without the password (with `pin`, if
    /// given, at least ``VaultSeal/minimumPINLength`` characters). `password` must be the vault's master
    /// password; the seal holds the vault's key, never the password.
    @discardableResult
    public func seal(
        password: SecretBytes,
        pin: SecretBytes?,
        machine: SealMachine = .current()
    ) throws(VaultError) -> VaultSeal.Written {
        try VaultLock.holding(paths.lock, .exclusive) { () throws(VaultError) -> VaultSeal.Written in
            try state.withLock { state throws(VaultError) -> VaultSeal.Written in
                _ = try reloadLocked(&state)
                try verify(password, against: state)
                return try VaultSeal.write(keys: [state.key], pin: pin, machine: machine, to: paths.seal)
            }
        }
    }

    /// Removes `vault.seal`: `moat serve` then asks for the master password on a terminal.
    public func removeSeal() throws(VaultError) {
        try VaultLock.holding(paths.lock, .exclusive) { () throws(VaultError) in
            try VaultFileSystem.remove(paths.seal)
        }
    }

    /// Verifies the given password; without one, the vault must have been opened from the seal.
    private func checkCurrent(_ given: SecretBytes?, state: State) throws(VaultError) {
        if let given {
            try verify(given, against: state)
        } else if reopen == nil {
            throw VaultError(
                .badInput, "the current master password is needed: give it with --password-file or --password-stdin")
        }
    }

    private func verify(_ password: SecretBytes, against state: State) throws(VaultError) {
        let key = try Argon2id.deriveKey(
            password: password, salt: state.header.salt, parameters: state.header.parameters)
        guard key == state.key else {
            throw VaultError(.badInput, "that is not the master password of \(paths.vault); nothing changed")
        }
    }

    /// Writes the vault's current contents again at a generation above `recorded` (the newest one the
    /// audit log holds), so an older vault the owner chose to keep is no longer refused. `record` is
    /// called with the new revision before the file is replaced.
    public func acceptRollback(above recorded: UInt64, record: @escaping VaultWriteRecorder) throws(VaultError) {
        try mutate(record: record, atLeast: recorded + 1) { _ throws(VaultError) in }
    }

    /// Read-modify-write under the exclusive lock, starting from the file's current contents. The new
    /// file's generation is one more than the current one (and at least `atLeast`).
    private func mutate(
        record: VaultWriteRecorder?,
        atLeast: UInt64 = 0,
        _ change: (inout [String: SecretEntry]) throws(VaultError) -> Void
    ) throws(VaultError) {
        try VaultLock.holding(paths.lock, .exclusive) { () throws(VaultError) in
            let (entries, file, generation) = try state.withLock {
                state throws(VaultError) -> ([String: SecretEntry], [UInt8], UInt64) in
                _ = try reloadLocked(&state)
                var entries = state.entries
                try change(&entries)
                let generation = max(state.revision.generation + 1, atLeast)
                let file = try VaultCipher.seal(
                    payload: VaultPayload.encode(Array(entries.values), generation: generation),
                    header: state.header,
                    key: state.key
                )
                return (entries, file, generation)
            }
            // Recorded outside the state lock (recording scrubs the entry with this vault's values); the
            // exclusive file lock still keeps every other writer out until the file is in place.
            let revision = VaultRevision(generation: generation, file: file)
            try Self.write(file, revision: revision, to: paths.vault, record: record)
            state.withLock { state in
                state.entries = entries
                state.identity = FileIdentity.of(paths.vault) ?? state.identity
                state.scrubber = SecretScrubber(entries: entries.values)
                state.revision = revision
            }
        }
    }
}

/// What opens the vault: its master password, or the 32-byte key a seal holds (a format-1 seal, from
/// an older Moat, holds passwords).
enum VaultCredential {
    case password(SecretBytes)
    case key(SecretBytes)
}

/// What can be learned about a vault without its password: for `moat vault status` and `moat doctor`.
public struct VaultStatus: Sendable, Equatable {
    /// The key-derivation parameters from the header.
    public let parameters: Argon2Parameters
    /// The file's size in bytes.
    public let size: Int
    /// The seal, when there is one.
    public let seal: VaultSeal.Info?

    /// Reads and checks the headers of the vault and the seal; nil when there is no vault.
    public static func inspect(_ paths: VaultPaths) throws(VaultError) -> VaultStatus? {
        guard let (file, _) = try VaultFileSystem.readFile(paths.vault) else { return nil }
        let header = try VaultHeader.parse(file, path: paths.vault)
        return VaultStatus(parameters: header.parameters, size: file.count, seal: try VaultSeal.inspect(paths.seal))
    }
}
