import GRDB

/// Tells whether anything was committed to `moat.db` since a given moment — by this process's pool or by
/// another process — so a module can keep a verified copy of a few rows in memory and use it until the
/// database changes.
///
/// It asks SQLite's `PRAGMA data_version` on a read-only connection of its own: the number changes
/// whenever another connection commits. The check reads the shared-memory WAL index only (no file I/O,
/// no fsync), so it is made synchronously on the caller's thread; it costs microseconds. A value read
/// *before* the rows it guards makes the copy conservative: a commit that lands in between changes the
/// number again, and the copy is read anew.
public final class DatabaseChangeWatch: Sendable {
    private let queue: DatabaseQueue

    /// Opens the watch's own read-only connection to the database at `path` (already opened and
    /// migrated by ``MoatDatabase``).
    public init(path: String) throws(StoreError) {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "moat.change-watch"
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw StoreError(.io, "could not open \(path) to watch for changes: \(error)")
        }
    }

    /// The current data version; two equal answers mean nothing was committed in between.
    public func version() throws(StoreError) -> Int64 {
        do {
            return try queue.inDatabase { db in
                try Int64.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? 0
            }
        } catch {
            throw StoreError(.io, "could not read moat.db's data version: \(error)")
        }
    }

    /// Closes the connection (at shutdown, with the database).
    public func close() throws {
        try queue.close()
    }
}
