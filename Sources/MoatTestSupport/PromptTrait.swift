public import Testing

/// Runs each test of a suite in a task of high priority, for tests whose clients and servers live in the
/// test process and work to time limits (a model or Telegram client with its 30 s limit, a fake tailscaled).
///
/// The concurrency runtime on Linux gives each priority its own threads. A full run starts hundreds of
/// synchronous tests at default priority at once; on 2 cores their bodies hold the default threads for
/// tens of seconds, and a client's continuation queued behind them misses its limit although its server
/// answered at once. At high priority the continuations (and every task the test starts) run on threads
/// of their own. Task-local values (the current test, so its issues) are inherited.
public struct PromptScheduling: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        // The task is awaited before this returns, so `function` never outlives the call.
        try await withoutActuallyEscaping(function) { body in
            try await Task(priority: .high) { try await body() }.value
        }
    }
}

extension Trait where Self == PromptScheduling {
    /// ``PromptScheduling``: the suite's tests run at high task priority.
    public static var promptScheduling: Self { PromptScheduling() }
}
