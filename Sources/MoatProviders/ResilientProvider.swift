public import Foundation
public import MoatNet
public import MoatVault
import Synchronization

/// Time, waiting and chance for the retry loop and the circuit breaker: the system's in production, a
/// fake in tests (so no test waits real seconds or depends on timing).
public struct RetryEnvironment: Sendable {
    public var now: @Sendable () -> Date
    public var sleep: @Sendable (Duration) async throws -> Void
    /// A uniformly random fraction in 0...1 (the full jitter).
    public var random: @Sendable () -> Double

    public init(
        now: @escaping @Sendable () -> Date, sleep: @escaping @Sendable (Duration) async throws -> Void,
        random: @escaping @Sendable () -> Double
    ) {
        self.now = now
        self.sleep = sleep
        self.random = random
    }

    public static let system = RetryEnvironment(
        now: { Date() }, sleep: { try await Task.sleep(for: $0) }, random: { Double.random(in: 0...1) })
}

/// Any provider, with retries and a circuit breaker (`providers.NAME.retries`, `.circuit_breaker`).
///
/// A failed attempt is sent again only when the provider marked it ``ProviderError/retryable`` (nothing
/// of the answer was read: a 408, 429, 5xx or 529, a connection refused or closed before the answer)
/// and no text reached `onText`; so a streamed answer that started delivering is never re-requested,
/// and neither is a round whose reply (and its tool calls) reached the agent: retrying happens inside
/// one `complete`, before it returns. The waits: the server's `retry-after-ms` / `Retry-After` when it
/// sent one, else a random time up to base × 2^(n-1) (exponential backoff, full jitter), never more
/// than `max_wait_seconds`; a server asking for longer fails the round at once, saying when to retry.
/// The breaker opens after `failures` consecutive attempts that found the server down (no connection,
/// a timeout, a 5xx or 529), refuses rounds at once for `cool_down_seconds`, then lets one probe through.
public struct ResilientProvider: ModelProvider {
    public let inner: any ModelProvider
    public let settings: ProviderSettings
    let breaker: CircuitBreaker
    let environment: RetryEnvironment

    public init(_ inner: any ModelProvider, settings: ProviderSettings, environment: RetryEnvironment = .system) {
        self.inner = inner
        self.settings = settings
        self.breaker = CircuitBreaker(settings.circuitBreaker)
        self.environment = environment
    }

    public var name: String { inner.name }
    public var contextTokens: Int? { settings.contextTokens }

    public func complete(
        _ request: ModelRequest, onText: @escaping @Sendable (String) async -> Void
    ) async throws(ProviderError) -> ModelReply {
        let delivered = DeliveryFlag()
        let forward: @Sendable (String) async -> Void = { piece in
            delivered.set()
            await onText(piece)
        }
        var attempt = 0
        while true {
            attempt += 1
            if let refusal = breaker.admit(now: environment.now(), provider: name) { throw refusal }
            let failure: ProviderError
            do {
                let reply = try await inner.complete(request, onText: forward)
                breaker.record(.success, now: environment.now())
                return reply
            } catch {
                failure = error
            }
            breaker.record(failure.serverDown ? .down(failure.message) : .answered, now: environment.now())
            let decision = RetryPolicy.decide(
                failure, attempt: attempt, delivered: delivered.isSet, settings: settings.retries,
                provider: name, now: environment.now(), random: environment.random())
            switch decision {
            case .fail(let error):
                throw error
            case .retry(let wait):
                do {
                    try await environment.sleep(wait)
                } catch {
                    throw failure  // cancelled while waiting
                }
            }
        }
    }
}

/// Whether any text of the round reached `onText`.
final class DeliveryFlag: Sendable {
    private let flag = Atomic(false)
    func set() { flag.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { flag.load(ordering: .sequentiallyConsistent) }
}

/// Whether and when to try a failed attempt again: a pure decision, no clock, no I/O.
enum RetryPolicy {
    enum Decision: Equatable {
        case retry(after: Duration)
        case fail(ProviderError)
    }

    /// - Parameters:
    ///   - attempt: the attempt that just failed, from 1.
    ///   - delivered: whether any text of the answer reached the reader.
    ///   - random: a fraction in 0...1 for the jitter.
    static func decide(
        _ error: ProviderError, attempt: Int, delivered: Bool, settings: ProviderRetries, provider: String,
        now: Date, random: Double
    ) -> Decision {
        guard error.retryable, !delivered else { return .fail(error) }
        if let asked = error.retryAfter?.wait(from: now), asked > settings.maximumWait {
            let when = now.addingTimeInterval(asked.inSeconds)
            return .fail(
                error.amended(
                    "; the server asks to wait \(Int(asked.inSeconds.rounded(.up))) s, longer than "
                        + "providers.\(provider).retries.max_wait_seconds (\(Int(settings.maximumWait.inSeconds))): "
                        + "try again after \(Self.clockTime(when))"))
        }
        guard attempt < settings.maximumAttempts else {
            return .fail(attempt > 1 ? error.amended(" (\(attempt) attempts)") : error)
        }
        if let asked = error.retryAfter?.wait(from: now) { return .retry(after: asked) }
        let growth = settings.baseDelay * (1 << min(attempt - 1, 30))
        let ceiling = min(settings.maximumWait, growth)
        let fraction = min(1, max(0, random))
        return .retry(after: .milliseconds(Int64((ceiling.inSeconds * 1000 * fraction).rounded(.down))))
    }

    /// `2026-12-06 14:05:12 UTC`.
    static func clockTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return formatter.string(from: date)
    }
}

extension ProviderError {
    /// The same error with `text` added to its message; no longer retryable.
    func amended(_ text: String) -> ProviderError {
        var copy = ProviderError(code, message + text)
        copy.serverDown = serverDown
        return copy
    }
}

extension ProviderError: Equatable {
    public static func == (lhs: ProviderError, rhs: ProviderError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.retryable == rhs.retryable
            && lhs.retryAfter == rhs.retryAfter && lhs.serverDown == rhs.serverDown
    }
}

extension Duration {
    /// The duration in seconds, as a fraction.
    var inSeconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}

/// The state of one provider's breaker and its transitions: a pure value, the time passed in.
struct BreakerState: Sendable, Equatable {
    enum Phase: Sendable, Equatable {
        case closed
        case open(until: Date)
        /// The cool-down passed; `probing` while the one probe attempt is out.
        case halfOpen(probing: Bool)
    }

    enum Outcome: Sendable, Equatable {
        case success
        /// The server answered (a refusal, a bad answer): it is up.
        case answered
        /// The server is down (no connection, a timeout, a 5xx or 529); the message, for the owner.
        case down(String)
    }

    let settings: CircuitBreakerSettings
    private(set) var phase = Phase.closed
    private(set) var consecutiveFailures = 0
    private(set) var lastFailure = ""

    init(_ settings: CircuitBreakerSettings) { self.settings = settings }

    /// Whether an attempt may go out now; nil: yes. Otherwise the moment the breaker lets one through.
    mutating func admit(now: Date) -> Date? {
        switch phase {
        case .closed:
            return nil
        case .open(let until):
            guard now >= until else { return until }
            phase = .halfOpen(probing: true)
            return nil
        case .halfOpen(let probing):
            guard !probing else { return now }
            phase = .halfOpen(probing: true)
            return nil
        }
    }

    mutating func record(_ outcome: Outcome, now: Date) {
        guard case .down(let message) = outcome else {
            consecutiveFailures = 0
            phase = .closed
            return
        }
        consecutiveFailures += 1
        lastFailure = message
        switch phase {
        case .halfOpen, .open:
            phase = .open(until: now.addingTimeInterval(settings.coolDown.inSeconds))
        case .closed:
            if consecutiveFailures >= settings.failureThreshold {
                phase = .open(until: now.addingTimeInterval(settings.coolDown.inSeconds))
            }
        }
    }
}

/// One provider's breaker, shared by every round that uses the provider.
final class CircuitBreaker: Sendable {
    private let state: Mutex<BreakerState>

    init(_ settings: CircuitBreakerSettings) { state = Mutex(BreakerState(settings)) }

    /// Nil when an attempt may go out; otherwise the error that refuses it.
    func admit(now: Date, provider: String) -> ProviderError? {
        let (until, failures, last) = state.withLock { state in
            (state.admit(now: now), state.consecutiveFailures, state.lastFailure)
        }
        guard let until else { return nil }
        let wait = max(0, Int(until.timeIntervalSince(now).rounded(.up)))
        let next =
            wait == 0
            ? "Moat is trying it again now (one round at a time)"
            : "Moat tries it again after \(RetryPolicy.clockTime(until)) (in \(wait) s)"
        return ProviderError(
            .unreachable,
            "provider \(provider) is not answering: \(failures == 1 ? "1 attempt" : "\(failures) attempts") in a row "
                + "failed, the last with: \(last). "
                + next)
    }

    func record(_ outcome: BreakerState.Outcome, now: Date) {
        state.withLock { $0.record(outcome, now: now) }
    }

    var current: BreakerState { state.withLock { $0 } }
}

extension ProviderSettings {
    /// The provider these settings describe, with its retries and circuit breaker: the one place
    /// that turns `providers.NAME` into a ``ModelProvider``.
    ///
    /// - Throws: ``ProviderError`` `.configuration` when the base URL is unusable.
    public func makeProvider(
        vault: UnlockedVault?, resolver: AddressResolver = .system, environment: RetryEnvironment = .system
    ) throws(ProviderError) -> ResilientProvider {
        let inner: any ModelProvider =
            switch kind {
            case .openai: try OpenAICompatibleProvider(settings: self, vault: vault, resolver: resolver)
            case .anthropic: try AnthropicProvider(settings: self, vault: vault, resolver: resolver)
            }
        return ResilientProvider(inner, settings: self, environment: environment)
    }
}
