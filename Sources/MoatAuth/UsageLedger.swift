/// When API tokens and sessions were last used, kept in memory so that a request which only reads
/// never waits for a durable write (one fsync per request capped an authenticated read route at a
/// twentieth of what `/healthz` serves).
///
/// A use is written at once when the time its row holds is at least ``interval`` old — so each row is
/// written at most once per interval, and the stored time is never more than one interval behind the
/// real last use, even after a crash. Later uses wait here for the next use that is due, or for
/// ``OwnerAuthority/flushUsage()`` at shutdown. Only bookkeeping lives here: whether a credential is
/// valid (revoked, expired, deleted) is checked on every request against the rows as of the latest
/// commit (``AuthSnapshot``).
struct UsageLedger: Sendable {
    /// Milliseconds between two writes of one row.
    let interval: Int64
    /// The newest use of each key not written yet.
    private var pending: [String: Int64] = [:]
    /// The newest time this process wrote, or is writing, for each key: uses racing a write in flight
    /// see it and do not write again.
    private var written: [String: Int64] = [:]

    init(interval: Int64) { self.interval = interval }

    /// Notes a use of `key` at `now`, where `stored` is the time its row holds. True when the caller
    /// must write `now` (it then counts as written; ``failed(_:at:)`` takes that back).
    mutating func use(_ key: String, at now: Int64, stored: Int64?) -> Bool {
        let last = [stored, written[key]].compactMap { $0 }.max()
        guard let last, now - last < interval else {
            if written.count >= Self.keyLimit { written.removeAll() }
            written[key] = now
            if let waiting = pending[key], waiting <= now { pending[key] = nil }
            return true
        }
        pending[key] = max(pending[key] ?? now, now)
        return false
    }

    /// A write of `time` for `key` failed: the use waits for the next write, and the next use is due.
    mutating func failed(_ key: String, at time: Int64) {
        written[key] = nil
        pending[key] = max(pending[key] ?? time, time)
    }

    /// The newest use of `key` this process knows of beyond `stored` (what its row holds).
    func latest(_ key: String, stored: Int64?) -> Int64? {
        [stored, pending[key], written[key]].compactMap { $0 }.max()
    }

    /// Every use not written yet, now counted as written (``failed(_:at:)`` for each takes it back).
    mutating func takePending() -> [String: Int64] {
        let taken = pending
        pending.removeAll()
        for (key, time) in taken { written[key] = max(written[key] ?? time, time) }
        return taken
    }

    /// `written` only saves a duplicate write when uses race one in flight; it is emptied rather than
    /// grown past this many keys (sessions come and go).
    static let keyLimit = 10_000
}
