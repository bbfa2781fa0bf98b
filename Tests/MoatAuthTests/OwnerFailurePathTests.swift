import Foundation
import GRDB
import MoatAuth
import MoatCore
import MoatStore
import MoatTestSupport
import MoatVault
import Testing

@testable import MoatAuth

/// Failure paths: a forged huge token version, a database write that fails while TOTP is being turned
/// on, a cookie sent without its CSRF token, busy Argon2 slots, a vault floor lowered or unreadable,
/// recovery codes stored the old way.
@Suite("Owner state on failure paths")
struct OwnerFailurePathTests {
    @Test("a forged huge token version in moat.db cannot push the vault floor out of reach of a reset")
    func hugeForgedVersion() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        try fixture.sql(
            "INSERT INTO auth_sessions (id_hash, token_version, created_at, last_seen_at, source, user_agent, mac) "
                + "VALUES ('x', ?, 0, 0, '', '', 'forged')", [(Int64(1) << 52) - 1])
        for password in ["a first reset passphrase", "a second reset passphrase"] {
            try await fixture.authority.setUpLocally(
                username: "owner", password: AuthFixture.secret(password), replace: true, client: .local("cli"))
            #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: false))
            _ = try await fixture.login("owner", password)
        }
        // The forged value may raise the version (harmless), never past what the database cap allows.
        #expect(try await fixture.authority.tokenVersion() <= (1 << 52) + 1)
    }

    @Test("if the database cannot record a TOTP enrolment, the vault does not keep the new secret")
    func enrolmentRollsBack() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let enrolment = try await fixture.authority.beginTOTPEnrolment(currentPassword: nil, client: AuthFixture.client)
        let totp = TOTP(secret: try #require(Base32.decode(enrolment.secretBase32)))
        // Any write of recovery codes now fails, as a full disk would make it.
        try fixture.sql(
            "CREATE TRIGGER no_codes BEFORE INSERT ON auth_recovery_codes BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        let failed = await authError {
            try await fixture.authority.confirmTOTP(
                code: totp.code(atStep: TOTP.step(at: fixture.now)), client: AuthFixture.client)
        }
        #expect(failed?.code == .storage)
        #expect(try fixture.vault.value(named: OwnerAuthority.totpSecretName) == nil)
        // Login still works without a code, as the dashboard says.
        _ = try await fixture.login()
    }

    @Test("a session looked up without touching keeps its idle deadline; touching restarts it")
    func lookupDoesNotTouch() async throws {
        let fixture = try AuthFixture()
        let session = try await fixture.setUp()
        fixture.advance(110 * 60)
        #expect(try await fixture.authority.session(id: session.sessionID, touch: false) != nil)
        fixture.advance(11 * 60)
        #expect(try await fixture.authority.session(id: session.sessionID, touch: false) == nil)
        let second = try await fixture.login()
        fixture.advance(110 * 60)
        let info = try #require(try await fixture.authority.session(id: second.sessionID, touch: false))
        try await fixture.authority.touchSession(info)
        fixture.advance(11 * 60)
        #expect(try await fixture.authority.session(id: second.sessionID, touch: false) != nil)
    }

    @Test("with both Argon2 slots busy a login is refused at once with 429 and Retry-After: 1, and audited once")
    func busySlots() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        // Two checks in flight, held here rather than raced, so the test does not depend on timing.
        let slots = await fixture.authority.slots
        #expect(slots.limit == 2 && slots.acquire() && slots.acquire())
        for _ in 0..<3 {
            let refused = await authError { try await fixture.login() }
            #expect(refused?.code == .rateLimited && refused?.retryAfter == 1)
        }
        slots.release()
        slots.release()
        _ = try await fixture.login()
        // A refused slot is not a failed password: nothing is counted against the account.
        let failures = try await fixture.database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM auth_failures")
        }
        #expect(failures == 0)
        let busy = try await fixture.database.pool.read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT count(*) FROM audit_entries WHERE action = 'auth.login' AND outcome = 'rate-limited'")
        }
        #expect(busy == 1)
    }

    @Test("the floor this process saw still guards when another process lowered it in the vault")
    func floorRemembered() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let old = try fixture.ownerState()
        try await fixture.authority.revokeAll(tokens: false, client: AuthFixture.client)
        #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: false))
        // The older row and the older floor, both put back.
        try fixture.restoreOwnerState(old)
        #expect(try await fixture.authority.state() == .damaged)
    }

    @Test("a vault re-keyed by another process does not turn the owner check into an error")
    func vaultUnreadable() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: false))
        let other = try UnlockedVault.open(
            paths: VaultPaths(stateDirectory: fixture.directory.path),
            password: AuthFixture.secret(PreparedVault.password))
        try other.rekey(
            currentPassword: AuthFixture.secret(PreparedVault.password),
            newPassword: AuthFixture.secret("another vault password here"),
            parameters: try Argon2Parameters(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1))
        #expect(throws: VaultError.self) { try fixture.vault.value(named: OwnerAuthority.ownerFloorName) }
        #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: false))
    }

    @Test("a recovery code stored the old way (plain SHA-256) still works once")
    func legacyRecoveryCode() async throws {
        let fixture = try AuthFixture()
        _ = try await TwoFactorTests.enrolled(fixture)
        let code = "abcd-efgh-jkmn"
        let hash = OwnerAuthority.legacyRecoveryHash(code)
        let mac = await fixture.authority.rows.mac(RecoveryCodeRow(codeHash: hash, createdAt: 5))
        try fixture.sql(
            "INSERT INTO auth_recovery_codes (code_hash, created_at, mac) VALUES (?, 5, ?)", [hash, mac])
        _ = try await fixture.login(code: code)
        #expect(await authError { try await fixture.login(code: code) }?.code == .unauthorized)
    }
}
