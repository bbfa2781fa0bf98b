import GRDB
import MoatApp
import MoatStore
import MoatTestSupport
import Testing

@Suite struct MoatSchemaTests {
    @Test("the installation's migrations keep the released names in the released order")
    func releasedOrder() throws {
        // Every moat.db records these names; renaming or reordering one makes existing files refuse to open
        // (Tests/Fixtures/previous-release holds one). New migrations are appended after them.
        #expect(
            Array(MoatSchema.migrations.prefix(4).map(\.name)) == [
                "2026-11-23 meta", "2026-11-23 audit", "2026-11-23 policy", "2026-11-24 owner",
            ])
        let temp = TemporaryDirectory()
        let database = try MoatDatabase(path: temp.file("moat.db"), migrations: MoatSchema.migrations)
        #expect(try database.appliedMigrations() == MoatSchema.migrations.map(\.name))
        try database.close()
        #expect(try MoatDatabase.inspect(path: temp.file("moat.db"), migrations: MoatSchema.migrations).isEmpty)
    }

    @Test("a database of the whole installation opened with a shorter list is refused as newer, not changed")
    func shorterListRefused() throws {
        let temp = TemporaryDirectory()
        try MoatDatabase(path: temp.file("moat.db"), migrations: MoatSchema.migrations).close()
        let error = #expect(throws: StoreError.self) {
            try MoatDatabase(path: temp.file("moat.db"), migrations: Array(MoatSchema.migrations.prefix(2)))
        }
        #expect(error?.code == .newerSchema)
        try MoatDatabase(path: temp.file("moat.db"), migrations: MoatSchema.migrations).close()
    }
}
