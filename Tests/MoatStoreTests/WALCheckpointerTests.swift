import Foundation
import GRDB
import MoatTestSupport
import Synchronization
import Testing

@testable import MoatStore

@Suite struct WALCheckpointerTests {
    static let migrations = [
        StoreSchema.meta,
        SchemaMigration("test blobs") { db in try db.execute(sql: "CREATE TABLE blobs (id INTEGER PRIMARY KEY, x BLOB)")
        },
    ]

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    @Test("commits past 1,000 WAL pages are checkpointed beside them: the pages reach moat.db and every row stays")
    func checkpointsBeside() async throws {
        let temp = TemporaryDirectory()
        let path = temp.file("moat.db")
        let database = try MoatDatabase(path: path, migrations: Self.migrations)
        #expect(Self.fileSize(path) < 1_000_000)
        // 60 commits of 100 KB: about 1,500 pages of WAL, past the threshold.
        for _ in 0..<60 {
            try await database.pool.write { db in
                try db.execute(sql: "INSERT INTO blobs (x) VALUES (zeroblob(100000))")
            }
        }
        // The writer's commits left the copy to the checkpointer; wait for it (a busy machine is slow). It
        // copies at least the ~1,000 pages (4 MB of frames) the WAL held when it was asked; the WAL restarts
        // after it, so what later commits wrote may stay there, as with SQLite's own checkpoint.
        let deadline = Date().addingTimeInterval(120)
        while database.checkpointer.completed.load(ordering: .relaxed) == 0 || Self.fileSize(path) < 3_000_000,
            Date() < deadline
        {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(database.checkpointer.completed.load(ordering: .relaxed) >= 1)
        #expect(Self.fileSize(path) >= 3_000_000)
        // The writer still commits durably at FULL, and nothing was lost.
        #expect(try await database.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
        try database.close()
        let again = try MoatDatabase(path: path, migrations: Self.migrations)
        let (rows, bytes) = try await again.pool.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM blobs") ?? 0,
                try Int.fetchOne(db, sql: "SELECT sum(length(x)) FROM blobs") ?? 0
            )
        }
        #expect(rows == 60)
        #expect(bytes == 6_000_000)
        #expect(try again.integrityProblems().isEmpty)
    }

    @Test(
        "a steady stream of commits: a few background checkpoints, not one per commit, and the writer copies what each left behind"
    )
    func steadyStreamCatchesUp() async throws {
        let temp = TemporaryDirectory()
        let path = temp.file("moat.db")
        let database = try MoatDatabase(path: path, migrations: Self.migrations)
        // 2,500 commits of ~2 pages back to back: about 5,000 pages of WAL, five times the threshold. Chasing
        // the stream, a background checkpoint ran after nearly every commit past the threshold.
        for _ in 0..<2500 {
            try await database.pool.write { db in
                try db.execute(sql: "INSERT INTO blobs (x) VALUES (zeroblob(6000))")
            }
        }
        // A busy machine may run the background checkpoint late: wait for one, then commit until the writer
        // has caught up after it (each commit gives it the chance).
        let checkpointer = database.checkpointer
        let deadline = Date().addingTimeInterval(60)
        while checkpointer.completed.load(ordering: .relaxed) == 0 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        var extra = 0
        while checkpointer.caughtUp.load(ordering: .relaxed) == 0 && Date() < deadline {
            try await database.pool.write { db in try db.execute(sql: "INSERT INTO blobs (x) VALUES (zeroblob(10))") }
            extra += 1
            try await Task.sleep(for: .milliseconds(20))
        }
        let checkpoints = checkpointer.completed.load(ordering: .relaxed)
        #expect(checkpoints >= 1)
        #expect(checkpointer.caughtUp.load(ordering: .relaxed) >= 1)
        #expect(checkpoints <= 25, "\(checkpoints) background checkpoints for ~5 cycles of the WAL")
        try database.close()
        let again = try MoatDatabase(path: path, migrations: Self.migrations)
        #expect(
            try await again.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM blobs") } == 2500 + extra)
        #expect(try again.integrityProblems().isEmpty)
    }

    @Test("a checkpoint asked for after moat.db was removed does not create the file again")
    func removedFileStaysRemoved() async throws {
        let temp = TemporaryDirectory()
        let path = temp.file("moat.db")
        let database = try MoatDatabase(path: path, migrations: Self.migrations)
        try await database.pool.write { db in try db.execute(sql: "INSERT INTO blobs (x) VALUES (zeroblob(1000))") }
        try FileManager.default.removeItem(atPath: path)
        database.checkpointer.request()
        try await Task.sleep(for: .milliseconds(300))
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(database.checkpointer.completed.load(ordering: .relaxed) == 0)
    }

    @Test("a closed database's checkpointer runs nothing, and commits below the threshold ask for none")
    func closedRunsNothing() async throws {
        let temp = TemporaryDirectory()
        let database = try MoatDatabase(path: temp.file("moat.db"), migrations: Self.migrations)
        try await database.pool.write { db in try db.execute(sql: "INSERT INTO blobs (x) VALUES (zeroblob(1000))") }
        try await Task.sleep(for: .milliseconds(200))
        #expect(database.checkpointer.completed.load(ordering: .relaxed) == 0)
        database.checkpointer.close()
        database.checkpointer.request()
        try await Task.sleep(for: .milliseconds(200))
        #expect(database.checkpointer.completed.load(ordering: .relaxed) == 0)
    }
}
