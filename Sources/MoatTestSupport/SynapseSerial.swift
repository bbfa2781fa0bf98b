public import Testing

/// Runs the tests it marks one at a time, across suites and test targets: each real Synapse (about
/// 110 MB and a Python process) and the `moat serve` talking to it get the machine to themselves.
///
/// `@Suite(.serialized, .synapseSerial)`: the suite's own `.serialized` orders its tests; this trait
/// keeps them from running beside another suite's Synapse tests.
public struct SynapseSerial: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite's scope holds nothing: only each test case waits for its turn.
        guard testCase != nil else { return try await function() }
        await Self.turns.acquire()
        do {
            try await function()
        } catch {
            await Self.turns.release()
            throw error
        }
        await Self.turns.release()
    }

    static let turns = Turns()

    /// A first-come, first-served lock for async code.
    actor Turns {
        private var held = false
        private var waiting: [CheckedContinuation<Void, Never>] = []

        func acquire() async {
            guard held else {
                held = true
                return
            }
            await withCheckedContinuation { waiting.append($0) }
        }

        func release() {
            if waiting.isEmpty {
                held = false
            } else {
                waiting.removeFirst().resume()
            }
        }
    }
}

extension Trait where Self == SynapseSerial {
    /// One Synapse test at a time in the whole test process.
    public static var synapseSerial: SynapseSerial { SynapseSerial() }
}
