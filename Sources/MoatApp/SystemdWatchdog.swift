import NIOCore
import ServiceLifecycle

/// Pings the service manager's watchdog (`WATCHDOG=1`) every half `WATCHDOG_USEC` while every event loop
/// of the server answers, and says `STOPPING=1` when the graceful shutdown begins.
///
/// A ping needs this task to run (the cooperative pool is alive) and a no-op submitted to each event
/// loop to come back (no loop is stuck): a wedged server stops pinging and the manager restarts it.
/// The first ping follows `READY=1` (``ready()``), which the listener sends once it is up.
struct SystemdWatchdog: Service {
    let notifier: SystemdNotifier
    let loops: any EventLoopGroup
    private let readiness: AsyncStream<Void>
    private let readied: AsyncStream<Void>.Continuation

    init(notifier: SystemdNotifier, loops: any EventLoopGroup) {
        self.notifier = notifier
        self.loops = loops
        (readiness, readied) = AsyncStream.makeStream()
    }

    /// Says `READY=1` (with `status` as the manager's status line) and lets the pings begin.
    func ready(status: String) {
        notifier.send("READY=1\nSTATUS=\(status)")
        readied.yield()
        readied.finish()
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            do {
                try await cancelWhenGracefulShutdown { try await pingWhileAnswering() }
            } catch {
                // Cancelled by the shutdown: nothing more to say than STOPPING=1.
            }
        } onGracefulShutdown: {
            notifier.send("STOPPING=1")
        }
    }

    private func pingWhileAnswering() async throws {
        guard let interval = notifier.watchdogInterval else {
            try await gracefulShutdown()
            return
        }
        for await _ in readiness {}
        while true {
            for loop in loops.makeIterator() {
                try await loop.submit {}.get()
            }
            notifier.send("WATCHDOG=1")
            try await Task.sleep(for: interval / 2)
        }
    }
}
