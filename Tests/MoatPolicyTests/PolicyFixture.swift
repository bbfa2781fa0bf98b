import Crypto
import Foundation
import GRDB
import MoatAudit
import MoatCore
import MoatPolicy
import MoatStore
import MoatTestSupport
import Synchronization

/// A real `moat.db` in a temporary directory, a real audit log, and a clock the test moves.
final class PolicyFixture: Sendable {
    let directory = TemporaryDirectory("moat-policy")
    let database: MoatDatabase
    let audit: AuditLog
    let engine: PolicyEngine
    let clock = TestClock()
    /// The policy engine's tables and the audit log it writes to, in the installation's order.
    static let migrations = [StoreSchema.meta, AuditSchema.log, PolicySchema.tables, PolicySchema.ownerBindings]

    init(settings: PolicySettings = PolicySettings()) throws {
        database = try MoatDatabase(path: directory.file("moat.db"), migrations: Self.migrations)
        let keys = AuditKeys(
            fingerprintKey: SymmetricKey(size: .bits256),
            signingKey: Curve25519.Signing.PrivateKey(),
            scrub: { $0 }
        )
        audit = AuditLog(database: database, keys: keys, origin: "moat/test")
        let clock = self.clock
        engine = PolicyEngine(
            database: database,
            authenticator: RowAuthenticator(key: SymmetricKey(size: .bits256)),
            audit: audit,
            settings: settings,
            now: { clock.now }
        )
    }

    func advance(_ seconds: TimeInterval) {
        clock.value.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    /// Plain SQL, as an attacker with write access to `moat.db` (but not the vault) would run it.
    func sql(_ statement: String, _ arguments: StatementArguments = []) throws {
        try database.pool.writeWithoutTransaction { db in try db.execute(sql: statement, arguments: arguments) }
    }

    func auditActions() throws -> [String] {
        try database.pool.read { db in try String.fetchAll(db, sql: "SELECT action FROM audit_entries ORDER BY seq") }
    }

    func auditTargets(_ action: String) throws -> [String] {
        try database.pool.read { db in
            try String.fetchAll(
                db, sql: "SELECT target FROM audit_entries WHERE action = ? ORDER BY seq", arguments: [action])
        }
    }

    /// Creates, approves and ages `count` approvals in `domain`.
    func approveMany(_ count: Int, in domain: TrustDomain) async throws {
        for index in 0..<count {
            let pending = try await engine.requestApproval(
                ActionRequest(tool: "tool", arguments: "{\"n\":\(index)}", destination: ""),
                domain: domain,
                principal: .owner
            )
            advance(1)
            try await engine.approve(pending.id)
            advance(1)
        }
    }
}

/// A clock the test moves by hand.
final class TestClock: Sendable {
    let value = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    var now: Date { value.withLock { $0 } }
}
