import Crypto
public import Foundation
public import GRDB
public import MoatCore
public import MoatStore

/// The append side of the audit log: fail-closed, durable, one linear chain.
///
/// `append` returns only after the entry's transaction has committed (`synchronous=FULL`, so it is on
/// disk). Concurrent callers are batched into one transaction (group commit): the first caller to find
/// the writer idle becomes the leader and commits everything queued behind it, so a burst costs one
/// fsync rather than one per entry. The head of the chain is read inside each write transaction, so
/// appends from other processes (the CLI next to a running server) still form one chain.
public actor AuditLog {
    /// The database the log is stored in.
    public nonisolated let database: MoatDatabase
    let keys: AuditKeys
    private let redactor: AuditRedactor
    /// The checkpoint origin line: an id of this installation.
    public nonisolated let origin: String
    private let checkpointInterval: Int64
    private let now: @Sendable () -> Date

    private var flushing = false
    /// Where committed entries are counted (``attach(_:)``); nil: nowhere.
    private var metrics: MoatMetrics?
    private var waiting: [(Work, CheckedContinuation<Done, any Error>)] = []

    /// - Parameters:
    ///   - checkpointInterval: a signed checkpoint is stored every this many entries (default 1000).
    ///   - now: the clock (injected in tests).
    public init(
        database: MoatDatabase,
        keys: AuditKeys,
        origin: String,
        checkpointInterval: Int = 1000,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.database = database
        self.keys = keys
        self.redactor = AuditRedactor(keys: keys)
        self.origin = origin
        self.checkpointInterval = Int64(max(1, checkpointInterval))
        self.now = now
    }

    /// The origin for an installation: `moat/<installation id>`.
    public static func origin(for database: MoatDatabase) throws -> String {
        "moat/" + (try database.installationID())
    }

    /// Appends `event` and returns the stored entry once it is durable.
    ///
    /// - Throws: ``AuditError`` `.appendFailed` when the entry could not be committed (disk full,
    ///   read-only database, lock timeout). A caller about to do something privileged must then not do it;
    ///   ``performAfterAudit(_:_:)`` enforces that.
    @discardableResult
    public func append(_ event: AuditEvent) async throws -> AuditEntry {
        let prepared = try redactor.prepare(event)
        return try await submit(Work(event: { _ in prepared }, rows: nil)).entry!
    }

    /// Runs `body` in the log's next group commit and appends the entry `event` makes of its result in
    /// the same transaction (each caller's part in its own savepoint): the rows and their entry are
    /// durable together or not at all. `event` returning nil appends nothing. When `body` throws, its
    /// error is thrown and nothing of it is kept; when the entry cannot be stored, ``AuditError``
    /// `.appendFailed` is thrown and the rows are not kept either. Other callers' parts are unaffected.
    ///
    /// For a module's own rows written next to its audit trail (the agent's conversations): one fsync
    /// where a separate write and append would take two, shared with every append in flight.
    ///
    /// - Parameter durability: ``Durability/now`` (the default) returns once the part is on disk;
    ///   ``Durability/withNextCommit`` once it is committed, leaving it to the next durable commit.
    public func append<T: Sendable>(
        event: @escaping @Sendable (T) -> AuditEvent?,
        durability: Durability = .now,
        writing body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        let redactor = self.redactor
        let work = Work(
            event: { value in
                guard let made = event(value as! T) else { return nil }
                return try redactor.prepare(made)
            },
            rows: { db in try body(db) }, durability: durability)
        return try await submit(work).value as! T
    }

    /// ``append(event:writing:)`` with an entry known beforehand (nil: none).
    public func append<T: Sendable>(
        _ event: AuditEvent?, writing body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        try await append(event: { _ in event }, writing: body)
    }

    /// When a part of a group commit is on disk.
    public enum Durability: Sendable {
        /// Before the call returns (`synchronous=FULL`: the WAL is fsynced at the commit).
        case now
        /// With the next durable commit of `moat.db`. The part is committed (visible, in order, in the
        /// chain) but its WAL frames are written without an fsync; the next commit with ``now`` fsyncs the
        /// WAL, which puts every earlier frame on disk too, since a WAL is only appended to. A power loss
        /// before that commit loses the part and everything after it, never a part without the ones
        /// before it. For a step whose effects nobody outside the process sees before the next durable
        /// commit (the agent stores an inbound message, then records its model round durably before the
        /// request leaves): one fsync where there were two.
        case withNextCommit
    }

    /// Runs `body` in the log's next group commit, in its own savepoint, without an entry (see
    /// ``append(event:writing:)``).
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await append(nil, writing: body)
    }

    /// One caller's part of a group commit: rows to write (optional) and the entry made of their result.
    private struct Work: Sendable {
        let event: @Sendable (any Sendable) throws -> PreparedEvent?
        let rows: (@Sendable (Database) throws -> any Sendable)?
        var durability = Durability.now
    }

    /// What one part left behind: the rows' result and the entry stored with them.
    private struct Done: Sendable {
        let value: any Sendable
        let entry: AuditEntry?
    }

    /// Counts every entry this log commits from now on, with how long its append took
    /// (``MoatMetrics/audited(action:outcome:metadata:seconds:)``).
    public func attach(_ metrics: MoatMetrics) {
        self.metrics = metrics
    }

    /// Counts `entry` (committed `start` ago) into the attached metrics.
    private func observe(_ entry: AuditEntry?, since start: ContinuousClock.Instant) {
        guard let metrics, let entry else { return }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var fields: [String: String] = [:]
        // Only the few actions counted by a metadata value pay for reading the metadata back.
        if ["agent.message", "agent.tool.call", "agent.tool.result", "vault.unlock"].contains(entry.action),
            let object = try? JSONSerialization.jsonObject(with: Data(entry.metadata.utf8)) as? [String: Any]
        {
            for key in ["channel", "decision", "tool", "source"] {
                if let value = object[key] as? String { fields[key] = value }
            }
        }
        metrics.audited(action: entry.action, outcome: entry.outcome, metadata: fields, seconds: seconds)
    }

    /// Queues `work` for the group commit: the first caller to find the writer idle commits its own part
    /// and returns as soon as it is durable; parts queued meanwhile are committed together by a drain that
    /// runs on (so no caller waits for batches queued after its own).
    private func submit(_ work: Work) async throws -> Done {
        let start = ContinuousClock.now
        if flushing {
            let done = try await withCheckedThrowingContinuation { continuation in
                waiting.append((work, continuation))
            }
            observe(done.entry, since: start)
            return done
        }
        flushing = true
        let mine = await commit([work])[0]
        if waiting.isEmpty {
            flushing = false
        } else {
            Task { await self.drain() }
        }
        let done = try mine.get()
        observe(done.entry, since: start)
        return done
    }

    /// Commits the queued parts, batch after batch, until none is left.
    private func drain() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting.removeAll()
            let results = await commit(batch.map(\.0))
            for (item, result) in zip(batch, results) { item.1.resume(with: result) }
        }
        flushing = false
    }

    /// Appends `event`, and only once it is durable runs `action`. If the append fails, `action` never
    /// runs and the append's error is thrown.
    public func performAfterAudit<T: Sendable>(
        _ event: AuditEvent,
        _ action: @Sendable () async throws -> T
    ) async throws -> T {
        try await append(event)
        return try await action()
    }

    /// Writes a signed checkpoint of the current head (if the head is not checkpointed yet) and returns
    /// the latest checkpoint. Called on demand and at clean shutdown.
    @discardableResult
    public func writeCheckpoint() async throws -> AuditCheckpoint {
        let signingKey = keys.signingKey
        let origin = self.origin
        let time = Self.timestamp(now())
        do {
            return try await database.pool.write { db in
                let (count, head) = try Self.head(db)
                if let existing = try AuditStore.checkpoint(db, count: count, origin: origin) {
                    return existing
                }
                let checkpoint = try AuditCheckpoint(origin: origin, count: count, head: head, signingKey: signingKey)
                try AuditStore.insert(checkpoint, createdAt: time, db)
                return checkpoint
            }
        } catch {
            throw AuditError(.appendFailed, "could not write an audit checkpoint: \(Self.describe(error))")
        }
    }

    /// Appends `event` from synchronous code (a vault change the CLI records before it is made), and
    /// returns the stored entry once it is durable. Same chain and guarantees as ``append(_:)``, without
    /// the batching; must not be called from inside a database access.
    @discardableResult
    public nonisolated func appendNow(_ event: AuditEvent) throws -> AuditEntry {
        let prepared = try redactor.prepare(event)
        return try commitNow([prepared])[0]
    }

    /// Batched appends go through the pool's async write, so the fsync never blocks a thread of the
    /// cooperative pool. A failed commit fails every part of the batch.
    private func commit(_ parts: [Work]) async -> [Result<Done, any Error>] {
        let batch = Batch(log: self, parts: parts)
        do {
            let durability: Durability = parts.allSatisfy { $0.durability == .withNextCommit } ? .withNextCommit : .now
            return try await database.pool.writeWithoutTransaction { db in
                try Self.transaction(db, durability, batch.write)
            }
        } catch let error as AuditError where error.code == .appendFailed {
            return Array(repeating: .failure(error), count: parts.count)
        } catch {
            return Array(repeating: .failure(Self.appendFailed(error)), count: parts.count)
        }
    }

    private nonisolated func commitNow(_ events: [PreparedEvent]) throws -> [AuditEntry] {
        let batch = Batch(log: self, parts: events.map { event in Work(event: { _ in event }, rows: nil) })
        do {
            return try database.pool.writeWithoutTransaction { db in try Self.transaction(db, .now, batch.write) }
                .map { try $0.get().entry! }
        } catch let error as AuditError where error.code == .appendFailed {
            throw error
        } catch {
            throw Self.appendFailed(error)
        }
    }

    /// Runs `body` in one transaction, committed with `synchronous=FULL` (``Durability/now``: the WAL is
    /// fsynced) or `NORMAL` (``Durability/withNextCommit``: not), then leaves the writer at `FULL`, checked,
    /// as every other commit of `moat.db` relies on it. Every append, batched or not, sets the mode before
    /// its transaction (SQLite changes it only outside one; it costs no I/O), so a writer left at `NORMAL`
    /// by a failure is put right by the next append.
    private static func transaction<T>(_ db: Database, _ durability: Durability, _ body: (Database) throws -> T)
        throws -> T
    {
        let deferred = durability == .withNextCommit
        try db.cachedStatement(sql: deferred ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL").execute()
        var result: T?
        let outcome = Result {
            try db.inTransaction {
                result = try body(db)
                return .commit
            }
        }
        if deferred {
            // Outside any transaction now (inTransaction commits or rolls back), where the mode may change.
            try db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute()
            guard try Int.fetchOne(db.cachedStatement(sql: "PRAGMA synchronous")) == 2 else {
                throw AuditError(.appendFailed, "moat.db's writer could not be set back to synchronous=FULL")
            }
        }
        try outcome.get()
        return result!
    }

    private static func appendFailed(_ error: any Error) -> AuditError {
        AuditError(
            .appendFailed,
            "the audit log could not record the event, so it was not carried out: \(describe(error))"
        )
    }

    /// One write transaction's worth of parts: each in its own savepoint (one that fails rolls back alone),
    /// entries chained onto the head read inside the transaction, each row confirmed as stored, a signed
    /// checkpoint every `interval` entries.
    private struct Batch: Sendable {
        let parts: [Work]
        let time: String
        let interval: Int64
        /// The signing key is taken out of them only for a checkpoint (once every `interval` entries).
        let keys: AuditKeys
        let origin: String

        init(log: AuditLog, parts: [Work]) {
            self.parts = parts
            self.time = AuditLog.timestamp(log.now())
            self.interval = log.checkpointInterval
            self.keys = log.keys
            self.origin = log.origin
        }

        func write(_ db: Database) throws -> [Result<Done, any Error>] {
            var (sequence, previous) = try AuditLog.head(db)
            var results: [Result<Done, any Error>] = []
            results.reserveCapacity(parts.count)
            for part in parts {
                var done: Done?
                let result = Result { () throws -> Done in
                    try db.inSavepoint {
                        let value: any Sendable = try part.rows?(db) ?? ()
                        let entry = try part.event(value).map { try self.store($0, after: sequence, previous, db) }
                        done = Done(value: value, entry: entry)
                        return .commit
                    }
                    return done!
                }
                switch result {
                case .success(let done):
                    if let entry = done.entry {
                        sequence = entry.sequence
                        previous = entry.hash
                    }
                case .failure(let error):
                    // SQLite rolls a whole transaction back on some errors (a full disk, I/O): then the parts
                    // before this one are gone too, and the whole batch fails.
                    if !db.isInsideTransaction { throw error }
                }
                results.append(result)
            }
            return results
        }

        /// Stores `event` as the entry after `sequence` (whose hash is `previous`), confirmed.
        func store(_ event: PreparedEvent, after sequence: Int64, _ previous: String, _ db: Database) throws
            -> AuditEntry
        {
            let sequence = sequence + 1
            let hash = AuditChain.hash(
                sequence: sequence,
                time: time,
                actor: event.actor,
                action: event.action,
                target: event.target,
                sourceIP: event.sourceIP,
                userAgent: event.userAgent,
                outcome: event.outcome,
                metadata: event.metadata,
                previousHash: previous
            )
            let entry = AuditEntry(
                sequence: sequence,
                time: time,
                actor: event.actor,
                action: event.action,
                target: event.target,
                sourceIP: event.sourceIP,
                userAgent: event.userAgent,
                outcome: event.outcome,
                metadata: event.metadata,
                previousHash: previous,
                hash: hash
            )
            do {
                try AuditStore.insertConfirmed(entry, db)
                if sequence % interval == 0 {
                    let checkpoint = try AuditCheckpoint(
                        origin: origin,
                        count: sequence,
                        head: hash,
                        signingKey: keys.signingKey
                    )
                    try AuditStore.insert(checkpoint, createdAt: time, db)
                }
            } catch {
                throw AuditLog.appendFailed(error)
            }
            return entry
        }
    }

    static func head(_ db: Database) throws -> (Int64, String) {
        if let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1"))
        {
            return (row[0], row[1])
        }
        return (0, AuditChain.genesis)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return error.message ?? "\(error.resultCode)"
        }
        return "\(error)"
    }

    /// RFC 3339 UTC with milliseconds.
    public static func timestamp(_ date: Date) -> String {
        UTCTimestamp.format(secondsSince1970: date.timeIntervalSince1970)
    }
}

/// The SQL of the audit tables, in one place.
enum AuditStore {
    static func insert(_ entry: AuditEntry, _ db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO audit_entries
                  (seq, time, actor, action, target, source_ip, user_agent, outcome, metadata, prev_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                entry.sequence, entry.time, entry.actor, entry.action, entry.target, entry.sourceIP,
                entry.userAgent, entry.outcome, entry.metadata, entry.previousHash, entry.hash,
            ]
        )
    }

    /// Inserts `entry` and reads it back in the same transaction: a trigger or any other schema change
    /// that drops, rewrites or moves the row (`RAISE(IGNORE)`, an `AFTER INSERT` update) fails the append
    /// instead of letting the caller go ahead unrecorded.
    static func insertConfirmed(_ entry: AuditEntry, _ db: Database) throws {
        try insert(entry, db)
        let inserted = db.changesCount
        let stored = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT \(columns) FROM audit_entries WHERE seq >= ? ORDER BY seq"),
            arguments: [entry.sequence]
        ).map(Self.entry(_:))
        guard inserted == 1, stored == [entry] else {
            throw AuditError(
                .appendFailed,
                "entry \(entry.sequence) was not stored as written (moat.db holds something Moat did not create, "
                    + "such as a trigger that drops or rewrites entries); run moat doctor"
            )
        }
    }

    static func insert(_ checkpoint: AuditCheckpoint, createdAt: String, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO audit_checkpoints (count, head, origin, signature, created_at)
                VALUES (?, ?, ?, ?, ?)
                """,
            arguments: [checkpoint.count, checkpoint.head, checkpoint.origin, Data(checkpoint.signature), createdAt]
        )
    }

    static func checkpoint(_ db: Database, count: Int64, origin: String) throws -> AuditCheckpoint? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: "SELECT count, head, origin, signature FROM audit_checkpoints WHERE count = ?",
                arguments: [count]
            )
        else { return nil }
        let signature: Data = row[3]
        return AuditCheckpoint(origin: row[2], count: row[0], head: row[1], signature: Array(signature))
    }

    static func checkpoints(_ db: Database) throws -> [AuditCheckpoint] {
        try Row.fetchAll(db, sql: "SELECT count, head, origin, signature FROM audit_checkpoints ORDER BY count").map {
            let signature: Data = $0[3]
            return AuditCheckpoint(origin: $0[2], count: $0[0], head: $0[1], signature: Array(signature))
        }
    }

    static func entry(_ row: Row) -> AuditEntry {
        AuditEntry(
            sequence: row[0],
            time: row[1],
            actor: row[2],
            action: row[3],
            target: row[4],
            sourceIP: row[5],
            userAgent: row[6],
            outcome: row[7],
            metadata: row[8],
            previousHash: row[9],
            hash: row[10]
        )
    }

    static let columns = "seq, time, actor, action, target, source_ip, user_agent, outcome, metadata, prev_hash, hash"
}
