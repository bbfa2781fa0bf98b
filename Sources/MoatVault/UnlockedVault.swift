public import Foundation
public import MoatCore
import Synchronization

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
    public static func create(
        paths: VaultPaths,
        password: SecretBytes,
        parameters: Argon2Parameters = .recommended
    ) throws(VaultError) -> UnlockedVault {
        try SecretInput.checkPassword(password)
        return try VaultLock.holding(paths.lock, .exclusive) { () throws(VaultError) -> UnlockedVault in
            guard !VaultFileSystem.exists(paths.vault) else {
                throw VaultError(
                    .alreadyExists,
                    "a vault already exists at \(paths.vault); to change its password use moat vault rekey"
                )
            }
            let header = VaultHeader(parameters: parameters, salt: Sodium.randomBytes(VaultHeader.saltLength))
            let key = try Argon2id.deriveKey(password: password, salt: header.salt, parameters: parameters)
            let file = try VaultCipher.seal(payload: VaultPayload.encode([]), header: header, key: key)
            try VaultFileSystem.createExclusive(paths.vault, with: file)
            guard let identity = FileIdentity.of(paths.vault) else {
                throw VaultFileSystem.ioError("cannot stat \(paths.vault)")
            }
            let state = State(
                header: header,
                key: key,
                entries: [:],
                identity: identity,
                scrubber: SecretScrubber(entries: [])
            )
            return UnlockedVault(paths: paths, state: state, reopen: nil)
        }
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
                let entries = try decrypt(file, header: header, key: key, path: paths.vault)
                return State(
                    header: header,
                    key: key,
                    entries: entries,
                    identity: identity,
                    scrubber: SecretScrubber(entries: entries.values)
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
    ) throws(VaultError) -> [String: SecretEntry] {
        let list = try VaultCipher.open(
            file: file,
            header: header,
            key: key,
            failure: VaultError(.cannotDecrypt, "")
        ) { bytes throws(VaultError) in try VaultPayload.decode(bytes, path: path) }
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
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
            let entries = try Self.decrypt(file, header: header, key: state.key, path: paths.vault)
            state.entries = entries
            state.identity = identity
            state.scrubber = SecretScrubber(entries: entries.values)
            return true
        }
        guard let reopen else {
            throw VaultError(
                .changedElsewhere,
                "\(paths.vault) was re-keyed by another process; unlock it again with the new password"
            )
        }
        state = try Self.load(paths, candidates: try reopen(), failure: Self.cannotDecrypt(paths))
        return true
    }

    // MARK: Changing

    /// Adds a secret, or replaces one when `replace` is true (keeping its creation date).
    public func add(
        _ name: String,
        value: SecretBytes,
        policy: SecretPolicy,
        replace: Bool = false,
        now: Date = Date()
    ) throws(VaultError) {
        try SecretName.validate(name)
        guard !value.isEmpty, value.count <= SecretEntry.maximumValueBytes else {
            throw VaultError(.invalidValue, "the value of \(name) must be 1 byte to 1 MiB long")
        }
        try mutate { entries throws(VaultError) in
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
    public func remove(_ name: String) throws(VaultError) {
        try mutate { entries throws(VaultError) in
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
        machine: SealMachine = .current()
    ) throws(VaultError) {
        try SecretInput.checkPassword(newPassword)
        try VaultLock.holding(paths.lock, .exclusive) { () throws(VaultError) in
            try state.withLock { state throws(VaultError) in
                _ = try reloadLocked(&state)
                try checkCurrent(currentPassword, state: state)
                let seal = try VaultSeal.inspect(paths.seal)
                if seal?.hasPIN == true && sealPIN == nil {
                    throw VaultError(
                        .noTerminal,
                        "the seal has a PIN and must be re-sealed: give the PIN with --pin-file FILE or on a terminal"
                    )
                }
                let pin = seal?.hasPIN == true ? sealPIN : nil
                let header = VaultHeader(parameters: parameters, salt: Sodium.randomBytes(VaultHeader.saltLength))
                let key = try Argon2id.deriveKey(password: newPassword, salt: header.salt, parameters: parameters)
                let file = try VaultCipher.seal(
                    payload: VaultPayload.encode(Array(state.entries.values)),
                    header: header,
                    key: key
                )
                let hostKey = seal.map { $0.protection != .fingerprint } ?? false
                if seal != nil {
                    try VaultSeal.write(
                        keys: [key, state.key], pin: pin, machine: machine, requireHostKey: hostKey, to: paths.seal)
                }
                try VaultFileSystem.replace(paths.vault, with: file)
                if seal != nil {
                    try VaultSeal.write(
                        keys: [key], pin: pin, machine: machine, requireHostKey: hostKey, to: paths.seal)
                }
                state.header = header
                state.key = key
                state.identity = FileIdentity.of(paths.vault) ?? state.identity
            }
        }
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

    /// Read-modify-write under the exclusive lock, starting from the file's current contents.
    private func mutate(_ change: (inout [String: SecretEntry]) throws(VaultError) -> Void) throws(VaultError) {
        try VaultLock.holding(paths.lock, .exclusive) { () throws(VaultError) in
            try state.withLock { state throws(VaultError) in
                _ = try reloadLocked(&state)
                var entries = state.entries
                try change(&entries)
                let file = try VaultCipher.seal(
                    payload: VaultPayload.encode(Array(entries.values)),
                    header: state.header,
                    key: state.key
                )
                try VaultFileSystem.replace(paths.vault, with: file)
                state.entries = entries
                state.identity = FileIdentity.of(paths.vault) ?? state.identity
                state.scrubber = SecretScrubber(entries: entries.values)
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
