import ServiceLifecycle
import Synchronization

/// Work that outlives the request that started it (a webhook turn whose reply goes to a callback),
/// run in one discarding task group that belongs to the server's service group: no free-standing task.
///
/// At most ``maximumPending`` jobs are queued or running; more are refused, so a flood of deliveries
/// cannot pile up turns. On graceful shutdown no job is taken any more and the queued and running ones
/// finish (each is bounded by the agent's turn budget and the callback's retries).
final class BackgroundWork: Service, Sendable {
    typealias Job = @Sendable () async -> Void

    static let maximumPending = 64

    private let jobs: AsyncStream<Job>
    private let queue: AsyncStream<Job>.Continuation
    private let pending = Atomic<Int>(0)

    init() {
        (jobs, queue) = AsyncStream.makeStream()
    }

    /// Queues `job`; false when ``maximumPending`` jobs are waiting or the service has stopped.
    func submit(_ job: @escaping Job) -> Bool {
        guard pending.add(1, ordering: .relaxed).newValue <= Self.maximumPending else {
            pending.subtract(1, ordering: .relaxed)
            return false
        }
        guard
            case .enqueued = queue.yield({ [self] in
                await job()
                self.pending.subtract(1, ordering: .relaxed)
            })
        else {
            self.pending.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func run() async throws {
        let jobs = self.jobs
        let queue = self.queue
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await job in jobs { group.addTask { await job() } }
            } onGracefulShutdown: {
                queue.finish()
            }
        }
    }
}
