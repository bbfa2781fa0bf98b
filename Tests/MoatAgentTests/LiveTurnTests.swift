import Foundation
import Synchronization
import Testing

@testable import MoatAgent

/// `LiveTurn.relay`'s keep-alive: a silent turn still shows the watcher it is alive, in order with its
/// events, and a watcher that went away never stops the turn.
@Suite struct LiveTurnTests {
    /// Collects what the watcher was sent, in order.
    final class Log: Sendable {
        let items = Mutex<[String]>([])
        func add(_ item: String) { items.withLock { $0.append(item) } }
        var all: [String] { items.withLock { $0 } }
    }

    @Test("a turn that stays silent gets keep-alives before its first event, and none after it ends")
    func keepAliveWhileSilent() async throws {
        let log = Log()
        let (kept, signal) = AsyncStream.makeStream(of: Void.self)
        let outcome = await LiveTurn.relay(
            { events -> String in
                // The turn says nothing until the watcher was kept alive once (no timing assumption).
                for await _ in kept { break }
                await events(.text("hello", round: 1))
                return "done"
            },
            to: { event in
                if case .text(let piece, _) = event { log.add("text:\(piece)") }
            },
            idle: .milliseconds(20),
            keepAlive: {
                log.add("keep-alive")
                signal.yield()
            })
        #expect(outcome == "done")
        let items = log.all
        #expect(items.first == "keep-alive")
        #expect(items.contains("text:hello"))
        let settled = log.all.count
        try await Task.sleep(for: .milliseconds(100))
        // The relay returned: its ticker is gone, nothing more is sent.
        #expect(log.all.count == settled)
    }

    @Test("a keep-alive that fails (the watcher left) ends delivery, never the turn")
    func failingKeepAlive() async throws {
        struct Gone: Error {}
        let log = Log()
        let (kept, signal) = AsyncStream.makeStream(of: Void.self)
        let outcome = await LiveTurn.relay(
            { events -> String in
                for await _ in kept { break }
                await events(.text("after the watcher left", round: 1))
                return "stored"
            },
            to: { _ in log.add("event") },
            idle: .milliseconds(20),
            keepAlive: {
                signal.yield()
                throw Gone()
            })
        #expect(outcome == "stored")
        #expect(log.all.isEmpty)
    }
}
