public import GRDB
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The one SQLite database of a Moat installation, `moat.db`, opened once as a GRDB `DatabasePool`.
///
/// WAL journal, `synchronous=FULL` (a committed transaction survives power loss, which the audit log's
/// durability promise depends on), foreign keys on, and the named append-only migrations each module
/// contributes (``SchemaMigration``), run in the order the caller gives. Opening checks
/// that the file really is Moat's: a non-SQLite file, another program's database, a damaged file or one
/// migrated by a newer Moat each give a ``StoreError`` that says what to do, never a crash.
public final class MoatDatabase: Sendable {
    /// `PRAGMA application_id` of a Moat database: "MOAT" in ASCII.
    public static let applicationID: Int32 = 0x4D4F_4154

    /// The pool; every module reads and writes through it.
    public let pool: DatabasePool
    /// The path of `moat.db`.
    public let path: String
    /// Every migration of this installation, in order: what the file is migrated to and checked against.
    let migrator: DatabaseMigrator
    /// The writer's WAL checkpoints, run beside its commits (``WALCheckpointer``).
    let checkpointer: WALCheckpointer

    /// Opens (creating if needed, mode 0600) and migrates the database at `path`.
    ///
    /// - Parameter migrations: every migration, in the one fixed order (``StoreSchema/meta`` first); the
    ///   schema check refuses any object they do not create, and a file with a migration not in the list
    ///   is refused as written by a newer Moat.
    public init(path: String, migrations: [SchemaMigration], busyTimeoutSeconds: Double = 5) throws(StoreError) {
        // A list without it would make a database with no application_id, refused at its next open.
        precondition(migrations.first?.name == StoreSchema.meta.name, "the first migration must be StoreSchema.meta")
        self.path = path
        let migrator = DatabaseMigrator(migrations)
        self.migrator = migrator
        let checkpointer = WALCheckpointer(path: path)
        self.checkpointer = checkpointer
        var existedBefore = stat()
        let isNew = lstat(path, &existedBefore) != 0 || existedBefore.st_size == 0
        try FileModes.createPrivateFile(path)
        if !isNew {
            // Checked read-only before the pool opens: opening a pool switches the file to WAL, and
            // another program's database must be left exactly as it was.
            try Self.checkOwnership(path)
        }

        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(busyTimeoutSeconds)
        configuration.label = "moat.db"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw Self.describe(error, path: path)
        }
        do {
            // GRDB sets synchronous=NORMAL on the writer when it enables WAL; the audit log's durability
            // promise needs FULL on the one connection that commits.
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                checkpointer.install(on: db)
            }
            try pool.write { db in
                if try migrator.hasBeenSuperseded(db) {
                    throw StoreError(
                        .newerSchema,
                        "\(path) was written by a newer version of Moat; install that version again "
                            + "(Moat never downgrades a database)"
                    )
                }
            }
            try migrator.migrate(pool)
            try pool.read { db in try Self.checkSchema(db, path: path, migrator: migrator) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.describe(error, path: path)
        }
    }

    /// Closes the pool (and the change watch, if one was opened); later use of them fails. Called once
    /// at shutdown.
    public func close() throws {
        try watch.withLock { watch in
            try watch.connection?.close()
            watch = (nil, true)
        }
        checkpointer.close()
        try pool.close()
    }

    deinit {
        checkpointer.close()
    }

    /// The change watch once opened, and whether the database was closed (then none is opened again: a
    /// new connection would count from the start and could repeat a version seen before).
    private let watch = Mutex<(connection: DatabaseChangeWatch?, closed: Bool)>((nil, false))

    /// The database's ``DatabaseChangeWatch``, opened on first use (one per database).
    /// - Throws: ``StoreError`` once the database is closed.
    public func changes() throws(StoreError) -> DatabaseChangeWatch {
        try watch.withLock { watch throws(StoreError) -> DatabaseChangeWatch in
            if let connection = watch.connection { return connection }
            guard !watch.closed else { throw StoreError(.io, "moat.db is closed") }
            let opened = try DatabaseChangeWatch(path: path)
            watch.connection = opened
            return opened
        }
    }

    /// Runs `PRAGMA integrity_check`; returns an empty array when the database is sound.
    public func integrityProblems() throws(StoreError) -> [String] {
        do {
            let rows = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            return rows == ["ok"] ? [] : rows
        } catch {
            throw Self.describe(error, path: path)
        }
    }

    /// The names of the migrations applied to this database, oldest first.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try migrator.appliedMigrations(db) }
    }

    /// The random identifier of this installation, created with the database.
    public func installationID() throws -> String {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM moat_meta WHERE key = 'installation_id'") ?? ""
        }
    }

    // MARK: Errors

    /// Refuses a file that is not an SQLite database, or is another program's, without writing to it.
    static func checkOwnership(_ path: String) throws(StoreError) {
        try checkHeader(path)
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            try queue.read { db in
                let appID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                let tableCount =
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'table'") ?? 0
                if appID != applicationID && (appID != 0 || tableCount > 0) {
                    throw StoreError(
                        .foreignDatabase,
                        "\(path) is an SQLite database of another program, not Moat's; "
                            + "move it away (Moat will create a new one) or point --home at another directory"
                    )
                }
            }
        } catch {
            throw describe(error, path: path)
        }
    }

    /// A non-empty file must start with the SQLite header; checking it first gives a clear message
    /// instead of a low-level SQLite error in the middle of start-up.
    static func checkHeader(_ path: String) throws(StoreError) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw StoreError(.io, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { _ = Glibc.close(fd) }
        var header = [UInt8](repeating: 0, count: 16)
        let count = read(fd, &header, 16)
        let magic = Array("SQLite format 3\0".utf8)
        if count != 16 || header != magic {
            throw StoreError(
                .notADatabase,
                "\(path) is not an SQLite database (its first bytes are not the SQLite header); "
                    + "if it is damaged, restore it from a backup, or move it away to start with an empty state"
            )
        }
    }

    static func describe(_ error: any Error, path: String) -> StoreError {
        if let error = error as? StoreError { return error }
        guard let error = error as? DatabaseError else {
            return StoreError(.io, "cannot use \(path): \(error)")
        }
        switch error.resultCode {
        case .SQLITE_NOTADB:
            return StoreError(
                .notADatabase,
                "\(path) is not an SQLite database; restore it from a backup, or move it away to start empty"
            )
        case .SQLITE_CORRUPT:
            return StoreError(
                .corrupt,
                "\(path) is damaged (SQLite reports corruption); restore it from a backup, "
                    + "or move it away to start with an empty state"
            )
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN, .SQLITE_IOERR, .SQLITE_FULL:
            // `message` is SQLite's own text; GRDB keeps bound arguments out of it by default.
            return StoreError(.io, "cannot use \(path): \(error.message ?? "\(error.resultCode)")")
        default:
            return StoreError(.io, "database error on \(path): \(error.message ?? "\(error.resultCode)")")
        }
    }
}

extension MoatDatabase {
    /// `body`'s answer about the existing database at `path`, opened read-only and neither migrated nor
    /// checked (for `moat doctor`: a module asking about its own tables); nil when it cannot be read.
    public static func readExisting<Answer>(path: String, _ body: (Database) throws -> Answer) -> Answer? {
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: path, configuration: configuration) else { return nil }
        defer { try? queue.close() }
        return try? queue.read { db in try body(db) }
    }

    /// Checks an existing `moat.db` without changing it (for `moat doctor`): that it is Moat's, holds
    /// only the schema `migrations` create, and is sound.
    ///
    /// - Returns: the integrity problems; empty when sound.
    /// - Throws: ``StoreError`` when the file is not a database, another program's, unreadable, or holds
    ///   schema objects Moat did not create.
    public static func inspect(path: String, migrations: [SchemaMigration]) throws(StoreError) -> [String] {
        try checkOwnership(path)
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db in
                try checkSchema(db, path: path, migrator: DatabaseMigrator(migrations))
                let rows = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                return rows == ["ok"] ? [] : rows
            }
        } catch {
            throw describe(error, path: path)
        }
    }
}
