public import Foundation
import Synchronization

/// A soft limit on the `moat` processes this test process starts at once.
///
/// A full run starts dozens of `moat` processes within seconds, each busy for a second or more (a debug
/// build's start-up, the vault, migrations); on a 2-core machine the run queue then grows so long that the
/// test process's own event loops miss the five-second connect limits of in-process clients. Starts wait
/// here (polling, holding no thread) for one of ``limit`` places, at most ``patience``: then they go ahead
/// anyway. A place is held for the start-up only (``run(holdingAtMost:_:)``), so a long `moat chat` does not
/// keep the `moat approvals approve` that ends it waiting.
public final class StartGate: Sendable {
    public static let shared = StartGate(limit: 4, patience: 20)

    public let limit: Int
    public let patience: TimeInterval
    private let inUse = Mutex(0)

    public init(limit: Int, patience: TimeInterval) {
        self.limit = max(1, limit)
        self.patience = patience
    }

    /// `body`, run once a place is free or ``patience`` seconds have passed; the place is given back when
    /// `body` ends or after `seconds` (nil: when it ends), whichever is first.
    public func run<T: Sendable>(holdingAtMost seconds: Double? = nil, _ body: () async throws -> T) async rethrows
        -> T
    {
        guard await enter() else { return try await body() }
        let place = Place(gate: self)
        let timer = seconds.map { seconds in
            Task {
                try? await Task.sleep(for: .seconds(seconds))
                place.giveBack()
            }
        }
        defer {
            timer?.cancel()
            place.giveBack()
        }
        return try await body()
    }

    /// One place taken, given back once.
    private final class Place: Sendable {
        let gate: StartGate
        let given = Mutex(false)

        init(gate: StartGate) { self.gate = gate }

        func giveBack() {
            let first = given.withLock { given in
                defer { given = true }
                return !given
            }
            if first { gate.inUse.withLock { $0 -= 1 } }
        }
    }

    /// The places taken now.
    public var taken: Int { inUse.withLock { $0 } }

    /// Whether a place was taken (false: the wait ran out and the start goes ahead without one).
    private func enter() async -> Bool {
        let deadline = Date().addingTimeInterval(patience)
        while true {
            let took = inUse.withLock { count in
                guard count < limit else { return false }
                count += 1
                return true
            }
            if took { return true }
            if Date() >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
