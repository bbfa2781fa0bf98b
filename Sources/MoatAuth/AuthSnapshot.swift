import MoatStore
import Synchronization

/// The rows every authenticated request reads — the owner's state and the API tokens used lately — as
/// verified (MAC, owner floor) at one version of `moat.db` (``DatabaseChangeWatch``).
///
/// A request uses them only while the database's version is still the one they were read at: any
/// commit, by this process or another (a revocation, a new password, an attacker's SQL), changes the
/// version, and the next request reads and verifies the rows again. (A file copied over `moat.db` while the
/// server runs is not a commit; ``DatabaseChangeWatch`` says why a restore needs the server stopped.) A
/// raise of the owner floor in the vault forgets the snapshot too, so no hit depends on the floor. The version is taken
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

/// One reading of `moat.db`'s version (``OwnerAuthority/moment()``), taken once at the start of a request
/// and handed to each check the request makes (``OwnerAuthority/state(at:)``,
/// ``OwnerAuthority/authenticate(bearer:client:at:)``), so one request asks SQLite once. A check answers
/// from the snapshot only when the snapshot was read at this very version: a commit made before the
/// moment (a revocation by another process included) is always seen; one that lands during the request
/// counts from the next request, as it would had the request come a moment earlier.
public struct AuthMoment: Sendable {
    let version: Int64?
}

extension OwnerAuthority {
    /// `moat.db`'s version now, for the checks of one request.
    public nonisolated func moment() -> AuthMoment {
        AuthMoment(version: changeVersion())
    }

    /// Forgets every remembered row: the next request reads and verifies them again.
    nonisolated func forgetSnapshot() {
        snapshot.withLock { $0 = nil }
    }

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
