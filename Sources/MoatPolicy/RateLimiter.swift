public import Foundation
import Synchronization

/// A limit: at most `limit` units (requests, or tokens for a budget) in any window of `window` seconds.
public struct RateLimit: Sendable, Hashable {
    public let limit: Int
    public let window: TimeInterval

    /// - Precondition: `limit` ≥ 1 and `window` > 0 (configuration is validated before it gets here).
    public init(limit: Int, window: TimeInterval) {
        precondition(limit >= 1 && window > 0, "RateLimit: limit must be ≥ 1 and window > 0")
        self.limit = limit
        self.window = window
    }
}

/// The answer of a rate limiter.
public enum RateDecision: Sendable, Hashable {
    case admitted
    /// Refused; a request of the same cost is admitted after this many seconds (nil: never, the cost
    /// is larger than the limit itself).
    case refused(retryAfter: TimeInterval?)
}

/// One keyed sliding-window limiter, used for every limit in Moat: per source address, per sender, and
/// per conversation token budget (a request's `cost` is its token count).
///
/// Exact sliding window: the limiter remembers when each admitted unit was admitted, so no window of
/// `window` seconds — anywhere on the time line, not just aligned ones — ever holds more than `limit`
/// units. Memory is bounded by `limit` entries per active key; keys whose entries have all expired are
/// dropped, and when more than `maximumKeys` keys are active the oldest-touched are forgotten, down to
/// seven eighths of `maximumKeys` at once so a flood of new keys costs one sort per many requests (which
/// can only make a limiter more lenient for a key, never stall one).
public final class RateLimiter: Sendable {
    private struct Entry {
        var admitted: [(time: TimeInterval, cost: Int)] = []
        var head = 0
        var total = 0
        var touched: TimeInterval = 0

        mutating func expire(before cutoff: TimeInterval) {
            while head < admitted.count && admitted[head].time <= cutoff {
                total -= admitted[head].cost
                head += 1
            }
            if head > 64 && head * 2 > admitted.count {
                admitted.removeFirst(head)
                head = 0
            }
        }
    }

    public let rate: RateLimit
    public let maximumKeys: Int
    private let state = Mutex<[String: Entry]>([:])

    public init(_ rate: RateLimit, maximumKeys: Int = 100_000) {
        self.rate = rate
        self.maximumKeys = max(1, maximumKeys)
    }

    /// Admits `cost` units for `key` at time `now` (seconds on any monotonic clock), or says when to retry.
    ///
    /// Times must not go backwards for a key; a time earlier than one already seen is treated as that
    /// time (so a clock step cannot reopen a window).
    public func admit(_ key: String, cost: Int = 1, now: TimeInterval) -> RateDecision {
        precondition(cost >= 1, "RateLimiter: cost must be ≥ 1")
        guard cost <= rate.limit else { return .refused(retryAfter: nil) }
        return state.withLock { entries in
            var entry = entries.removeValue(forKey: key) ?? Entry()
            let now = max(now, entry.touched)
            entry.touched = now
            entry.expire(before: now - rate.window)
            defer {
                if entry.total > 0 { entries[key] = entry }
                if entries.count > maximumKeys {
                    Self.evict(&entries, keep: maximumKeys, now: now, window: rate.window)
                }
            }
            if entry.total + cost <= rate.limit {
                entry.admitted.append((now, cost))
                entry.total += cost
                return .admitted
            }
            // The earliest time enough old units have left the window for this cost to fit.
            var freed = 0
            var index = entry.head
            while index < entry.admitted.count {
                freed += entry.admitted[index].cost
                if entry.total - freed + cost <= rate.limit { break }
                index += 1
            }
            let retry = entry.admitted[index].time + rate.window - now
            return .refused(retryAfter: max(retry, 0).nextUp)
        }
    }

    /// The number of keys currently tracked.
    public var trackedKeys: Int { state.withLock { $0.count } }

    /// Drops the keys whose units have all left the window and, when more than `keep` remain, the
    /// oldest-touched down to ``evictionTarget(keep:)``: a flood of new keys pays for one scan and sort per
    /// `keep / 8` keys, not one per request.
    private static func evict(_ entries: inout [String: Entry], keep: Int, now: TimeInterval, window: TimeInterval) {
        for (key, var entry) in entries {
            entry.expire(before: now - window)
            if entry.total == 0 { entries[key] = nil }
        }
        let target = evictionTarget(keep: keep)
        if entries.count > target {
            let oldest = entries.sorted { $0.value.touched < $1.value.touched }.prefix(entries.count - target)
            for (key, _) in oldest { entries[key] = nil }
        }
    }

    /// How many keys an eviction leaves: seven eighths of the maximum (all of it below 8).
    static func evictionTarget(keep: Int) -> Int { keep - keep / 8 }
}
