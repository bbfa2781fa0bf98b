import GRDB

extension MoatDatabase {
    /// One object of a database's schema as `sqlite_master` lists it.
    struct SchemaObject: Hashable, Comparable {
        let type: String
        let name: String
        let table: String
        /// The `CREATE` statement, with runs of white space collapsed; nil for SQLite's automatic indexes.
        let sql: String?

        static func < (lhs: SchemaObject, rhs: SchemaObject) -> Bool {
            (lhs.type, lhs.name) < (rhs.type, rhs.name)
        }

        var described: String {
            type == "table" || type == "view" ? "\(type) \(name)" : "\(type) \(name) on \(table)"
        }
    }

    /// The schema of `db` (SQLite's own statistics tables aside: `ANALYZE` and `PRAGMA optimize` make
    /// them, and they change no query's result). Only those exact tables are left out: any other object
    /// named `sqlite_…` (a trigger put in through `PRAGMA writable_schema`, say) is listed like the rest.
    static func schema(_ db: Database) throws -> Set<SchemaObject> {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT type, name, tbl_name, sql FROM sqlite_master
                WHERE NOT (type = 'table' AND name IN ('sqlite_stat1', 'sqlite_stat4'))
                """
        )
        return Set(
            rows.map { row in
                let sql: String? = row[3]
                return SchemaObject(
                    type: row[0],
                    name: row[1],
                    table: row[2],
                    sql: sql.map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
                )
            }
        )
    }

    /// The schema `migrator`'s migrations create, up to and including `lastMigration`: computed by running
    /// them on an empty in-memory database, so the migrations stay the one definition of the schema.
    static func expectedSchema(upTo lastMigration: String, migrator: DatabaseMigrator) throws -> Set<SchemaObject> {
        let queue = try DatabaseQueue()
        try migrator.migrate(queue, upTo: lastMigration)
        return try queue.read { db in try schema(db) }
    }

    /// Refuses a database that holds schema objects `migrator`'s migrations did not create, or whose tables,
    /// indexes or triggers differ from theirs.
    ///
    /// Such an object is how an attacker with write access to `moat.db` would change what Moat's own
    /// statements do: a `BEFORE INSERT … RAISE(IGNORE)` trigger silently drops chosen audit entries, a
    /// view or an altered table changes what is read. An object Moat created that is now missing (a
    /// dropped append-only trigger) is not refused here: those triggers guard against Moat's own bugs,
    /// and the hash chain and row MACs detect what their absence lets an attacker do.
    static func checkSchema(_ db: Database, path: String, migrator: DatabaseMigrator) throws {
        let applied = try migrator.appliedIdentifiers(db)
        guard let last = migrator.migrations.last(where: { applied.contains($0) }) else { return }
        let expected = try expectedSchema(upTo: last, migrator: migrator)
        let expectedByName = Dictionary(expected.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let unexpected = try schema(db).subtracting(expected).sorted()
        guard !unexpected.isEmpty else { return }
        let found = unexpected.prefix(5).map { object in
            expectedByName[object.name] != nil ? "a changed \(object.described)" : object.described
        }
        let more = unexpected.count > 5 ? " and \(unexpected.count - 5) more" : ""
        throw StoreError(
            .foreignSchema,
            "\(path) holds schema objects Moat did not create: \(found.joined(separator: ", "))\(more). "
                + "Something with write access to Moat's state changed the database (such an object can hide "
                + "audit entries), so Moat refuses to use it. Restore moat.db from a backup, or inspect the "
                + "object with `sqlite3 \(path) .schema`, remove it (e.g. DROP TRIGGER name), then run "
                + "`moat audit verify --checkpoint FILE` with a checkpoint you kept"
        )
    }
}
