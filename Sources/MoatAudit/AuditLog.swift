import Crypto
public import Foundation
import GRDB
import MoatCore
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
    private let keys: AuditKeys
    private let redactor: AuditRedactor
    /// The checkpoint origin line: an id of this installation.
    public nonisolated let origin: String
    private let checkpointInterval: Int64
    private let now: @Sendable () -> Date

    private var flushing = false
    private var waiting: [(PreparedEvent, CheckedContinuation<AuditEntry, any Error>)] = []

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
        if flushing {
            return try await withCheckedThrowingContinuation { continuation in
                waiting.append((prepared, continuation))
            }
        }
        flushing = true
        defer { flushing = false }
        var mine: Result<AuditEntry, any Error>?
        var batch: [(PreparedEvent, CheckedContinuation<AuditEntry, any Error>?)] = [(prepared, nil)]
        while !batch.isEmpty {
            let result = await commit(batch.map(\.0))
            for (index, item) in batch.enumerated() {
                let outcome = result.map { $0[index] }
                if let continuation = item.1 {
                    continuation.resume(with: outcome)
                } else {
                    mine = outcome
                }
            }
            batch = waiting.map { ($0.0, Optional($0.1)) }
            waiting.removeAll()
        }
        return try mine!.get()
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
    /// cooperative pool.
    private func commit(_ events: [PreparedEvent]) async -> Result<[AuditEntry], any Error> {
        let batch = Batch(log: self, events: events)
        do {
            return .success(try await database.pool.write { db in try batch.write(db) })
        } catch {
            return .failure(Self.appendFailed(error))
        }
    }

    private nonisolated func commitNow(_ events: [PreparedEvent]) throws -> [AuditEntry] {
        let batch = Batch(log: self, events: events)
        do {
            return try database.pool.write { db in try batch.write(db) }
        } catch {
            throw Self.appendFailed(error)
        }
    }

    private static func appendFailed(_ error: any Error) -> AuditError {
        AuditError(
            .appendFailed,
            "the audit log could not record the event, so it was not carried out: \(describe(error))"
        )
    }

    /// One write transaction's worth of entries: chained onto the head read inside the transaction, each
    /// row confirmed as stored, a signed checkpoint every `interval` entries.
    private struct Batch: Sendable {
        let events: [PreparedEvent]
        let time: String
        let interval: Int64
        let signingKey: Curve25519.Signing.PrivateKey
        let origin: String

        init(log: AuditLog, events: [PreparedEvent]) {
            self.events = events
            self.time = AuditLog.timestamp(log.now())
            self.interval = log.checkpointInterval
            self.signingKey = log.keys.signingKey
            self.origin = log.origin
        }

        func write(_ db: Database) throws -> [AuditEntry] {
            var (sequence, previous) = try AuditLog.head(db)
            var entries: [AuditEntry] = []
            entries.reserveCapacity(events.count)
            for event in events {
                sequence += 1
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
                try AuditStore.insertConfirmed(entry, db)
                if sequence % interval == 0 {
                    let checkpoint = try AuditCheckpoint(
                        origin: origin,
                        count: sequence,
                        head: hash,
                        signingKey: signingKey
                    )
                    try AuditStore.insert(checkpoint, createdAt: time, db)
                }
                entries.append(entry)
                previous = hash
            }
            return entries
        }
    }

    static func head(_ db: Database) throws -> (Int64, String) {
        if let row = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1") {
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
        try db.execute(
            sql: """
                INSERT INTO audit_entries
                  (seq, time, actor, action, target, source_ip, user_agent, outcome, metadata, prev_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
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
            db, sql: "SELECT \(columns) FROM audit_entries WHERE seq >= ? ORDER BY seq", arguments: [entry.sequence]
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
