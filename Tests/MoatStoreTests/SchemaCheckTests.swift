import Foundation
import GRDB
import MoatAudit
import MoatStore
import MoatTestSupport
import Testing

/// `moat.db` holds exactly the schema Moat's migrations create: anything else is refused at open and
/// reported by `moat doctor` (``MoatDatabase/inspect(path:migrations:)``).
@Suite struct SchemaCheckTests {
    /// A migrated database changed by `sql`, as an attacker with write access to the file would.
    func tampered(_ sql: String) throws -> TemporaryDirectory {
        let temp = TemporaryDirectory()
        try MoatDatabase(path: temp.file("moat.db"), migrations: TestSchema.migrations).close()
        let queue = try DatabaseQueue(path: temp.file("moat.db"))
        try queue.write { db in try db.execute(sql: sql) }
        try queue.close()
        return temp
    }

    func refusal(_ temp: TemporaryDirectory) -> (open: StoreError?, doctor: StoreError?) {
        let open = #expect(throws: StoreError.self) {
            try MoatDatabase(path: temp.file("moat.db"), migrations: TestSchema.migrations)
        }
        let doctor = #expect(throws: StoreError.self) {
            try MoatDatabase.inspect(path: temp.file("moat.db"), migrations: TestSchema.migrations)
        }
        return (open, doctor)
    }

    @Test("a trigger that silently drops audit entries is refused at open and by doctor, named, with the way out")
    func foreignTrigger() throws {
        let temp = try tampered(
            """
            CREATE TRIGGER hide_vault BEFORE INSERT ON audit_entries
              WHEN NEW.action IN ('vault.add', 'vault.rm') BEGIN SELECT RAISE(IGNORE); END
            """
        )
        let (open, doctor) = refusal(temp)
        for error in [open, doctor] {
            #expect(error?.code == .foreignSchema)
            #expect(
                error?.message.contains("trigger hide_vault on audit_entries") == true, "\(String(describing: error))")
            #expect(error?.message.contains("Restore moat.db from a backup") == true)
            #expect(error?.message.contains("DROP TRIGGER") == true)
        }
    }

    @Test("a trigger named like SQLite's statistics tables (put in through writable_schema) is refused too")
    func triggerNamedLikeStatistics() throws {
        let temp = try tampered(
            """
            PRAGMA writable_schema = ON;
            INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('trigger', 'sqlite_stat_x',
              'audit_entries', 0, 'CREATE TRIGGER sqlite_stat_x BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(IGNORE); END');
            PRAGMA writable_schema = OFF;
            """
        )
        let (open, doctor) = refusal(temp)
        for error in [open, doctor] {
            #expect(error?.code == .foreignSchema)
            #expect(
                error?.message.contains("trigger sqlite_stat_x on audit_entries") == true,
                "\(String(describing: error))")
        }
    }

    @Test("a view and a table Moat did not create are refused")
    func foreignViewAndTable() throws {
        let view = try tampered("CREATE VIEW recent AS SELECT * FROM audit_entries")
        #expect(refusal(view).open?.message.contains("view recent") == true)
        let table = try tampered("CREATE TABLE extra (x)")
        #expect(refusal(table).doctor?.message.contains("table extra") == true)
    }

    @Test("a Moat table whose definition was altered is refused as changed")
    func alteredTable() throws {
        let temp = try tampered("ALTER TABLE audit_entries ADD COLUMN note TEXT")
        let (open, doctor) = refusal(temp)
        #expect(open?.message.contains("a changed table audit_entries") == true, "\(String(describing: open))")
        #expect(doctor?.code == .foreignSchema)
    }

    @Test("a dropped append-only trigger is not refused (the hash chain detects what it allows); nor is ANALYZE")
    func missingAndStatistics() throws {
        let temp = try tampered("DROP TRIGGER audit_entries_no_delete; ANALYZE")
        try MoatDatabase(path: temp.file("moat.db"), migrations: TestSchema.migrations).close()
        #expect(try MoatDatabase.inspect(path: temp.file("moat.db"), migrations: TestSchema.migrations).isEmpty)
    }
}
