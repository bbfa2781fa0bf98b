import Foundation
import GRDB
import MoatAudit
import MoatStore
import MoatTestSupport
import Testing

/// The migrations these tests open a database with: MoatStore's own and the audit log's, whose tables
/// (with their append-only triggers) the schema check is tested against.
enum TestSchema {
    static let migrations = [StoreSchema.meta, AuditSchema.log]
}

@Suite struct MoatDatabaseTests {
    @Test("a new database is a real SQLite file in WAL mode with synchronous=FULL and foreign keys on")
    func pragmas() throws {
        let temp = TemporaryDirectory()
        let database = try MoatDatabase(path: temp.file("moat.db"), migrations: TestSchema.migrations)
        let (journal, readerSync, foreignKeys, appID) = try database.pool.read { db in
            (
                try String.fetchOne(db, sql: "PRAGMA journal_mode"),
                try Int.fetchOne(db, sql: "PRAGMA synchronous"),
                try Int.fetchOne(db, sql: "PRAGMA foreign_keys"),
                try Int32.fetchOne(db, sql: "PRAGMA application_id")
            )
        }
        let writerSync = try database.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        #expect(journal == "wal")
        #expect(readerSync == 2)  // 2 = FULL
        #expect(writerSync == 2)
        #expect(foreignKeys == 1)
        #expect(appID == MoatDatabase.applicationID)
        #expect(FileModes.mode(of: temp.file("moat.db")) == 0o600)
        #expect(try database.appliedMigrations() == ["2026-11-23 meta", "2026-11-23 audit"])
        #expect(try database.installationID().count == 32)
        #expect(try database.integrityProblems().isEmpty)
        try database.close()
    }

    @Test("opening again keeps the installation id and applies nothing twice")
    func reopen() throws {
        let temp = TemporaryDirectory()
        let first = try MoatDatabase(path: temp.file("moat.db"), migrations: TestSchema.migrations)
        let id = try first.installationID()
        try first.close()
        let second = try MoatDatabase(path: temp.file("moat.db"), migrations: TestSchema.migrations)
        #expect(try second.installationID() == id)
        #expect(try second.appliedMigrations() == TestSchema.migrations.map(\.name))
    }

    @Test("a file that is not SQLite gives a clear error, not a crash")
    func notADatabase() throws {
        let temp = TemporaryDirectory()
        try temp.write("moat.db", String(repeating: "this is not a database\n", count: 100))
        let error = #expect(throws: StoreError.self) {
            try MoatDatabase(path: temp.file("moat.db"), migrations: TestSchema.migrations)
        }
        #expect(error?.code == .notADatabase)
        #expect(error?.message.contains("not an SQLite database") == true)
    }

    @Test("another program's SQLite database is refused and left untouched")
    func foreignDatabase() throws {
        let temp = TemporaryDirectory()
        let path = temp.file("moat.db")
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "CREATE TABLE songs (title TEXT)") }
        try queue.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let error = #expect(throws: StoreError.self) { try MoatDatabase(path: path, migrations: TestSchema.migrations) }
        #expect(error?.code == .foreignDatabase)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(throws: StoreError.self) { try MoatDatabase.inspect(path: path, migrations: TestSchema.migrations) }
    }

    @Test("a database with its pages overwritten by garbage gives a clear error")
    func corruptPages() throws {
        let temp = TemporaryDirectory()
        let path = temp.file("moat.db")
        let database = try MoatDatabase(path: path, migrations: TestSchema.migrations)
        try database.pool.write { db in
            try db.execute(sql: "CREATE TABLE filler (x BLOB)")
            for _ in 0..<50 { try db.execute(sql: "INSERT INTO filler VALUES (randomblob(2000))") }
        }
        try database.pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        try database.close()
        // Keep the 100-byte header, smash everything after it (the schema page included).
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for index in 100..<bytes.count { bytes[index] = UInt8(truncatingIfNeeded: index &* 31) }
        try bytes.write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: StoreError.self) { try MoatDatabase(path: path, migrations: TestSchema.migrations) }
        #expect(error?.code == .corrupt || error?.code == .notADatabase)
        #expect(error?.message.contains("restore it from a backup") == true)
    }

    @Test("a database migrated by a newer Moat is refused, never downgraded")
    func newerSchema() throws {
        let temp = TemporaryDirectory()
        let path = temp.file("moat.db")
        try MoatDatabase(path: path, migrations: TestSchema.migrations).close()
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('2099-01-01 from the future')")
        }
        try queue.close()
        let error = #expect(throws: StoreError.self) { try MoatDatabase(path: path, migrations: TestSchema.migrations) }
        #expect(error?.code == .newerSchema)
    }

    @Test("a migration list that does not start with MoatStore's own migration stops the process")
    func metaFirst() async {
        await #expect(processExitsWith: .failure) {
            let temp = TemporaryDirectory()
            _ = try? MoatDatabase(path: temp.file("moat.db"), migrations: [AuditSchema.log])
        }
    }

    @Test("inspect reports a sound database without changing it")
    func inspect() throws {
        let temp = TemporaryDirectory()
        let path = temp.file("moat.db")
        try MoatDatabase(path: path, migrations: TestSchema.migrations).close()
        #expect(try MoatDatabase.inspect(path: path, migrations: TestSchema.migrations).isEmpty)
    }
}
