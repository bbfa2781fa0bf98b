import Dispatch
import GRDB
import GRDBSQLite
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Runs the WAL's checkpoints beside the commits of `moat.db` instead of inside one of them.
///
/// SQLite's automatic checkpoint runs in the commit that finds the WAL past 1,000 pages: that commit
/// (an agent turn's, an API request's) also copies the WAL into the database file and fsyncs it, so about
/// one agent message in fifty paid one more fsync and a few hundred page writes (the agent benchmark's
/// p99, Docs/Performance.md). Here the writer's automatic checkpoint is replaced (`sqlite3_wal_hook`,
/// which is how SQLite implements `wal_autocheckpoint` too) by a hook that, past the same 1,000 pages,
/// asks for a PASSIVE checkpoint on a connection of its own, on a background thread; it copies what no
/// reader still needs without blocking the writer or the readers.
///
/// What it cannot copy are the frames committed while it ran; and SQLite starts the WAL over only when a
/// write begins with every frame copied. Asked again after every commit past the threshold, as before,
/// background checkpoints chased a steady stream of commits without ever catching up: one after nearly
/// every commit, each with two fsyncs beside the commit's own (the agent benchmark's slow turns, one in
/// about 135, Docs/Performance.md). So the frames a background checkpoint leaves behind are copied by the
/// writer itself, once, right after its next commit (in the WAL hook, as SQLite's own automatic checkpoint
/// does): a few pages, after which the next write starts the WAL over.
///
/// Durability does not change: a commit is durable once the WAL is fsynced (`synchronous=FULL`); a
/// checkpoint only copies committed pages into the main file, fsyncing the WAL before and the main file
/// after, before the WAL is written over.
final class WALCheckpointer: Sendable {
    /// The WAL size (pages) past which a checkpoint is asked for: SQLite's default.
    static let pages: Int32 = 1000

    let path: String
    /// The checkpointing connection, opened on first use; none once the database is closed.
    private let state = Mutex<(connection: DatabaseQueue?, closed: Bool)>((nil, false))
    /// A checkpoint is queued or running: commits meanwhile do not queue another.
    private let requested = Atomic<Bool>(false)
    /// Checkpoints run so far (for tests).
    let completed = Atomic<Int>(0)
    /// A background checkpoint ran: the writer copies what was committed during it after its next commit.
    private let catchUpDue = Atomic<Bool>(false)
    /// Catch-ups the writer ran so far (for tests).
    let caughtUp = Atomic<Int>(0)

    init(path: String) {
        self.path = path
    }

    /// Replaces the automatic checkpoint of `db` (the pool's writer) by this one. The hook keeps the
    /// checkpointer alive for good (a pool may outlive its ``MoatDatabase``): one small object per open,
    /// whose connection ``close()`` closes.
    func install(on db: Database) {
        let context = Unmanaged.passRetained(self).toOpaque()
        sqlite3_wal_hook(
            db.sqliteConnection,
            { context, db, _, pages in
                if let context {
                    Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().committed(db, pages: pages)
                }
                return SQLITE_OK
            }, context)
    }

    /// After a commit of the writer `db`, whose WAL now holds `pages`: copies what the last background
    /// checkpoint left behind, or asks for a background checkpoint past the threshold.
    private func committed(_ db: OpaquePointer?, pages: Int32) {
        if !requested.load(ordering: .acquiring), catchUpDue.exchange(false, ordering: .acquiringAndReleasing) {
            // On the writer, between its commits: nothing is written meanwhile, so this copies every frame
            // no reader still needs (none at all, without an fsync, when nothing is left). A failure leaves
            // them to the next background checkpoint.
            if sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil) == SQLITE_OK {
                caughtUp.add(1, ordering: .relaxed)
            }
            return
        }
        if pages >= Self.pages { request() }
    }

    /// Queues one checkpoint on a background thread, unless one is queued or running.
    func request() {
        guard !requested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        DispatchQueue.global(qos: .utility).async { [self] in
            defer { requested.store(false, ordering: .releasing) }
            run()
        }
    }

    /// One PASSIVE checkpoint; a failure (the file is busy, gone, or read-only) leaves the WAL to the
    /// next request, as SQLite's own automatic checkpoint does.
    private func run() {
        state.withLock { state in
            guard !state.closed else { return }
            do {
                if state.connection == nil {
                    // SQLite creates a missing file: a moat.db removed under a running process must not
                    // come back as an empty file (with the default mode) from here.
                    var info = stat()
                    guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return }
                    var configuration = Configuration()
                    configuration.label = "moat.db checkpoints"
                    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
                    state.connection = try DatabaseQueue(path: path, configuration: configuration)
                }
                let counts = try state.connection?.writeWithoutTransaction { db in try db.checkpoint(.passive) }
                completed.add(1, ordering: .relaxed)
                // It copied the WAL as it found it; what the writer committed meanwhile is still there (its
                // counts are of the WAL it found, so it cannot tell; when nothing is, the catch-up is free).
                // When a reader held it back, the rest may be large: left to the next background run.
                if let counts, counts.checkpointedFrameCount >= counts.walFrameCount {
                    catchUpDue.store(true, ordering: .releasing)
                }
            } catch {
                // Left to the next commit past the threshold.
            }
        }
    }

    /// Closes the checkpointing connection; no checkpoint runs after this (one running is waited for).
    func close() {
        let connection = state.withLock { state in
            state.closed = true
            defer { state.connection = nil }
            return state.connection
        }
        try? connection?.close()
    }
}
