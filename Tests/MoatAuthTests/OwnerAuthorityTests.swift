import Foundation
import GRDB
import MoatAuth
import MoatCore
import MoatStore
import MoatVault
import Testing

@Suite("Owner setup and login")
struct OwnerSetupLoginTests {
    @Test("two setups with one link at the same moment: one owner, one audited setup")
    func concurrentSetup() async throws {
        let fixture = try AuthFixture()
        let token = try await fixture.authority.createSetupToken(client: AuthFixture.client)
        let results = await withTaskGroup(of: AuthError?.self) { group in
            for name in ["owner", "mallory"] {
                group.addTask {
                    await authError {
                        try await fixture.authority.completeSetup(
                            token: token, username: name, password: AuthFixture.secret(AuthFixture.password),
                            client: AuthFixture.client)
                    }
                }
            }
            var errors: [AuthError?] = []
            for await error in group { errors.append(error) }
            return errors
        }
        #expect(results.filter { $0 == nil }.count == 1)
        // Whether the two overlapped or not, one setup is recorded as done.
        let done = try await fixture.database.pool.read { db in
            try Int.fetchOne(
                db, sql: "SELECT count(*) FROM audit_entries WHERE action = 'auth.setup' AND outcome = 'success'")
        }
        #expect(done == 1)
    }

    @Test("before setup nothing logs in; a setup link works once and is stored only as a hash")
    func setupLink() async throws {
        let fixture = try AuthFixture()
        #expect(try await fixture.authority.state() == .needsSetup)
        #expect(await authError { try await fixture.login() }?.code == .setupRequired)
        let token = try await fixture.authority.createSetupToken(client: AuthFixture.client)
        #expect(token.count >= 43)
        #expect(try !fixture.allStoredText().contains(token))
        _ = try await fixture.authority.completeSetup(
            token: token, username: "owner", password: AuthFixture.secret(AuthFixture.password),
            client: AuthFixture.client)
        #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: false))
        // Spent: the same link cannot set up a second owner, and no new link is issued.
        let again = await authError {
            try await fixture.authority.completeSetup(
                token: token, username: "mallory", password: AuthFixture.secret("another long password"),
                client: AuthFixture.client)
        }
        #expect(again?.code == .unauthorized)
        #expect(
            await authError { try await fixture.authority.createSetupToken(client: AuthFixture.client) }?.code
                == .alreadySetUp)
        #expect(try fixture.auditActions().contains("auth.setup"))
    }

    @Test("an expired, unknown or forged setup token is refused and changes nothing")
    func setupTokenRefusals() async throws {
        let fixture = try AuthFixture()
        let token = try await fixture.authority.createSetupToken(client: AuthFixture.client)
        fixture.advance(15 * 60 + 1)
        let expired = await authError {
            try await fixture.authority.completeSetup(
                token: token, username: nil, password: AuthFixture.secret(AuthFixture.password),
                client: AuthFixture.client)
        }
        #expect(expired?.code == .unauthorized)
        #expect(expired?.message.contains(token) == false)
        // A database-only attacker inserts a token whose hash they know, with a made-up MAC.
        let forged = "forged-setup-token-forged-setup-token-forged"
        let hash = SHA256Hex.of(forged)
        try fixture.sql(
            "INSERT INTO auth_setup_tokens (token_hash, created_at, expires_at, mac) VALUES (?, 0, 9999999999999, ?)",
            [hash, String(repeating: "0", count: 64)])
        let forgedResult = await authError {
            try await fixture.authority.completeSetup(
                token: forged, username: nil, password: AuthFixture.secret(AuthFixture.password),
                client: AuthFixture.client)
        }
        #expect(forgedResult?.code == .unauthorized)
        #expect(try await fixture.authority.state() == .needsSetup)
        #expect(try fixture.auditActions().contains("auth.tamper"))
    }

    @Test("password rules: 12 to 1024 characters; a refused password changes nothing")
    func passwordRules() async throws {
        let fixture = try AuthFixture()
        for bad in ["elevenchars", String(repeating: "x", count: 1025)] {
            let token = try await fixture.authority.createSetupToken(client: AuthFixture.client)
            let error = await authError {
                try await fixture.authority.completeSetup(
                    token: token, username: nil, password: AuthFixture.secret(bad), client: AuthFixture.client)
            }
            #expect(error?.code == .invalidInput)
            #expect(try await fixture.authority.state() == .needsSetup)
        }
        // Twelve characters of any script count as twelve.
        let token = try await fixture.authority.createSetupToken(client: AuthFixture.client)
        _ = try await fixture.authority.completeSetup(
            token: token, username: nil, password: AuthFixture.secret("éééééééééééé"), client: AuthFixture.client)
    }

    @Test("the stored password is an Argon2id hash with at least m=19 MiB, t=2")
    func passwordHashParameters() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let stored = try await fixture.database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT password_hash FROM auth_owner")
        }
        let hash = try #require(stored)
        #expect(hash.hasPrefix("$argon2id$v=19$m=19456,t=2,p=1$"))
        #expect(try !fixture.allStoredText().contains(AuthFixture.password))
    }

    @Test("unknown account and wrong password give the identical error")
    func identicalFailures() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let unknown = await authError { try await fixture.login("nobody", AuthFixture.password) }
        let wrong = await authError { try await fixture.login("owner", "not the password at all") }
        #expect(unknown != nil)
        #expect(unknown == wrong)
        let actions = try fixture.auditActions().filter { $0 == "auth.login" }
        #expect(actions.count >= 3)
    }

    @Test("every login gets a new session id; logout ends it on the server")
    func sessionRotationAndLogout() async throws {
        let fixture = try AuthFixture()
        let first = try await fixture.setUp()
        let second = try await fixture.login()
        let third = try await fixture.login()
        #expect(Set([first.sessionID, second.sessionID, third.sessionID]).count == 3)
        #expect(second.csrfToken != third.csrfToken)
        #expect(try !fixture.allStoredText().contains(second.sessionID))
        let session = try #require(try await fixture.authority.session(id: second.sessionID))
        try await fixture.authority.logout(session, client: AuthFixture.client)
        #expect(try await fixture.authority.session(id: second.sessionID) == nil)
        #expect(try await fixture.authority.session(id: third.sessionID) != nil)
    }

    @Test("sessions end after 2 hours idle and 24 hours in all")
    func sessionExpiry() async throws {
        let fixture = try AuthFixture()
        let idle = try await fixture.setUp()
        fixture.advance(2 * 3600 - 5)
        #expect(try await fixture.authority.session(id: idle.sessionID) != nil)
        fixture.advance(2 * 3600 + 1)
        #expect(try await fixture.authority.session(id: idle.sessionID) == nil)
        let busy = try await fixture.login()
        for _ in 0..<23 {
            fixture.advance(3600)
            #expect(try await fixture.authority.session(id: busy.sessionID) != nil)
        }
        fixture.advance(3600)
        #expect(try await fixture.authority.session(id: busy.sessionID) == nil)
    }

    @Test("revoke-all and a password change end every session at once")
    func revokeEverything() async throws {
        let fixture = try AuthFixture()
        let a = try await fixture.setUp()
        let b = try await fixture.login()
        let version = try await fixture.authority.tokenVersion()
        try await fixture.authority.revokeAll(tokens: false, client: AuthFixture.client)
        #expect(try await fixture.authority.tokenVersion() == version + 1)
        #expect(try await fixture.authority.session(id: a.sessionID) == nil)
        #expect(try await fixture.authority.session(id: b.sessionID) == nil)
        let c = try await fixture.login()
        try await fixture.authority.changePassword(
            current: AuthFixture.secret(AuthFixture.password), new: AuthFixture.secret("the new long passphrase"),
            client: AuthFixture.client)
        #expect(try await fixture.authority.session(id: c.sessionID) == nil)
        #expect(await authError { try await fixture.login() }?.code == .unauthorized)
        _ = try await fixture.login("owner", "the new long passphrase")
        #expect(try fixture.auditActions().contains("auth.revoke_all"))
    }
}

@Suite("Owner row changes that race")
struct OwnerRaceTests {
    @Test("a revoke-all cannot undo a TOTP enrolment another process stored meanwhile")
    func revokeAllKeepsConcurrentChange() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let plain = try fixture.ownerRow()
        _ = try await TwoFactorTests.enrol(fixture)
        let withTOTP = try fixture.ownerRow()
        try fixture.restoreOwner(plain)
        #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: false))
        // Between revoke-all's first look at the owner and its write, the other process enrols TOTP.
        fixture.onNextClockRead { try? fixture.restoreOwner(withTOTP) }
        try await fixture.authority.revokeAll(tokens: false, client: AuthFixture.client)
        #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: true))
        #expect(try fixture.ownerRow().int("token_version") == withTOTP.int("token_version").map { $0 + 1 })
    }

    @Test("a password changed during a login's Argon2 check: the old password does not log in")
    func loginAfterPasswordChange() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let old = try fixture.ownerState()
        // The change is made by another process (its own authority on the same files), so this one has
        // not seen it: the snapshot of it is then landed in the middle of this process's login.
        let other = try OwnerAuthority(database: fixture.database, vault: fixture.vault, audit: fixture.audit)
        try await other.resetPassword(AuthFixture.secret("the owner's new passphrase"), client: .local("t"))
        let changed = try fixture.ownerState()
        // Back to before the change (the vault's floor included), then the change lands mid-login.
        try fixture.restoreOwnerState(old)
        fixture.onNextClockRead { try? fixture.restoreOwnerState(changed) }
        #expect(await authError { try await fixture.login() }?.code == .unauthorized)
        let sessions = try await fixture.database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM auth_sessions")
        }
        #expect(sessions == 0)
        _ = try await fixture.login("owner", "the owner's new passphrase")
    }
}

@Suite("Brute-force limits")
struct BruteForceTests {
    @Test(
        "the 11th failed password in 15 minutes is 429 with Retry-After, from 127.0.0.1 too, even with the right password"
    )
    func accountLimit() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        for _ in 0..<10 {
            #expect(await authError { try await fixture.login("owner", "wrong password here") }?.code == .unauthorized)
            fixture.advance(1)
        }
        let locked = await authError { try await fixture.login() }
        #expect(locked?.code == .rateLimited)
        let first = try #require(locked?.retryAfter)
        #expect(first > 800 && first <= 900)
        // The lock ends; the next lockout within a day lasts twice as long (growing back-off).
        fixture.advance(901)
        for _ in 0..<10 {
            _ = await authError { try await fixture.login("owner", "wrong password here") }
        }
        let second = try #require(await authError { try await fixture.login() }?.retryAfter)
        #expect(second > 1700 && second <= 1800)
        #expect(try fixture.auditActions().contains("auth.login"))
    }

    @Test("a locked-out owner recovers at the terminal: moat owner password clears the account's count")
    func terminalRecovery() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        for _ in 0..<10 { _ = await authError { try await fixture.login("owner", "wrong password here") } }
        #expect(await authError { try await fixture.login() }?.code == .rateLimited)
        try await fixture.authority.resetPassword(AuthFixture.secret("a brand new passphrase"), client: .local("cli"))
        _ = try await fixture.login("owner", "a brand new passphrase")
    }

    @Test("moat owner password also lifts a lockout of the owner's own address")
    func terminalRecoveryOfAddress() async throws {
        var settings = AuthSettings()
        settings.passwordFailuresPerAddress = 3
        let fixture = try AuthFixture(settings: settings)
        try await fixture.setUp()
        for _ in 0..<3 { _ = await authError { try await fixture.login("someone", "wrong password here") } }
        #expect(await authError { try await fixture.login() }?.code == .rateLimited)
        try await fixture.authority.resetPassword(AuthFixture.secret("a brand new passphrase"), client: .local("cli"))
        _ = try await fixture.login("owner", "a brand new passphrase")
    }

    @Test("logins running at once cannot slip past the limit together")
    func concurrentLimit() async throws {
        var settings = AuthSettings()
        settings.passwordFailuresPerAccount = 3
        settings.concurrentPasswordChecks = 16
        let fixture = try AuthFixture(settings: settings)
        try await fixture.setUp()
        let codes = await ConcurrentAttemptTests.atOnce(10) {
            _ = try await fixture.login("owner", "wrong password here")
        }
        #expect(codes.filter { $0 == .unauthorized }.count == 3)
        #expect(codes.filter { $0 == .rateLimited }.count == 7)
    }

    @Test("a correct login resets the account's count")
    func successResets() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        for _ in 0..<9 { _ = await authError { try await fixture.login("owner", "wrong password here") } }
        _ = try await fixture.login()
        for _ in 0..<9 { _ = await authError { try await fixture.login("owner", "wrong password here") } }
        _ = try await fixture.login()
    }

    @Test("a token is shown once, stored as prefix and SHA-256 only, and works as a bearer")
    func createAndUse() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let created = try await fixture.authority.createToken(
            name: "ci", scope: .read, lifetime: nil, client: AuthFixture.client)
        let parts = created.token.split(separator: "_")
        #expect(parts.count == 3 && parts[0] == "moat" && parts[1].count == 8 && parts[2].count >= 32)
        #expect(parts[1] == Substring(created.record.prefix))
        let stored = try fixture.allStoredText()
        #expect(!stored.contains(created.token))
        #expect(!stored.contains(String(parts[2])))
        #expect(stored.contains(SHA256Hex.of(created.token)))
        let record = try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
        #expect(record.prefix == created.record.prefix && record.scope == .read)
        let listed = try await fixture.authority.tokens()
        #expect(listed.first?.lastUsedAt != nil)
        // Default lifetime: 90 days.
        #expect(created.record.expiresAt == created.record.createdAt + 90 * 86_400_000)
    }

    @Test("revoked, expired, altered and malformed tokens are 401; use after revoke is audited")
    func refusals() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let created = try await fixture.authority.createToken(
            name: "script", scope: .write, lifetime: 3600, client: AuthFixture.client)
        var flipped = Array(created.token)
        flipped[flipped.count - 1] = flipped.last == "a" ? "b" : "a"
        for bad in [String(flipped), "moat_short_x", created.token + "x", "Bearer " + created.token, ""] {
            #expect(
                await authError { try await fixture.authority.authenticate(bearer: bad, client: AuthFixture.client) }?
                    .code == .unauthorized)
        }
        try await fixture.authority.revokeToken(prefix: created.record.prefix, client: AuthFixture.client)
        #expect(
            await authError {
                try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
            }?.code == .unauthorized)
        #expect(try fixture.auditActions().contains("auth.token.use_revoked"))
        let short = try await fixture.authority.createToken(
            name: "short", scope: .read, lifetime: 60, client: AuthFixture.client)
        fixture.advance(61)
        #expect(
            await authError {
                try await fixture.authority.authenticate(bearer: short.token, client: AuthFixture.client)
            }?.code == .unauthorized)
        #expect(
            await authError { try await fixture.authority.revokeToken(prefix: "nothere1", client: AuthFixture.client) }?
                .code == .notFound)
    }

    @Test("revoke-all --tokens revokes every API token")
    func revokeAllTokens() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let kept = try await fixture.authority.createToken(
            name: "a", scope: .read, lifetime: nil, client: AuthFixture.client)
        try await fixture.authority.revokeAll(tokens: false, client: AuthFixture.client)
        _ = try await fixture.authority.authenticate(bearer: kept.token, client: AuthFixture.client)
        try await fixture.authority.revokeAll(tokens: true, client: AuthFixture.client)
        #expect(
            await authError {
                try await fixture.authority.authenticate(bearer: kept.token, client: AuthFixture.client)
            }?.code == .unauthorized)
    }
}

@Suite("Tamper-proof auth rows")
struct AuthTamperTests {
    @Test("a session row inserted with plain SQL does not log anyone in")
    func forgedSession() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let id = "attacker-chosen-session-id"
        try fixture.sql(
            "INSERT INTO auth_sessions (id_hash, token_version, created_at, last_seen_at, source, user_agent, mac) VALUES (?, 1, ?, ?, '', '', ?)",
            [
                SHA256Hex.of(id), Int64(fixture.now.timeIntervalSince1970 * 1000),
                Int64(fixture.now.timeIntervalSince1970 * 1000), String(repeating: "a", count: 64),
            ])
        #expect(try await fixture.authority.session(id: id) == nil)
        #expect(try fixture.auditActions().contains("auth.tamper"))
    }

    @Test("swapping the password hash with plain SQL fails closed")
    func replacedPasswordHash() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let attackerHash = try PasswordHashForTests.make("attacker password!!")
        try fixture.sql("UPDATE auth_owner SET password_hash = ?", [attackerHash])
        #expect(try await fixture.authority.state() == .damaged)
        #expect(await authError { try await fixture.login("owner", "attacker password!!") }?.code == .tampered)
        #expect(await authError { try await fixture.login() }?.code == .tampered)
    }

    @Test("a token row inserted or un-revoked with plain SQL is not accepted")
    func forgedToken() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let token = "moat_ABCDEFGH_" + String(repeating: "x", count: 40)
        try fixture.sql(
            "INSERT INTO auth_api_tokens (prefix, name, scope, token_hash, created_at, mac) VALUES ('ABCDEFGH', 'evil', 'admin', ?, 0, ?)",
            [SHA256Hex.of(token), String(repeating: "b", count: 64)])
        #expect(
            await authError { try await fixture.authority.authenticate(bearer: token, client: AuthFixture.client) }?
                .code == .unauthorized)
        let created = try await fixture.authority.createToken(
            name: "x", scope: .read, lifetime: nil, client: AuthFixture.client)
        try await fixture.authority.revokeToken(prefix: created.record.prefix, client: AuthFixture.client)
        try fixture.sql("UPDATE auth_api_tokens SET revoked_at = NULL WHERE prefix = ?", [created.record.prefix])
        #expect(
            await authError {
                try await fixture.authority.authenticate(bearer: created.token, client: AuthFixture.client)
            }?.code == .unauthorized)
        try fixture.sql("UPDATE auth_api_tokens SET scope = 'admin'")
        #expect(try await fixture.authority.tokens().isEmpty)
    }
}

@Suite("A database-only attacker cannot roll the owner back")
struct OwnerRollbackTests {
    @Test("an older genuine owner row put back (the old password) fails closed")
    func oldRowPutBack() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let old = try fixture.ownerRow()
        try await fixture.authority.changePassword(
            current: AuthFixture.secret(AuthFixture.password), new: AuthFixture.secret("the new long passphrase"),
            client: AuthFixture.client)
        try fixture.restoreOwner(old)
        #expect(try await fixture.authority.state() == .damaged)
        let refused = await authError { try await fixture.login() }
        #expect(refused?.code == .tampered && refused?.message.contains("older than the vault") == true)
        // The terminal reset is the way out, and starts above every earlier version.
        try await fixture.authority.setUpLocally(
            username: "owner", password: AuthFixture.secret("a third long passphrase"), replace: true,
            client: .local("cli"))
        let version = try await fixture.authority.tokenVersion()
        #expect(version > (old.int("token_version") ?? 0) + 1)
        _ = try await fixture.login("owner", "a third long passphrase")
    }

    @Test("a deleted owner row does not reopen setup; moat owner setup without --reset refuses too")
    func deletedRow() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        try fixture.sql("DELETE FROM auth_owner")
        #expect(try await fixture.authority.state() == .damaged)
        let link = await authError { try await fixture.authority.createSetupToken(client: AuthFixture.client) }
        #expect(link?.code == .tampered && link?.message.contains("missing from moat.db") == true)
        let terminal = await authError {
            try await fixture.authority.setUpLocally(
                username: "mallory", password: AuthFixture.secret("a takeover passphrase"), replace: false,
                client: .local("cli"))
        }
        #expect(terminal?.code == .alreadySetUp)
    }

    @Test("sessions of an earlier owner never come back: a reset starts above their token version")
    func oldSessionAfterReset() async throws {
        let fixture = try AuthFixture()
        let first = try await fixture.setUp()
        let sessions = try await fixture.database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM auth_sessions").map {
                StoredRow(columns: Array($0.columnNames), values: Array($0.databaseValues))
            }
        }
        try await fixture.authority.setUpLocally(
            username: "owner", password: AuthFixture.secret("a fresh owner passphrase"), replace: true,
            client: .local("cli"))
        for row in sessions {
            let placeholders = row.columns.map { _ in "?" }.joined(separator: ", ")
            try fixture.sql(
                "INSERT INTO auth_sessions (\(row.columns.joined(separator: ", "))) VALUES (\(placeholders))",
                StatementArguments(row.values))
        }
        #expect(try await fixture.authority.session(id: first.sessionID) == nil)
    }

    @Test("putting back the owner row from before TOTP enrolment does not turn two-factor login off")
    func totpDowngrade() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let plain = try fixture.ownerRow()
        let (totp, _) = try await TwoFactorTests.enrol(fixture)
        try fixture.restoreOwner(plain)
        fixture.advance(60)
        #expect(await authError { try await fixture.login() }?.code == .unauthorized)
        _ = try await fixture.login(code: totp.code(atStep: TOTP.step(at: fixture.now)))
    }
}

@Suite("Two-factor login")
struct TwoFactorTests {
    /// Sets up the owner and enrols TOTP; returns the app's TOTP and the recovery codes.
    static func enrolled(_ fixture: AuthFixture) async throws -> (TOTP, [String]) {
        try await fixture.setUp()
        return try await enrol(fixture)
    }

    /// Enrols TOTP for the owner already set up; returns the app's TOTP and the recovery codes.
    static func enrol(_ fixture: AuthFixture) async throws -> (TOTP, [String]) {
        // From the web the current password is needed; a wrong one changes nothing.
        let refused = await authError {
            try await fixture.authority.beginTOTPEnrolment(
                currentPassword: AuthFixture.secret("not the password!"), client: AuthFixture.client)
        }
        #expect(refused?.code == .unauthorized)
        #expect(try fixture.vault.value(named: OwnerAuthority.pendingTOTPSecretName) == nil)
        let enrolment = try await fixture.authority.beginTOTPEnrolment(
            currentPassword: AuthFixture.secret(AuthFixture.password), client: AuthFixture.client)
        #expect(enrolment.uri.hasPrefix("otpauth://totp/Moat:owner?secret=\(enrolment.secretBase32)"))
        #expect(enrolment.qrSVG.hasPrefix("<svg") && !enrolment.qrText.isEmpty)
        let secret = try #require(Base32.decode(enrolment.secretBase32))
        let totp = TOTP(secret: secret)
        // Not on until confirmed.
        #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: false))
        let right = totp.code(atStep: TOTP.step(at: fixture.now))
        let wrong = String(right.dropLast()) + (right.last == "0" ? "1" : "0")
        #expect(
            await authError { try await fixture.authority.confirmTOTP(code: wrong, client: AuthFixture.client) }?.code
                == .unauthorized)
        fixture.advance(30)
        let codes = try await fixture.authority.confirmTOTP(
            code: totp.code(atStep: TOTP.step(at: fixture.now)), client: AuthFixture.client)
        #expect(codes.count == 10 && Set(codes).count == 10)
        #expect(try await fixture.authority.state() == .ready(username: "owner", totpEnabled: true))
        #expect(try !fixture.allStoredText().contains(enrolment.secretBase32))
        for code in codes { #expect(try !fixture.allStoredText().contains(code)) }
        #expect(try fixture.vault.value(named: OwnerAuthority.totpSecretName) != nil)
        return (totp, codes)
    }

    @Test("login needs the code; a replayed code is refused; ±1 step works")
    func loginWithCode() async throws {
        let fixture = try AuthFixture()
        let (totp, _) = try await Self.enrolled(fixture)
        fixture.advance(60)
        #expect(await authError { try await fixture.login() }?.code == .unauthorized)
        let step = TOTP.step(at: fixture.now)
        let code = totp.code(atStep: step)
        _ = try await fixture.login(code: code)
        // The same code again: replay.
        #expect(await authError { try await fixture.login(code: code) }?.code == .unauthorized)
        fixture.advance(60)
        let next = TOTP.step(at: fixture.now)
        _ = try await fixture.login(code: totp.code(atStep: next - 1))
        _ = try await fixture.login(code: totp.code(atStep: next + 1))
        #expect(await authError { try await fixture.login(code: totp.code(atStep: next + 3)) }?.code == .unauthorized)
        // A wrong code and a wrong password look the same.
        let wrongCode = await authError { try await fixture.login(code: "000001") }
        let wrongPassword = await authError { try await fixture.login("owner", "wrong wrong wrong", code: code) }
        #expect(wrongCode == wrongPassword)
        #expect(try fixture.auditActions().contains("auth.totp.failure"))
    }

    @Test("the same code in two concurrent logins works once")
    func concurrentReplay() async throws {
        let fixture = try AuthFixture()
        let (totp, _) = try await Self.enrolled(fixture)
        fixture.advance(60)
        let code = totp.code(atStep: TOTP.step(at: fixture.now))
        async let first = authError { try await fixture.login(code: code) }
        async let second = authError { try await fixture.login(code: code) }
        let results = await [first, second]
        #expect(results.filter { $0 == nil }.count == 1)
        #expect(results.contains { $0?.code == .unauthorized })
    }

    @Test("a recovery code works once")
    func recoveryCode() async throws {
        let fixture = try AuthFixture()
        let (_, codes) = try await Self.enrolled(fixture)
        _ = try await fixture.login(code: codes[3])
        #expect(await authError { try await fixture.login(code: codes[3]) }?.code == .unauthorized)
        _ = try await fixture.login(code: codes[4].uppercased())
        #expect(try fixture.auditActions().contains("auth.recovery_code.use"))
    }

    @Test("5 failed codes in 15 minutes: TOTP checks answer 429")
    func totpLimit() async throws {
        let fixture = try AuthFixture()
        let (totp, _) = try await Self.enrolled(fixture)
        for index in 0..<5 {
            #expect(
                await authError { try await fixture.login(code: String(format: "%06d", 123_450 + index)) }?.code
                    == .unauthorized)
        }
        let locked = await authError { try await fixture.login(code: totp.code(atStep: TOTP.step(at: fixture.now))) }
        #expect(locked?.code == .rateLimited)
        #expect((locked?.retryAfter ?? 0) > 0)
        // The lock does not tell a right password from a wrong one, or the owner's name from another.
        #expect(await authError { try await fixture.login("owner", "wrong password here", code: "123456") } == locked)
        #expect(await authError { try await fixture.login("someone", "wrong password here") }?.code == .rateLimited)
    }
}
