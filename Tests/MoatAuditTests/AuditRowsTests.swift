import Foundation
import GRDB
import MoatAudit
import MoatStore
import Synchronization
import Testing

/// ``AuditLog/append(event:writing:)``: a module's rows and their audit entry in one group commit.
/// The rows and the entry are durable together or not at all, and one caller's failure never takes
/// another caller's part of the same commit with it.
@Suite("Audit log: rows written with their entry")
struct AuditRowsTests {
    /// A fixture with a table of its own beside the audit tables (a module's rows).
    static func fixture() async throws -> AuditFixture {
        let fixture = try AuditFixture()
        try await fixture.database.pool.write { db in
            try db.execute(sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        }
        return fixture
    }

    static func notes(_ fixture: AuditFixture) async throws -> [String] {
        try await fixture.database.pool.read { db in try String.fetchAll(db, sql: "SELECT text FROM notes ORDER BY id")
        }
    }

    static func actions(_ fixture: AuditFixture) async throws -> [String] {
        try await fixture.database.pool.read { db in
            try String.fetchAll(db, sql: "SELECT action FROM audit_entries ORDER BY seq")
        }
    }

    @Test("the rows and the entry made of their result are both stored, and the chain verifies")
    func rowsAndEntryTogether() async throws {
        let fixture = try await Self.fixture()
        let id = try await fixture.log.append(
            event: { id in AuditEvent(actor: "system", action: "note.add", target: "note:\(id)") },
            writing: { db -> Int64 in
                try db.execute(sql: "INSERT INTO notes (text) VALUES ('first')")
                return db.lastInsertedRowID
            })
        #expect(try await Self.notes(fixture) == ["first"])
        let target = try await fixture.database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT target FROM audit_entries WHERE action = 'note.add'")
        }
        #expect(target == "note:\(id)")
        #expect(try fixture.verify().brokenAt == nil)
    }

    @Test("a body that throws keeps nothing and appends nothing; its caller gets its error")
    func failingBodyKeepsNothing() async throws {
        struct Refused: Error {}
        let fixture = try await Self.fixture()
        await #expect(throws: Refused.self) {
            try await fixture.log.append(AuditEvent(actor: "system", action: "note.add")) { db in
                try db.execute(sql: "INSERT INTO notes (text) VALUES ('half')")
                throw Refused()
            }
        }
        #expect(try await Self.notes(fixture).isEmpty)
        #expect(try await Self.actions(fixture).isEmpty)
    }

    @Test("when the entry cannot be stored (a planted trigger drops it), the rows are not kept either")
    func droppedEntryDropsTheRows() async throws {
        let fixture = try await Self.fixture()
        try await fixture.database.pool.write { db in
            try db.execute(
                sql: """
                    CREATE TRIGGER drop_notes BEFORE INSERT ON audit_entries WHEN NEW.action = 'note.add'
                    BEGIN SELECT RAISE(IGNORE); END
                    """)
        }
        let error = await #expect(throws: AuditError.self) {
            try await fixture.log.append(AuditEvent(actor: "system", action: "note.add")) { db in
                try db.execute(sql: "INSERT INTO notes (text) VALUES ('unrecorded')")
            }
        }
        #expect(error?.code == .appendFailed)
        #expect(try await Self.notes(fixture).isEmpty)
    }

    @Test(
        "in one busy group commit, failing parts roll back alone: every other caller's rows and entries stay, one chain"
    )
    func failuresStayWithTheirCaller() async throws {
        struct Refused: Error {}
        let fixture = try await Self.fixture()
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<64 {
                group.addTask {
                    do {
                        if index % 4 == 0 {
                            // A plain append in between.
                            try await fixture.log.append(
                                AuditEvent(actor: "system", action: "test.plain", target: "\(index)"))
                            return (index, true)
                        }
                        try await fixture.log.append(
                            AuditEvent(actor: "system", action: "note.add", target: "\(index)")
                        ) {
                            db in
                            try db.execute(sql: "INSERT INTO notes (text) VALUES (?)", arguments: ["\(index)"])
                            if index % 4 == 1 { throw Refused() }
                        }
                        return (index, true)
                    } catch is Refused {
                        return (index, false)
                    }
                }
            }
            var all: [Int: Bool] = [:]
            for try await (index, ok) in group { all[index] = ok }
            return all
        }
        let kept = Set(try await Self.notes(fixture).compactMap(Int.init))
        let written = Set(outcomes.filter { $0.value && $0.key % 4 != 0 }.map(\.key))
        #expect(kept == written)
        #expect(kept.allSatisfy { $0 % 4 != 1 })
        #expect(outcomes.filter { !$0.value }.count == 16)
        let actions = try await Self.actions(fixture)
        #expect(actions.filter { $0 == "note.add" }.count == written.count)
        #expect(actions.filter { $0 == "test.plain" }.count == 16)
        #expect(try fixture.verify().brokenAt == nil)
    }

    @Test("a write without an entry goes through the same commit and appends nothing")
    func writeWithoutEntry() async throws {
        let fixture = try await Self.fixture()
        try await fixture.log.write { db in try db.execute(sql: "INSERT INTO notes (text) VALUES ('quiet')") }
        try await fixture.log.append(AuditEvent(actor: "system", action: "test.after"))
        #expect(try await Self.notes(fixture) == ["quiet"])
        #expect(try await Self.actions(fixture) == ["test.after"])
        #expect(try fixture.verify().brokenAt == nil)
    }
}
