import Crypto
import Foundation
import GRDB
import MoatAudit
import MoatStore
import MoatTestSupport

/// A fresh database, audit keys and log for one test.
struct AuditFixture {
    let temp = TemporaryDirectory()
    let database: MoatDatabase
    let keys: AuditKeys
    let log: AuditLog

    static let secretValue = "sk-live-4f9a8b7c6d5e4f3a2b1c"
    /// The audit log's tables need only MoatStore's and its own migrations (the installation's order).
    static let migrations = [StoreSchema.meta, AuditSchema.log]

    init(checkpointInterval: Int = 1000) throws {
        database = try MoatDatabase(path: temp.file("moat.db"), migrations: Self.migrations)
        keys = AuditKeys(
            fingerprintKey: SymmetricKey(size: .bits256),
            signingKey: Curve25519.Signing.PrivateKey(),
            scrub: { $0.replacingOccurrences(of: AuditFixture.secretValue, with: "[secret:OPENAI_KEY]") }
        )
        log = AuditLog(
            database: database,
            keys: keys,
            origin: try AuditLog.origin(for: database),
            checkpointInterval: checkpointInterval
        )
    }

    func append(_ count: Int, action: String = "test.event") async throws {
        for index in 0..<count {
            try await log.append(AuditEvent(actor: "system", action: action, target: "item-\(index)"))
        }
    }

    func verify(kept: AuditCheckpoint? = nil) throws -> AuditVerifier.Report {
        try AuditVerifier.verify(database, publicKey: keys.verifyingKey, kept: kept)
    }

    /// Plain SQL as an attacker with write access to moat.db would run it (dropping the guard triggers first).
    func tamper(_ sql: String, _ arguments: StatementArguments = []) throws {
        try database.pool.writeWithoutTransaction { db in
            try db.execute(sql: "DROP TRIGGER IF EXISTS audit_entries_no_update")
            try db.execute(sql: "DROP TRIGGER IF EXISTS audit_entries_no_delete")
            try db.execute(sql: sql, arguments: arguments)
        }
    }
}

extension AuditVerifier.Report {
    var brokenAt: Int64? {
        if case .broken(let sequence, _) = self { return sequence }
        return nil
    }
}
