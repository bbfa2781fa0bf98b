import Crypto
import Foundation
import MoatAdmin
import MoatApp
import MoatAudit
import MoatAuth
import MoatConfig
import MoatConsole
import MoatHTTP
import MoatNet
import MoatPolicy
import MoatStore
import MoatTestSupport
import Testing

/// The admin operations' dispatch and input checks, on a real `moat.db`.
@Suite struct PolicyOperationsTests {
    /// The operations over a fresh installation; keep the fixture alive as long as they are used.
    static func operations() throws -> (AdminOperations, OwnerHTTPFixture) {
        let fixture = try OwnerHTTPFixture()
        let engine = PolicyEngine(
            database: fixture.database, authenticator: RowAuthenticator(key: SymmetricKey(size: .bits256)),
            audit: fixture.audit)
        let operations = AdminOperations(
            owner: OwnerOperations(authority: fixture.authority, baseURL: { nil }),
            policy: PolicyOperations(engine: engine))
        return (operations, fixture)
    }

    @Test("unknown operations and malformed arguments are usage errors (64) that change nothing")
    func usageErrors() async throws {
        let (operations, fixture) = try Self.operations()
        defer { withExtendedLifetime(fixture) {} }
        let client = ClientInfo.local("test")
        for request in [
            AdminRequest(op: "vault.dump"), AdminRequest(op: "trust.explode"),
            AdminRequest(op: "trust.set", params: ["domain": "web", "level": "9", "reason": "r"]),
            AdminRequest(op: "trust.set", params: ["domain": "moon", "level": "2", "reason": "r"]),
            AdminRequest(op: "trust.rollback", params: ["id": "x"]),
        ] {
            let response = await operations.perform(request, client: client)
            #expect(response.status == 64, "\(request.op) \(request.params)")
            #expect(response.error?.isEmpty == false)
        }
        let show = await operations.perform(AdminRequest(op: "trust.show"), client: client)
        #expect(show.status == 0 && show.output.contains("web          1 (inform)  (default)"))
        let history = await operations.perform(AdminRequest(op: "trust.history"), client: client)
        #expect(history.status == 0 && history.output.isEmpty)
    }

    @Test("owner and policy operations are routed to their handlers")
    func routing() async throws {
        let (operations, fixture) = try Self.operations()
        defer { withExtendedLifetime(fixture) {} }
        let client = ClientInfo.local("test")
        let status = await operations.perform(AdminRequest(op: "owner.status"), client: client)
        #expect(status.status == 0 && status.output.contains("no owner yet"))
        let set = await operations.perform(
            AdminRequest(op: "trust.set", params: ["domain": "web", "level": "2", "reason": "test"]), client: client)
        #expect(set.status == 0 && set.output.contains("web 1 (inform) -> 2 (suggest)"))
        let empty = await operations.perform(
            AdminRequest(op: "trust.set", params: ["domain": "web", "level": "0", "reason": " "]), client: client)
        // Bad input exits 64 (usage), as for every other command (one error → exit-code mapping).
        #expect(empty.status == 64 && empty.error?.contains("reason") == true)
    }
}
