/// Exponential backoff with full jitter: after the n-th failure in a row, a wait drawn uniformly from
/// [base·2ⁿ⁻¹ / 2, base·2ⁿ⁻¹], capped at ``maximum``. Half the range is random, so adapters that lost the
/// same platform at once do not come back in lockstep; the lower half-bound keeps a floor under retries.
public struct ReconnectBackoff: Sendable, Hashable {
    public var base: Duration
    public var maximum: Duration

    public init(base: Duration = .seconds(1), maximum: Duration = .seconds(60)) {
        self.base = base
        self.maximum = maximum
    }

    /// The wait after `failures` failures in a row (1 for the first), using `random` for the jitter.
    public func delay(afterFailures failures: Int, random: inout some RandomNumberGenerator) -> Duration {
        let exponent = min(max(failures, 1) - 1, 30)
        let ceiling = min(base * (1 << exponent), maximum)
        let fraction = Double.random(in: 0.5...1.0, using: &random)
        return ceiling * fraction
    }
}

/// Runs one adapter until cancelled: each time ``ChannelAdapter/run(inbox:)`` throws, waits out the
/// backoff and runs it again from the saved cursor. A run that lasted ``healthyAfter`` resets the count.
public struct ChannelSupervisor: Sendable {
    public let adapter: any ChannelAdapter
    public let inbox: any ChannelInbox
    public let backoff: ReconnectBackoff
    public let healthyAfter: Duration
    /// Told of each failure and the wait before the next run (the server's log).
    let onFailure: @Sendable (_ error: any Error, _ wait: Duration) -> Void

    public init(
        adapter: any ChannelAdapter,
        inbox: any ChannelInbox,
        backoff: ReconnectBackoff = ReconnectBackoff(),
        healthyAfter: Duration = .seconds(60),
        onFailure: @escaping @Sendable (_ error: any Error, _ wait: Duration) -> Void = { _, _ in }
    ) {
        self.adapter = adapter
        self.inbox = inbox
        self.backoff = backoff
        self.healthyAfter = healthyAfter
        self.onFailure = onFailure
    }

    /// Runs until the task is cancelled.
    public func run() async {
        var failures = 0
        var random = SystemRandomNumberGenerator()
        let clock = ContinuousClock()
        while !Task.isCancelled {
            let started = clock.now
            do {
                try await adapter.run(inbox: inbox)
                // An adapter returns only when cancelled; one that returns early is restarted like a failure.
                if Task.isCancelled { return }
                throw ChannelError(.deliveryFailed, "the \(adapter.channel) adapter stopped on its own")
            } catch {
                if Task.isCancelled { return }
                failures = clock.now - started >= healthyAfter ? 1 : failures + 1
                let wait = backoff.delay(afterFailures: failures, random: &random)
                onFailure(error, wait)
                do { try await Task.sleep(for: wait) } catch { return }
            }
        }
    }
}
