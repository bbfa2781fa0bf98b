import Foundation
import MoatTestSupport
import Synchronization
import Testing

@Suite struct StartGateTests {
    final class Running: Sendable {
        let counts = Mutex((now: 0, most: 0))
    }

    @Test(
        "at most `limit` bodies run at once; a place is given back after `holdingAtMost`; a wait past patience goes ahead"
    )
    func limits() async {
        let gate = StartGate(limit: 2, patience: 60)
        let running = Running()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    await gate.run {
                        running.counts.withLock {
                            $0.now += 1
                            $0.most = max($0.most, $0.now)
                        }
                        try? await Task.sleep(for: .milliseconds(100))
                        running.counts.withLock { $0.now -= 1 }
                    }
                }
            }
        }
        #expect(running.counts.withLock { $0.most } == 2)
        #expect(gate.taken == 0)

        // A long body gives its place back after 0.2 s, so the next one does not wait for it to end.
        let long = Task { await gate.run(holdingAtMost: 0.2) { try? await Task.sleep(for: .seconds(30)) } }
        let other = Task { await gate.run(holdingAtMost: 0.2) { try? await Task.sleep(for: .seconds(30)) } }
        let started = Date()
        await gate.run { #expect(gate.taken <= 2) }
        #expect(Date().timeIntervalSince(started) < 25, "the third run waited for a long body to end")
        long.cancel()
        other.cancel()
        _ = await (long.value, other.value)
        #expect(gate.taken == 0)

        // Every place held for good: a run still goes ahead once its patience is over.
        let tight = StartGate(limit: 1, patience: 0.2)
        let holder = Task { await tight.run { try? await Task.sleep(for: .seconds(30)) } }
        while tight.taken == 0 { await Task.yield() }
        let ran = await tight.run { true }
        #expect(ran && tight.taken == 1)
        holder.cancel()
        await holder.value
        #expect(tight.taken == 0)
    }
}
