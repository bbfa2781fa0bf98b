import Foundation
import GRDB
import MoatAudit
import MoatAuth
import MoatCore
import MoatStore
import MoatVault
import Testing

/// The verified rows kept in memory between requests (``AuthSnapshot``): used only while `moat.db` has
/// not changed, so every change — by this process, another process or an attacker writing the file —
/// counts from the next request.
@Suite("Authentication rows kept between requests")
struct AuthSnapshotTests {
    /// An owner with one `read` token that has been used once (so the snapshot holds both rows).
    static func usedToken() async throws -> (AuthFixture, CreatedAPIToken) {
        let (fixture, created) = try await UsageTests.tokenFixture()
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: false))
        return (fixture, created)
    }

    @Test("a token row changed with plain SQL after it was used is checked again: its MAC fails and it is refused")
    func tamperedAfterUse() async throws {
        let (fixture, created) = try await Self.usedToken()
        try fixture.sql("UPDATE auth_api_tokens SET scope = 'admin'")
        let refused = await authError {
            try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        }
        #expect(refused?.message == "invalid API token")
        #expect(try fixture.auditActions().contains("auth.tamper"))
    }

    @Test("a token revoked through another connection to moat.db (another process) fails at the next request")
    func revokedByAnotherConnection() async throws {
        let (fixture, created) = try await Self.usedToken()
        // Its own pool and watch, as `moat token revoke` in another process would have.
        let other = try MoatDatabase(path: fixture.database.path, migrations: AuthFixture.migrations)
        let otherAuthority = try OwnerAuthority(database: other, vault: fixture.vault, audit: fixture.audit)
        try await otherAuthority.revokeToken(prefix: created.record.prefix, client: AuthFixture.client)
        try other.close()
        let refused = await authError {
            try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        }
        #expect(refused?.message == "this API token was revoked")
    }

    @Test("a deleted token row or owner row counts at once: the token is refused and the owner reads as damaged")
    func deletedAfterUse() async throws {
        let (fixture, created) = try await Self.usedToken()
        try fixture.sql("DELETE FROM auth_api_tokens")
        #expect(
            await authError {
                try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
            }?.message == "invalid API token")
        let (second, token) = try await Self.usedToken()
        try second.sql("DELETE FROM auth_owner")
        #expect(try await second.authority.state() == .damaged)
        #expect(
            await authError {
                try await second.authority.authenticate(bearer: token.token, client: AuthFixture.client)
            }?.code == .tampered)
    }

    @Test("a wrong token with a remembered prefix is refused from memory as from the database")
    func wrongSecretSamePrefix() async throws {
        let (fixture, created) = try await Self.usedToken()
        var forged = Array(created.token)
        forged[forged.count - 1] = forged.last == "a" ? "b" : "a"
        #expect(
            await authError {
                try await fixture.authority.authenticate(bearer: String(forged), client: AuthFixture.client)
            }?.message == "invalid API token")
        // The genuine one still works, and its use is still counted.
        fixture.advance(61)
        _ = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        #expect(try fixture.storedLastUse(token: created.record.prefix) == fixture.millis)
    }
}
