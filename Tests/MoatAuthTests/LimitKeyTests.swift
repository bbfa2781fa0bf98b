import Foundation
import GRDB
import MoatAuth
import MoatStore
import Testing

@Suite("Limit keys and the refusal audit budget")
struct LimitKeyTests {
    @Test(
        "every loopback address is one source for limits; an IPv6 address counts by its /64",
        arguments: [
            ("127.0.0.1", "loopback"), ("127.0.0.2", "loopback"), ("127.255.3.9", "loopback"), ("::1", "loopback"),
            ("::ffff:127.0.0.9", "loopback"), ("::ffff:192.0.2.7", "192.0.2.7"), ("192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"), ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
            ("admin-socket", "admin-socket"),
        ])
    func limitKey(_ address: String, _ key: String) {
        #expect(ClientInfo(sourceIP: address, userAgent: "").limitKey == key)
    }

    @Test("wrong setup tokens from ever-new addresses add at most the per-minute budget to the audit log")
    func globalRefusalBudget() async throws {
        var settings = AuthSettings()
        settings.refusalAuditsPerMinute = 5
        let fixture = try AuthFixture(settings: settings)
        func wrongSetup(_ index: Int) async {
            // Addresses no per-address limit ties together (documentation ranges, never contacted).
            let client = ClientInfo(sourceIP: "2001:db8:\(index)::1", userAgent: "attacker")
            let error = await authError {
                _ = try await fixture.authority.completeSetup(
                    token: "not-a-token-\(index)", username: nil, password: AuthFixture.secret(AuthFixture.password),
                    client: client)
            }
            #expect(error?.code == .unauthorized)
        }
        for index in 0..<40 { await wrongSetup(index) }
        #expect(try fixture.auditActions().filter { $0 == "auth.setup" }.count == 5)
        #expect(try !fixture.auditActions().contains("auth.refusals.suppressed"))
        // The next minute's first refusal writes what went unrecorded as one entry.
        fixture.advance(61)
        await wrongSetup(40)
        let actions = try fixture.auditActions()
        #expect(actions.filter { $0 == "auth.setup" }.count == 6)
        #expect(actions.filter { $0 == "auth.refusals.suppressed" }.count == 1)
        let summary = try await fixture.database.pool.read { db in
            try String.fetchOne(
                db, sql: "SELECT metadata FROM audit_entries WHERE action = 'auth.refusals.suppressed'")
        }
        #expect(summary?.contains("\"count\":35") == true, "\(summary ?? "")")
        // A success is never held back by the budget.
        for index in 41..<50 { await wrongSetup(index) }
        try await fixture.setUp()
        #expect(try fixture.auditActions().last == "auth.login")
    }
}
