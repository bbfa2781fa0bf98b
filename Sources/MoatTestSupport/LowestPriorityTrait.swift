import Foundation
public import Testing

/// Runs each test of a suite on the tests' low-priority threads: two threads of their own at the lowest CPU
/// priority (nice 19), for suites whose tests are CPU-bound from start to end (Argon2 derivations with
/// the real parameters, sealing, re-keying).
///
/// On 2 cores the concurrency runtime has two default threads. Such tests hold them for a second or more
/// each (tens of seconds on a loaded machine), and every other test's continuations — the in-process
/// servers and clients that work to time limits — wait behind them; a full run showed no test finishing
/// in its first 36 s. On these threads they take only the CPU time the rest leaves. The test stays in its
/// task (task-local values, so its issues, stay with it), with these threads as its preferred executor:
/// what it awaits elsewhere comes back to them.
public struct LowestPriorityScheduling: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        try await withTaskExecutorPreference(LowestPriorityExecutor.shared) { try await function() }
    }
}

extension Trait where Self == LowestPriorityScheduling {
    /// ``LowestPriorityScheduling``: the suite's tests run on two threads at nice 19.
    public static var lowestPriority: Self { LowestPriorityScheduling() }
}

/// Two threads at nice 19 that run the jobs given to them in order of arrival, for the life of the process.
final class LowestPriorityExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = LowestPriorityExecutor(threads: 2)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init(threads: Int) {
        for index in 0..<threads {
            let thread = Thread { [self] in
                lowerThisThreadsPriority()
                while true { take().runSynchronously(on: asUnownedTaskExecutor()) }
            }
            thread.name = "moat-test-low-\(index)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// The oldest job waiting, once there is one.
    private func take() -> UnownedJob {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty { condition.wait() }
        return jobs.removeFirst()
    }
}
