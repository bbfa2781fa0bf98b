import Foundation
import MoatTestSupport
import Testing

@testable import MoatProviders

/// Retries, backoff, Retry-After and the circuit breaker: the pure decisions first, then through both
/// providers against the fakes on loopback, with time injected (no test waits real seconds).
@Suite(.promptScheduling) struct ResilienceTests {
    static let now = Date(timeIntervalSince1970: 1_796_000_000)
    static let retries = ProviderRetries(maximumAttempts: 4, baseDelay: .milliseconds(500), maximumWait: .seconds(30))

    func decide(_ error: ProviderError, attempt: Int = 1, delivered: Bool = false, random: Double = 0.5)
        -> RetryPolicy.Decision
    {
        RetryPolicy.decide(
            error, attempt: attempt, delivered: delivered, settings: Self.retries, provider: "p", now: Self.now,
            random: random)
    }

    static let overloaded = ProviderError(.badResponse, "overloaded").markedRetryable().countsAsDown()

    @Test("backoff is exponential with full jitter, capped by max_wait; a server's Retry-After is obeyed instead")
    func backoff() {
        #expect(decide(Self.overloaded, attempt: 1, random: 1) == .retry(after: .milliseconds(500)))
        #expect(decide(Self.overloaded, attempt: 3, random: 1) == .retry(after: .milliseconds(2000)))
        #expect(decide(Self.overloaded, attempt: 3, random: 0) == .retry(after: .zero))
        #expect(decide(Self.overloaded, attempt: 2, random: 0.5) == .retry(after: .milliseconds(500)))
        let capped = RetryPolicy.decide(
            Self.overloaded, attempt: 20, delivered: false,
            settings: ProviderRetries(maximumAttempts: 30, maximumWait: .seconds(30)), provider: "p", now: Self.now,
            random: 1)
        #expect(capped == .retry(after: .seconds(30)))
        let told = ProviderError(.rateLimited, "slow down").markedRetryable(after: .delay(.seconds(12)))
        #expect(decide(told, random: 0) == .retry(after: .seconds(12)))
        let date = ProviderError(.rateLimited, "slow down").markedRetryable(
            after: .date(Self.now.addingTimeInterval(9)))
        #expect(decide(date) == .retry(after: .seconds(9)))
    }

    @Test("a Retry-After beyond max_wait fails at once, saying when to try again")
    func retryAfterBeyondCap() {
        let told = ProviderError(.rateLimited, "the model server at X is limiting requests (HTTP 429): try again later")
            .markedRetryable(after: .delay(.seconds(120)))
        guard case .fail(let error) = decide(told) else {
            Issue.record("a wait of 120 s over a cap of 30 s was retried")
            return
        }
        #expect(error.code == .rateLimited)
        #expect(
            error.message.hasSuffix(
                "the server asks to wait 120 s, longer than providers.p.retries.max_wait_seconds (30): "
                    + "try again after 2026-11-30 00:55:20 UTC"))
        #expect(!error.retryable)
    }

    @Test("never retried: an error not marked retryable, an answer whose text was delivered, the last attempt")
    func neverRetried() {
        let cut = ProviderError(.badResponse, "cut mid-stream")
        #expect(decide(cut) == .fail(cut))
        #expect(decide(Self.overloaded, delivered: true) == .fail(Self.overloaded))
        guard case .fail(let last) = decide(Self.overloaded, attempt: 4) else {
            Issue.record("the fourth of four attempts was retried")
            return
        }
        #expect(last.message == "overloaded (4 attempts)")
    }

    @Test("Retry-After is read as retry-after-ms, whole seconds or an HTTP date; anything else is ignored")
    func retryAfterParsing() {
        #expect(RetryAfter.parse(milliseconds: "1500.5", header: "9") == .delay(.milliseconds(1501)))
        #expect(RetryAfter.parse(milliseconds: nil, header: " 20 ") == .delay(.seconds(20)))
        #expect(
            RetryAfter.parse(milliseconds: nil, header: "Sun, 06 Dec 2026 14:05:00 GMT")
                == .date(Date(timeIntervalSince1970: 1_796_565_900)))
        for junk in ["-3", "soon", "1e3", "Sunday, 06-Dec-26 14:05:00 GMT", "", "99999999999"] {
            #expect(RetryAfter.parse(milliseconds: nil, header: junk) == nil, "\(junk)")
        }
        #expect(RetryAfter.parse(milliseconds: "-1", header: nil) == nil)
        #expect(RetryAfter.parse(milliseconds: "nan", header: "4") == .delay(.seconds(4)))
        #expect(RetryAfter.date(Self.now.addingTimeInterval(-5)).wait(from: Self.now) == .zero)
    }

    @Test("the breaker opens after N failures in a row, refuses until the cool-down ends, then lets one probe through")
    func breakerStates() {
        var breaker = BreakerState(CircuitBreakerSettings(failureThreshold: 3, coolDown: .seconds(30)))
        for _ in 1...2 {
            #expect(breaker.admit(now: Self.now) == nil)
            breaker.record(.down("refused"), now: Self.now)
        }
        breaker.record(.answered, now: Self.now)
        #expect(breaker.consecutiveFailures == 0, "an answer, even a refusal, shows the server is up")
        for _ in 1...3 { breaker.record(.down("refused"), now: Self.now) }
        #expect(breaker.admit(now: Self.now.addingTimeInterval(29)) == Self.now.addingTimeInterval(30))
        #expect(breaker.admit(now: Self.now.addingTimeInterval(30)) == nil, "the probe")
        #expect(breaker.admit(now: Self.now.addingTimeInterval(31)) != nil, "one probe at a time")
        breaker.record(.down("still refused"), now: Self.now.addingTimeInterval(32))
        #expect(breaker.admit(now: Self.now.addingTimeInterval(61)) == Self.now.addingTimeInterval(62))
        #expect(breaker.admit(now: Self.now.addingTimeInterval(62)) == nil)
        breaker.record(.success, now: Self.now.addingTimeInterval(63))
        #expect(breaker.phase == .closed)
        #expect(breaker.admit(now: Self.now.addingTimeInterval(63)) == nil)
    }

    @Test("a 429 with retry-after, then a 529, are retried after the waits the server and the backoff give")
    func anthropicRetries() async throws {
        let server = try await ScriptedAnthropicServer.start(replies: [
            .fault(.rateLimited(retryAfter: "3")), .fault(.overloaded), .text("third time"),
        ])
        defer { Task { await server.stop() } }
        let clock = FakeClock(fraction: 0.5)
        let settings = try anthropic(server).settings
        let provider = try settings.makeProvider(vault: nil, environment: clock.environment)
        let reply = try await provider.complete(ModelRequest(messages: [ChatMessage(role: .user, content: "x")])) { _ in
        }
        #expect(reply.text == "third time")
        #expect(clock.sleeps == [.seconds(3), .milliseconds(500)])
        #expect(server.requests.count == 3)
    }

    @Test("the OpenAI-compatible provider is retried the same way: a 500, then an answer")
    func openAIRetries() async throws {
        let server = try await ScriptedModelServer.start(replies: [
            .fault(.status(503, body: "{}")), .text("back"),
        ])
        defer { Task { await server.stop() } }
        let clock = FakeClock(fraction: 1)
        let resilient = try provider(server).settings.makeProvider(vault: nil, environment: clock.environment)
        let reply = try await resilient.complete(ModelRequest(messages: [ChatMessage(role: .user, content: "x")])) {
            _ in
        }
        #expect(reply.text == "back")
        #expect(clock.sleeps == [.milliseconds(500)])
    }

    @Test("a Retry-After beyond max_wait fails the round at once with when to try again, without waiting")
    func retryAfterBeyondCapEndToEnd() async throws {
        let server = try await ScriptedAnthropicServer.start(replies: [.fault(.rateLimited(retryAfter: "600"))])
        defer { Task { await server.stop() } }
        let clock = FakeClock()
        let provider = try anthropic(server).settings.makeProvider(vault: nil, environment: clock.environment)
        let error = try #require(await failure(of: provider))
        #expect(error.code == .rateLimited)
        #expect(
            error.message.contains("asks to wait 600 s, longer than providers.claude.retries.max_wait_seconds (60)"))
        #expect(error.message.contains("try again after "))
        #expect(clock.sleeps.isEmpty && server.requests.count == 1)
    }

    @Test(
        "a server that is down opens the breaker: later rounds fail at once with the start hint, a probe after the cool-down"
    )
    func breakerThroughProviders() async throws {
        let port = try await closedPort()
        var settings = ProviderSettings(name: "local", baseURL: "http://127.0.0.1:\(port)/v1", model: "m")
        settings.retries = ProviderRetries(maximumAttempts: 2)
        settings.circuitBreaker = CircuitBreakerSettings(failureThreshold: 4, coolDown: .seconds(30))
        let clock = FakeClock()
        let provider = try settings.makeProvider(vault: nil, environment: clock.environment)
        for _ in 1...2 {
            let error = try #require(await failure(of: provider))
            #expect(error.message.contains("is not running: start it"))
            #expect(error.message.contains("(2 attempts)"))
        }
        let refused = try #require(await failure(of: provider))
        #expect(refused.code == .unreachable)
        #expect(
            refused.message.hasPrefix("provider local is not answering: 4 attempts in a row failed, the last with: "))
        #expect(refused.message.contains("the model server at http://127.0.0.1:\(port) is not running: start it"))
        #expect(refused.message.contains("Moat tries it again after"))
        #expect(clock.sleeps.count == 2, "no attempt, and no wait, while the breaker is open")

        // The Anthropic fake, overloaded until it is not: the breaker lets a probe through after the cool-down.
        let server = try await ScriptedAnthropicServer.start(replies: [.fault(.overloaded), .text("recovered")])
        defer { Task { await server.stop() } }
        var claude = try anthropic(server).settings
        claude.retries = ProviderRetries(maximumAttempts: 1)
        claude.circuitBreaker = CircuitBreakerSettings(failureThreshold: 1, coolDown: .seconds(30))
        let guarded = try claude.makeProvider(vault: nil, environment: clock.environment)
        _ = try #require(await failure(of: guarded))
        let open = try #require(await failure(of: guarded))
        #expect(open.message.contains("is overloaded (HTTP 529, overloaded_error)"))
        #expect(server.requests.count == 1)
        clock.advance(.seconds(30))
        let reply = try await guarded.complete(ModelRequest(messages: [ChatMessage(role: .user, content: "x")])) { _ in
        }
        #expect(reply.text == "recovered")
        #expect(server.requests.count == 2)
        #expect(guarded.breaker.current.phase == .closed)
    }

    @Test("a refusal (a wrong key, a bad request) is neither retried nor counted toward the breaker")
    func refusalsAreNotOutages() async throws {
        let server = try await ScriptedAnthropicServer.start(replies: [
            .fault(.status(400, type: "invalid_request_error")), .fault(.status(400, type: "invalid_request_error")),
        ])
        defer { Task { await server.stop() } }
        var settings = try anthropic(server).settings
        settings.circuitBreaker = CircuitBreakerSettings(failureThreshold: 1)
        let clock = FakeClock()
        let provider = try settings.makeProvider(vault: nil, environment: clock.environment)
        for _ in 1...2 { #expect(try #require(await failure(of: provider)).code == .rejected) }
        #expect(server.requests.count == 2 && clock.sleeps.isEmpty)
    }

    @Test("an error event before any content block is retried like a 529; after a block started it is not")
    func streamErrorEvents() async throws {
        let server = try await ScriptedAnthropicServer.start(replies: [
            .init(text: "never shown", fault: .errorEvent(type: "overloaded_error", after: 2)), .text("second try"),
            .init(text: "half", fault: .errorEvent(type: "overloaded_error", after: 4)), .text("must not be asked for"),
        ])
        defer { Task { await server.stop() } }
        let clock = FakeClock()
        let resilient = try anthropic(server).settings.makeProvider(vault: nil, environment: clock.environment)
        let pieces = TextPieces()
        let reply = try await resilient.complete(
            ModelRequest(messages: [ChatMessage(role: .user, content: "x")]), onText: pieces.onText)
        #expect(reply.text == "second try")
        #expect(pieces.all.joined() == "second try")
        #expect(server.requests.count == 2 && clock.sleeps.count == 1)
        let error = try #require(await failure(of: resilient))
        #expect(error.message.contains("reported overloaded_error in the middle of the answer"))
        #expect(server.requests.count == 3)
    }
}
