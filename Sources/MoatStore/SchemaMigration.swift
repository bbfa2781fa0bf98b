public import GRDB

/// One named step of `moat.db`'s schema, contributed by the module that owns its tables (Audit's tables
/// in MoatAudit, Policy's in MoatPolicy, …).
///
/// Append-only: a released migration is never edited, renamed or removed, because its name is recorded in
/// every `moat.db` it ran on and its tables are what the schema check expects; a change is a new migration.
/// The order they run in is fixed in one place, above every module (the composition root), and passed to
/// ``MoatDatabase/init(path:migrations:busyTimeoutSeconds:)``.
public struct SchemaMigration: Sendable {
    /// The name recorded in `grdb_migrations`, e.g. `2026-11-23 audit`.
    public let name: String
    let apply: @Sendable (Database) throws -> Void

    public init(_ name: String, _ apply: @escaping @Sendable (Database) throws -> Void) {
        self.name = name
        self.apply = apply
    }
}

/// MoatStore's own tables: `moat_meta` (the installation id) and `PRAGMA application_id`, which tells a
/// Moat database from another program's. Always the first migration.
public enum StoreSchema {
    /// `2026-11-23 meta`.
    public static let meta = SchemaMigration("2026-11-23 meta") { db in
        try db.execute(sql: "PRAGMA application_id = \(MoatDatabase.applicationID)")
        try db.create(table: "moat_meta") { table in
            table.primaryKey("key", .text)
            table.column("value", .text).notNull()
        }
        try db.execute(
            sql: "INSERT INTO moat_meta (key, value) VALUES ('installation_id', lower(hex(randomblob(16))))"
        )
        try db.execute(
            sql: "INSERT INTO moat_meta (key, value) VALUES ('created_at', strftime('%Y-%m-%dT%H:%M:%SZ','now'))"
        )
    }
}

extension DatabaseMigrator {
    /// A migrator that runs `migrations` in the order given.
    init(_ migrations: [SchemaMigration]) {
        self.init()
        for migration in migrations {
            registerMigration(migration.name, migrate: migration.apply)
        }
    }
}
