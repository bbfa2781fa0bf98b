import Foundation
import GRDB
public import MoatStore

/// Reading the log: the latest entries, filtered exports, the latest checkpoint.
public enum AuditReader {
    /// Which entries an export includes. Times are RFC 3339 strings compared as text (all stored times
    /// are UTC with the same layout, so text order is time order); a bare date `YYYY-MM-DD` works too.
    public struct Filter: Sendable {
        public var since: String?
        public var until: String?
        /// An exact action, or a prefix ending in `*` (`vault.*`).
        public var action: String?
        public var actor: String?
        public var outcome: String?
        public var afterSequence: Int64?
        public var beforeSequence: Int64?

        public init(
            since: String? = nil,
            until: String? = nil,
            action: String? = nil,
            actor: String? = nil,
            outcome: String? = nil,
            afterSequence: Int64? = nil,
            beforeSequence: Int64? = nil
        ) {
            self.since = since
            self.until = until
            self.action = action
            self.actor = actor
            self.outcome = outcome
            self.afterSequence = afterSequence
            self.beforeSequence = beforeSequence
        }

        /// `text` as a bound the filter compares with, when it is a date (2026-11-23) or an RFC 3339 UTC
        /// time (2026-11-23T20:00:00Z, seconds and milliseconds optional); nil for anything else. Stored
        /// times are `YYYY-MM-DDTHH:MM:SS.mmmZ`; dropping a trailing `Z` keeps text order equal to time
        /// order for shorter forms (a bare date sorts before every time on that day).
        public static func time(_ text: String) -> String? {
            guard
                text.wholeMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,3})?)?Z)?/)
                    != nil
            else { return nil }
            return text.hasSuffix("Z") ? String(text.dropLast()) : text
        }

        /// What a bad time bound says.
        public static let timeAdvice = "a date (2026-11-23) or an RFC 3339 UTC time (2026-11-23T20:00:00Z)"
    }

    /// The last `count` entries, oldest first.
    public static func tail(_ database: MoatDatabase, count: Int) throws -> [AuditEntry] {
        try database.pool.read { db in try tail(db, count: count) }
    }

    /// ``tail(_:count:)`` for async code (a route, an actor): read on the database's own queue, so no
    /// thread of the cooperative pool waits for SQLite.
    public static func tail(of database: MoatDatabase, count: Int) async throws -> [AuditEntry] {
        try await database.pool.read { db in try tail(db, count: count) }
    }

    /// Every entry after `sequence`, oldest first, for async code (see ``tail(of:count:)``); a live view
    /// polls with the last sequence it has shown.
    public static func entries(of database: MoatDatabase, after sequence: Int64) async throws -> [AuditEntry] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(AuditStore.columns) FROM audit_entries WHERE seq > ? ORDER BY seq",
                arguments: [sequence]
            ).map(AuditStore.entry)
        }
    }

    /// The newest entry of `action` for each target (a secret's last `vault.use`), for async code (see
    /// ``tail(of:count:)``): one indexed query however long the log is.
    public static func newestPerTarget(of database: MoatDatabase, action: String) async throws -> [String: AuditEntry] {
        try await database.pool.read { db in
            let entries = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(AuditStore.columns) FROM audit_entries WHERE seq IN
                      (SELECT MAX(seq) FROM audit_entries WHERE action = ? GROUP BY target)
                    """,
                arguments: [action]
            ).map(AuditStore.entry)
            return Dictionary(
                entries.map { ($0.target, $0) }, uniquingKeysWith: { $0.sequence > $1.sequence ? $0 : $1 })
        }
    }

    private static func tail(_ db: Database, count: Int) throws -> [AuditEntry] {
        try Row.fetchAll(
            db,
            sql: "SELECT \(AuditStore.columns) FROM audit_entries ORDER BY seq DESC LIMIT ?",
            arguments: [max(0, count)]
        ).map(AuditStore.entry).reversed()
    }

    /// Up to `limit` entries matching `filter`, oldest first (a page of an export: the next one passes
    /// the last one's sequence as `filter.afterSequence`).
    public static func page(of database: MoatDatabase, filter: Filter, limit: Int) async throws -> [AuditEntry] {
        try await limited(database, filter: filter, order: "seq", limit: limit)
    }

    /// Up to `limit` entries matching `filter`, in `order` (an `ORDER BY` of the code's, never input).
    private static func limited(_ database: MoatDatabase, filter: Filter, order: StaticString, limit: Int)
        async throws -> [AuditEntry]
    {
        let (condition, arguments) = condition(filter)
        return try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(AuditStore.columns) FROM audit_entries\(condition) ORDER BY \(order) LIMIT ?",
                arguments: arguments + [max(0, limit)]
            ).map(AuditStore.entry)
        }
    }

    /// The newest entry's sequence (0 for an empty log).
    public static func lastSequence(of database: MoatDatabase) async throws -> Int64 {
        try await database.pool.read { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM audit_entries") ?? 0 }
    }

    /// Entries matching `filter`, oldest first, handed to `body` one at a time (exports stream).
    public static func forEach(
        _ database: MoatDatabase,
        filter: Filter,
        _ body: (AuditEntry) throws -> Void
    ) throws {
        let (condition, arguments) = condition(filter)
        try database.pool.read { db in
            let cursor = try Row.fetchCursor(
                db,
                sql: "SELECT \(AuditStore.columns) FROM audit_entries\(condition) ORDER BY seq",
                arguments: arguments
            )
            while let row = try cursor.next() {
                try body(AuditStore.entry(row))
            }
        }
    }

    /// Up to `limit` entries matching `filter`, newest first (a page of the console's audit view: the
    /// next page passes the last one's sequence as `filter.beforeSequence`).
    public static func newest(of database: MoatDatabase, filter: Filter, limit: Int) async throws -> [AuditEntry] {
        try await limited(database, filter: filter, order: "seq DESC", limit: limit)
    }

    /// The `WHERE` clause (empty, or starting with a space) and its arguments for `filter`.
    private static func condition(_ filter: Filter) -> (String, StatementArguments) {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let since = filter.since {
            clauses.append("time >= ?")
            _ = arguments.append(contentsOf: [since])
        }
        if let until = filter.until {
            clauses.append("time < ?")
            _ = arguments.append(contentsOf: [until])
        }
        if let action = filter.action {
            if action.hasSuffix("*") {
                clauses.append("substr(action, 1, ?) = ?")
                let prefix = String(action.dropLast())
                _ = arguments.append(contentsOf: [prefix.count, prefix])
            } else {
                clauses.append("action = ?")
                _ = arguments.append(contentsOf: [action])
            }
        }
        if let actor = filter.actor {
            clauses.append("actor = ?")
            _ = arguments.append(contentsOf: [actor])
        }
        if let outcome = filter.outcome {
            clauses.append("outcome = ?")
            _ = arguments.append(contentsOf: [outcome])
        }
        if let after = filter.afterSequence {
            clauses.append("seq > ?")
            _ = arguments.append(contentsOf: [after])
        }
        if let before = filter.beforeSequence {
            clauses.append("seq < ?")
            _ = arguments.append(contentsOf: [before])
        }
        return (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "), arguments)
    }

    /// The newest stored checkpoint, if any.
    public static func latestCheckpoint(_ database: MoatDatabase) throws -> AuditCheckpoint? {
        try database.pool.read { db in try AuditStore.checkpoints(db).last }
    }

    /// What a signed checkpoint covers, read from the file read-only (for `moat doctor`): how many entries
    /// the log holds, how many the newest checkpoint covers, and how many servers started after it (a
    /// clean shutdown ends with a checkpoint, so each one is a server that stopped without one, or the
    /// one running). Nil when the file or its audit tables cannot be read.
    public static func checkpointCoverage(
        databasePath: String
    ) -> (entries: Int64, checkpointed: Int64, startsAfter: Int64)? {
        let answer = MoatDatabase.readExisting(path: databasePath) { db -> (Int64, Int64, Int64)? in
            guard try db.tableExists("audit_entries"), try db.tableExists("audit_checkpoints") else { return nil }
            let entries = try Int64.fetchOne(db, sql: "SELECT count(*) FROM audit_entries") ?? 0
            let covered = try Int64.fetchOne(db, sql: "SELECT max(count) FROM audit_checkpoints") ?? 0
            let starts =
                try Int64.fetchOne(
                    db, sql: "SELECT count(*) FROM audit_entries WHERE action = 'gateway.start' AND seq > ?",
                    arguments: [covered]) ?? 0
            return (entries, covered, starts)
        }
        return (answer ?? nil).map { (entries: $0.0, checkpointed: $0.1, startsAfter: $0.2) }
    }

    /// The number of entries.
    public static func count(_ database: MoatDatabase) throws -> Int64 {
        try database.pool.read { db in try Int64.fetchOne(db, sql: "SELECT count(*) FROM audit_entries") ?? 0 }
    }
}

/// Export formats for `moat audit export`.
public enum AuditExportFormat: String, Sendable, CaseIterable {
    case csv, jsonl

    public static let csvHeader = "seq,time,actor,action,target,source_ip,user_agent,outcome,metadata,prev_hash,hash"

    /// The entries matching `filter`, oldest first, as `moat audit export` writes them: the CSV header
    /// first (for CSV), then one line per entry, each handed to `emit` without its newline.
    public func export(_ database: MoatDatabase, filter: AuditReader.Filter, _ emit: (String) throws -> Void) throws {
        if self == .csv { try emit(Self.csvHeader) }
        try AuditReader.forEach(database, filter: filter) { entry in try emit(line(entry)) }
    }

    /// One entry as a line (without the newline).
    public func line(_ entry: AuditEntry) -> String {
        switch self {
        case .csv:
            return [
                String(entry.sequence), entry.time, entry.actor, entry.action, entry.target, entry.sourceIP,
                entry.userAgent, entry.outcome, entry.metadata, entry.previousHash, entry.hash,
            ].map(Self.csvCell).joined(separator: ",")
        case .jsonl:
            var out = "{\"seq\":\(entry.sequence)"
            for (key, value) in [
                ("time", entry.time), ("actor", entry.actor), ("action", entry.action), ("target", entry.target),
                ("source_ip", entry.sourceIP), ("user_agent", entry.userAgent), ("outcome", entry.outcome),
            ] {
                out += ",\"\(key)\":" + AuditValue.string(value).canonicalJSON
            }
            // Stored metadata is already canonical JSON: embedded as an object, not a string.
            out += ",\"metadata\":\(entry.metadata)"
            out += ",\"prev_hash\":\"\(entry.previousHash)\",\"hash\":\"\(entry.hash)\"}"
            return out
        }
    }

    /// RFC 4180 quoting, plus a leading `'` for cells a spreadsheet would run as a formula
    /// (starting with `=`, `+`, `-`, `@`, tab or carriage return — OWASP's CSV-injection list).
    static func csvCell(_ text: String) -> String {
        var cell = text
        if let first = cell.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) {
            cell = "'" + cell
        }
        if cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            cell = "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return cell
    }
}
