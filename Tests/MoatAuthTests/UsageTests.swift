import Foundation
import GRDB
import MoatAuth
import MoatCore
import MoatStore
import Testing

@testable import MoatAuth

/// Last-use bookkeeping kept in memory (``UsageLedger``): written at most once a minute per token or
/// session and at shutdown, never making a credential valid that the database says is not.
@Suite("Token and session use kept in memory")
struct UsageTests {
    /// An owner with one `read` API token.
    static func tokenFixture(lifetime: TimeInterval? = nil) async throws -> (AuthFixture, CreatedAPIToken) {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let created = try await fixture.authority.createToken(
            name: "ci", scope: .read, lifetime: lifetime, client: AuthFixture.client)
        return (fixture, created)
    }

    @Test("a token's first use is written at once, later ones at most once a minute; a listing shows the newest")
    func tokenUseWrittenOncePerInterval() async throws {
        let (fixture, created) = try await Self.tokenFixture()
        let prefix = created.record.prefix
        let first = fixture.millis
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        #expect(try fixture.storedLastUse(token: prefix) == first)
        fixture.advance(10)
        let record = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        #expect(record.lastUsedAt == fixture.millis)
        // Not written yet, but the listing (`moat token list` through the server) shows it.
        #expect(try fixture.storedLastUse(token: prefix) == first)
        #expect(try await fixture.authority.tokens().first?.lastUsedAt == fixture.millis)
        fixture.advance(49)
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        #expect(try fixture.storedLastUse(token: prefix) == first)
        // A minute after the stored use, the next use is written.
        fixture.advance(1)
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        #expect(try fixture.storedLastUse(token: prefix) == fixture.millis)
    }

    @Test("uses not written yet reach moat.db at shutdown (flushUsage), for the next process to list")
    func tokenUseFlushedAtShutdown() async throws {
        let (fixture, created) = try await Self.tokenFixture()
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        fixture.advance(5)
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        let last = fixture.millis
        #expect(try fixture.storedLastUse(token: created.record.prefix) == last - 5000)
        try await fixture.authority.flushUsage()
        #expect(try fixture.storedLastUse(token: created.record.prefix) == last)
        // What `moat token list` shows once the server has stopped.
        let next = try fixture.secondAuthority()
        #expect(try await next.tokens().first?.lastUsedAt == last)
        // Nothing left: a second flush writes nothing and does not fail.
        try await fixture.authority.flushUsage()
    }

    @Test("a token revoked elsewhere fails at the next request although its use is kept in memory")
    func revokedTokenFailsAtOnce() async throws {
        let (fixture, created) = try await Self.tokenFixture()
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        fixture.advance(5)
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        // Revoked by another process sharing moat.db (the CLI while the server runs).
        try await fixture.secondAuthority().revokeToken(prefix: created.record.prefix, client: .local("cli"))
        let refused = await authError {
            try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        }
        #expect(refused?.code == .unauthorized)
        #expect(refused?.message == "this API token was revoked")
        // Writing the kept use changes only the time: the row stays revoked and intact.
        try await fixture.authority.flushUsage()
        let listed = try #require(try await fixture.authority.tokens().first)
        #expect(listed.revokedAt != nil && listed.lastUsedAt == fixture.millis)
        #expect(
            await authError {
                try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
            }?.code == .unauthorized)
    }

    @Test("an expired token fails even when it was used a moment before")
    func expiredTokenFailsAtOnce() async throws {
        let (fixture, created) = try await Self.tokenFixture(lifetime: 30)
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        fixture.advance(29)
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        fixture.advance(1)
        let refused = await authError {
            try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        }
        #expect(refused?.code == .unauthorized)
    }

    @Test(
        "a session's activity counts at once for its idle deadline, and reaches moat.db once a minute and at shutdown")
    func sessionActivity() async throws {
        let fixture = try AuthFixture()
        let login = try await fixture.setUp()
        let created = fixture.millis
        fixture.advance(30 * 60)
        _ = try #require(try await fixture.authority.session(id: login.sessionID))
        let written = fixture.millis
        #expect(try fixture.storedLastSeen() == written)
        fixture.advance(30)
        _ = try #require(try await fixture.authority.session(id: login.sessionID))
        let kept = fixture.millis
        #expect(try fixture.storedLastSeen() == written)
        #expect(written > created)
        // Two hours after the stored time, but not after the real last use: still valid here.
        fixture.advance(2 * 3600 - 10)
        #expect(try await fixture.authority.session(id: login.sessionID, touch: false) != nil)
        try await fixture.authority.flushUsage()
        #expect(try fixture.storedLastSeen() == kept)
        // After a restart the flushed time still holds the session open.
        #expect(try await fixture.secondAuthority().session(id: login.sessionID, touch: false) != nil)
        fixture.advance(11)
        #expect(try await fixture.authority.session(id: login.sessionID, touch: false) == nil)
    }

    @Test("a logged-out session stays ended when its kept activity is written")
    func loggedOutSessionStaysEnded() async throws {
        let fixture = try AuthFixture()
        let login = try await fixture.setUp()
        fixture.advance(10)
        let session = try #require(try await fixture.authority.session(id: login.sessionID))
        try await fixture.authority.logout(session, client: AuthFixture.client)
        try await fixture.authority.flushUsage()
        #expect(try await fixture.authority.session(id: login.sessionID) == nil)
        #expect(try fixture.storedLastSeen() == nil)
    }

    @Test("the ledger: due at the first use and a minute after the stored one; a failed write makes the next use due")
    func ledgerRules() {
        var ledger = UsageLedger(interval: 60_000)
        // Whether each use is due to be written, in order.
        var due: [Bool] = []
        for time: Int64 in [1_000, 2_000, 3_000] { due.append(ledger.use("a", at: time, stored: nil)) }
        // Due at the first use; later ones, racing the write in flight, see it whatever their row said.
        #expect(due == [true, false, false])
        #expect(ledger.latest("a", stored: 1_000) == 3_000)
        let minuteLater = ledger.use("a", at: 61_000, stored: 1_000)
        #expect(minuteLater)
        #expect(ledger.latest("a", stored: 1_000) == 61_000)
        let soonAfter = ledger.use("a", at: 62_000, stored: 61_000)
        #expect(!soonAfter)
        ledger.failed("a", at: 61_000)
        #expect(ledger.latest("a", stored: 1_000) == 62_000)
        let retried = ledger.use("a", at: 63_000, stored: 1_000)
        #expect(retried)
        let other = ledger.use("b", at: 63_000, stored: 40_000)
        #expect(!other)
        let taken = ledger.takePending()
        #expect(taken == ["b": 63_000])
        let again = ledger.takePending()
        #expect(again.isEmpty)
        let afterFlush = ledger.use("b", at: 64_000, stored: 40_000)
        #expect(!afterFlush)
    }
}

extension AuthFixture {
    /// The fixture clock in milliseconds, as the authority stores times.
    var millis: Int64 { Int64((now.timeIntervalSince1970 * 1000).rounded(.down)) }

    /// `last_used_at` as stored in `moat.db`.
    func storedLastUse(token prefix: String) throws -> Int64? {
        try database.pool.read { db in
            try Int64.fetchOne(
                db, sql: "SELECT last_used_at FROM auth_api_tokens WHERE prefix = ?", arguments: [prefix])
        }
    }

    /// `last_seen_at` of the only session, as stored.
    func storedLastSeen() throws -> Int64? {
        try database.pool.read { db in try Int64.fetchOne(db, sql: "SELECT max(last_seen_at) FROM auth_sessions") }
    }

    /// Another authority over the same files: another process, or this one after a restart.
    func secondAuthority() throws -> OwnerAuthority {
        let clock = self.clock
        return try OwnerAuthority(database: database, vault: vault, audit: audit, now: { clock.now })
    }
}
