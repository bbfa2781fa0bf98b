import Foundation
import MoatPolicy
import MoatTestSupport
import Testing

@Suite struct RateLimiterTests {
    /// A small deterministic generator (SplitMix64), so a failing schedule can be replayed from its seed.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("over 10,000 random schedules no window admits more than its limit, and a client that waits gets in")
    func property() async {
        // Seconds of work in a debug build: at the lowest priority, off the threads other tests share.
        let failures = await atLowestPriority { Self.scheduleFailures() }
        #expect(failures.isEmpty, "\(failures.prefix(20))")
    }

    /// Runs the 10,000 seeded schedules; what broke, per schedule (nothing when the limiter holds).
    static func scheduleFailures() -> [String] {
        var failures: [String] = []
        var generator = SeededGenerator(state: 0x6D6F_6174)
        for schedule in 0..<10_000 {
            let limit = Int.random(in: 1...8, using: &generator)
            let window = Double(Int.random(in: 1...20, using: &generator))
            let limiter = RateLimiter(RateLimit(limit: limit, window: window), maximumKeys: 4)
            let keys = ["a", "b", "c"]
            var admitted: [String: [(Double, Int)]] = [:]
            var now = 0.0
            for _ in 0..<Int.random(in: 1...60, using: &generator) {
                now += Double(Int.random(in: 0...(Int(window) * 4), using: &generator)) / 4
                let key = keys.randomElement(using: &generator)!
                let cost = Int.random(in: 1...max(1, limit / 2 + 1), using: &generator)
                switch limiter.admit(key, cost: cost, now: now) {
                case .admitted:
                    admitted[key, default: []].append((now, cost))
                case .refused(let retry):
                    // Waiting the advertised time gets the same request in.
                    guard let retry else {
                        failures.append("schedule \(schedule): a fitting cost was refused forever")
                        continue
                    }
                    if !(retry > 0 && retry <= window + 0.001) {
                        failures.append("schedule \(schedule): retry after \(retry) s, window \(window) s")
                    }
                }
            }
            // Every window (t - window, t] ending at an admission holds at most `limit` units.
            for (_, times) in admitted {
                for (end, _) in times {
                    let inWindow = times.filter { $0.0 > end - window && $0.0 <= end }.reduce(0) { $0 + $1.1 }
                    if inWindow > limit { failures.append("schedule \(schedule): \(inWindow) > \(limit)") }
                }
            }
            // A client that waits a full window after its last request is admitted again.
            for key in keys where limiter.admit(key, cost: 1, now: now + window + 0.001) != .admitted {
                failures.append("schedule \(schedule): \(key) refused after waiting a full window")
            }
        }
        return failures
    }

    @Test("retryAfter is exact: refused just before it, admitted at it")
    func retryAfter() {
        let limiter = RateLimiter(RateLimit(limit: 2, window: 10))
        #expect(limiter.admit("k", now: 0) == .admitted)
        #expect(limiter.admit("k", now: 3) == .admitted)
        guard case .refused(let retry?) = limiter.admit("k", now: 4) else {
            Issue.record("third request in the window admitted")
            return
        }
        #expect(abs(retry - 6) < 0.0001)
        #expect(limiter.admit("k", now: 9.99) != .admitted)
        #expect(limiter.admit("k", now: 4 + retry) == .admitted)
    }

    @Test("keys are independent, a cost above the limit is refused for ever, a clock stepping back cannot reopen")
    func guards() {
        let limiter = RateLimiter(RateLimit(limit: 100, window: 60))
        #expect(limiter.admit("conversation-1", cost: 100, now: 0) == .admitted)
        #expect(limiter.admit("conversation-1", cost: 1, now: 1) != .admitted)
        #expect(limiter.admit("conversation-2", cost: 100, now: 1) == .admitted)
        #expect(limiter.admit("conversation-3", cost: 101, now: 1) == .refused(retryAfter: nil))
        #expect(limiter.admit("conversation-1", cost: 1, now: -1000) != .admitted)
    }

    @Test("idle keys are forgotten and the key count stays bounded")
    func bounded() async {
        let tracked = await atLowestPriority {
            let limiter = RateLimiter(RateLimit(limit: 1, window: 1), maximumKeys: 100)
            for index in 0..<10_000 {
                _ = limiter.admit("sender-\(index)", now: Double(index) / 1000)
            }
            return limiter.trackedKeys
        }
        #expect(tracked <= 100)
    }

    @Test("past the key cap the oldest-touched keys go in one batch, down to seven eighths; the newest stay limited")
    func evictsInBatches() {
        let limiter = RateLimiter(RateLimit(limit: 1, window: 1000), maximumKeys: 16)
        for index in 0..<16 { #expect(limiter.admit("sender-\(index)", now: Double(index)) == .admitted) }
        #expect(limiter.trackedKeys == 16)
        // The 17th active key: 16 - 16 / 8 = 14 are kept, the newest; the 3 oldest are forgotten at once.
        #expect(limiter.admit("sender-16", now: 16) == .admitted)
        #expect(limiter.trackedKeys == 14)
        #expect(limiter.admit("sender-16", now: 17) != .admitted)
        #expect(limiter.admit("sender-3", now: 17) != .admitted)
        // Forgotten: more lenient, never stricter (and admitting it again counts as a new key).
        #expect(limiter.admit("sender-0", now: 17) == .admitted)
        #expect(limiter.trackedKeys == 15)
        // Below the cap again, nothing more is evicted until it is crossed.
        #expect(limiter.admit("sender-17", now: 18) == .admitted)
        #expect(limiter.trackedKeys == 16)
    }
}
