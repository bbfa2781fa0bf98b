import MoatStore
import Synchronization

/// The rows every authenticated request reads — the owner's state and the API tokens used lately — as
/// verified (MAC, owner floor) at one version of `moat.db` (``DatabaseChangeWatch``).
///
/// A request uses them only while the database's version is still the one they were read at: any
/// commit, by this process or another (a revocation, a new password, a restored or tampered file),
/// changes the version, and the next request reads and verifies the rows again. The version is taken
/// before the rows are read, so a commit that lands in between only makes the copy look older than it is.
/// Nothing here is a grant of its own: a row is remembered only after it verified, and a revoked token,
/// a damaged owner or a missing one always take the database path (which audits them).
struct AuthSnapshot: Sendable {
    let version: Int64
    /// The owner's state (only `.ready` is remembered).
    var owner: OwnerState?
    /// Verified token rows by prefix.
    var tokens: [String: APITokenRecord] = [:]

    /// Tokens remembered at most; an attacker's made-up prefixes are never remembered (they fail).
    static let tokenLimit = 256
}

extension OwnerAuthority {
    /// `moat.db`'s current version, or nil when it cannot be read (then every request reads the rows).
    nonisolated func changeVersion() -> Int64? {
        try? database.changes().version()
    }

    nonisolated func snapshotOwner(at version: Int64) -> OwnerState? {
        snapshot.withLock { $0?.version == version ? $0?.owner : nil }
    }

    /// The remembered token with `prefix` when the owner is remembered too (a token counts only with an
    /// intact owner).
    nonisolated func snapshotToken(_ prefix: String, at version: Int64) -> APITokenRecord? {
        snapshot.withLock { snapshot in
            guard let snapshot, snapshot.version == version, snapshot.owner != nil else { return nil }
            return snapshot.tokens[prefix]
        }
    }

    /// Remembers the verified `owner` (and `token`) as read at `version`; a snapshot of another version
    /// is replaced.
    nonisolated func remember(owner: OwnerRecord, token: APITokenRecord?, at version: Int64) {
        snapshot.withLock { snapshot in
            var current = snapshot?.version == version ? snapshot! : AuthSnapshot(version: version)
            current.owner = .ready(username: owner.username, totpEnabled: owner.totpEnabled)
            if let token {
                if current.tokens.count >= AuthSnapshot.tokenLimit { current.tokens.removeAll() }
                current.tokens[token.prefix] = token
            }
            snapshot = current
        }
    }
}
