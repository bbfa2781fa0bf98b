import GRDB

/// Writes of concurrent turns committed together: the first caller to find the writer idle commits
/// everything queued behind it in one transaction (one fsync for the batch), each write in its own
/// savepoint so one that fails rolls back alone and only its caller sees the error. The audit log
/// batches its appends the same way; without this, every turn would wait for two fsyncs of its own.
actor GroupWriter {
    typealias Job = @Sendable (Database) throws -> any Sendable

    let pool: DatabasePool
    private var flushing = false
    private var waiting: [(Job, CheckedContinuation<any Sendable, any Error>)] = []

    init(pool: DatabasePool) {
        self.pool = pool
    }

    /// Runs `body` in a write transaction shared with other callers, once it has committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let job: Job = { db in try body(db) }
        if flushing {
            return try await withCheckedThrowingContinuation { waiting.append((job, $0)) } as! T
        }
        flushing = true
        defer { flushing = false }
        var mine: Result<any Sendable, any Error>?
        var batch: [(Job, CheckedContinuation<any Sendable, any Error>?)] = [(job, nil)]
        while !batch.isEmpty {
            let jobs = batch.map(\.0)
            let results: [Result<any Sendable, any Error>]
            do {
                results = try await pool.write { db in
                    jobs.map { job in
                        Result {
                            var value: (any Sendable)?
                            try db.inSavepoint {
                                value = try job(db)
                                return .commit
                            }
                            return value!
                        }
                    }
                }
            } catch {
                results = Array(repeating: .failure(error), count: jobs.count)
            }
            for (index, item) in batch.enumerated() {
                if let continuation = item.1 {
                    continuation.resume(with: results[index])
                } else {
                    mine = results[index]
                }
            }
            batch = waiting.map { ($0.0, Optional($0.1)) }
            waiting.removeAll()
        }
        return try mine!.get() as! T
    }
}
