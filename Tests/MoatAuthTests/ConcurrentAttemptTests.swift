import Foundation
import MoatAuth
import MoatCore
import Testing

/// The authority's database calls suspend the actor, so other calls run in between: every check a
/// change relies on is made in the change's own transaction. Each test starts many calls at once and
/// counts the outcomes, which are the same however the calls interleave.
@Suite("Checks made in the transaction that acts on them")
struct ConcurrentAttemptTests {
    /// Runs `body` `count` times at once and returns each call's error code (nil for a success).
    static func atOnce(
        _ count: Int, _ body: @escaping @Sendable () async throws -> Void
    ) async -> [AuthError.Code?] {
        await withTaskGroup(of: AuthError.Code?.self) { group in
            for _ in 0..<count { group.addTask { await authError { try await body() }?.code } }
            var codes: [AuthError.Code?] = []
            for await code in group { codes.append(code) }
            return codes
        }
    }

    @Test("wrong TOTP codes sent at once cannot slip past the limit together")
    func concurrentTOTPFailures() async throws {
        var settings = AuthSettings()
        settings.concurrentPasswordChecks = 16
        settings.passwordFailuresPerAccount = 100
        let fixture = try AuthFixture(settings: settings)
        let (totp, _) = try await TwoFactorTests.enrolled(fixture)
        fixture.advance(60)
        let step = TOTP.step(at: fixture.now)
        let accepted = Set((step - 1...step + 1).map { totp.code(atStep: $0) })
        let wrong = try #require(["000000", "111111", "222222", "333333"].first { !accepted.contains($0) })
        let codes = await Self.atOnce(8) { _ = try await fixture.login(code: wrong) }
        #expect(codes.filter { $0 == .unauthorized }.count == settings.totpFailures)
        #expect(codes.filter { $0 == .rateLimited }.count == 8 - settings.totpFailures)
    }

    @Test("wrong setup links sent at once cannot slip past the per-address limit together")
    func concurrentSetupGuesses() async throws {
        var settings = AuthSettings()
        settings.setupFailuresPerAddress = 3
        let fixture = try AuthFixture(settings: settings)
        _ = try await fixture.authority.createSetupToken(client: AuthFixture.client)
        let codes = await Self.atOnce(10) {
            _ = try await fixture.authority.completeSetup(
                token: "a-guessed-setup-token-a-guessed-setup-token", username: nil,
                password: AuthFixture.secret(AuthFixture.password), client: AuthFixture.client)
        }
        #expect(codes.filter { $0 == .unauthorized }.count == 3)
        #expect(codes.filter { $0 == .rateLimited }.count == 7)
        #expect(try await fixture.authority.state() == .needsSetup)
    }

    @Test("wrong current passwords sent at once cannot slip past the account limit together")
    func concurrentPasswordConfirmations() async throws {
        var settings = AuthSettings()
        settings.passwordFailuresPerAccount = 3
        settings.concurrentPasswordChecks = 16
        let fixture = try AuthFixture(settings: settings)
        try await fixture.setUp()
        let codes = await Self.atOnce(10) {
            try await fixture.authority.changePassword(
                current: AuthFixture.secret("not the current password"),
                new: AuthFixture.secret("a different long passphrase"), client: AuthFixture.client)
        }
        #expect(codes.filter { $0 == .unauthorized }.count == 3)
        #expect(codes.filter { $0 == .rateLimited }.count == 7)
    }

    @Test("terminal setups without --reset run at once: one owner is set up, the other is refused, none replaced")
    func concurrentTerminalSetups() async throws {
        let fixture = try AuthFixture()
        let names = ["first", "second"]
        let results = await withTaskGroup(of: (String, AuthError.Code?).self) { group in
            for name in names {
                group.addTask {
                    let code = await authError {
                        try await fixture.authority.setUpLocally(
                            username: name, password: AuthFixture.secret(AuthFixture.password), replace: false,
                            client: .local("cli"))
                    }?.code
                    return (name, code)
                }
            }
            var results: [String: AuthError.Code?] = [:]
            for await (name, code) in group { results[name] = code }
            return results
        }
        let winners = names.filter { results[$0] == .some(nil) }
        #expect(winners.count == 1)
        #expect(names.filter { results[$0] == .some(.alreadySetUp) }.count == 1)
        // The owner is the one whose setup succeeded, and it still logs in: nothing replaced it.
        let winner = try #require(winners.first)
        #expect(try await fixture.authority.state() == .ready(username: winner, totpEnabled: false))
        _ = try await fixture.login(winner)
    }

    @Test("an API token whose owner check raced a revoke-all by another process is refused, not left valid")
    func tokenCreatedDuringRevokeAll() async throws {
        let fixture = try AuthFixture()
        try await fixture.setUp()
        let before = try fixture.ownerState()
        try await fixture.secondAuthority().revokeAll(tokens: true, client: .local("cli"))
        let revoked = try fixture.ownerState()
        try fixture.restoreOwnerState(before)
        // The revoke-all lands between the creation's first look at the owner and its write.
        fixture.onNextClockRead { try? fixture.restoreOwnerState(revoked) }
        let refused = await authError {
            try await fixture.authority.createToken(
                name: "ci", scope: .read, lifetime: nil, client: AuthFixture.client)
        }
        #expect(refused?.code == .unauthorized)
        #expect(try await fixture.authority.tokens().isEmpty)
    }
}
