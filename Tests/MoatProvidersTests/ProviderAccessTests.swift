import Foundation
import MoatAgent
import MoatConfig
import MoatCore
import MoatTestSupport
import Synchronization
import Testing

@testable import MoatProviders

/// Who may use a provider (`allowed_principals` and its default), its daily limit as config reads it,
/// routes naming providers, and the server's `x-should-retry`.
@Suite struct ProviderAccessTests {
    static let contact = Principal.contact(id: "c1", ceilings: [:])

    func configFailure(_ text: String) -> String {
        do {
            _ = try ConfigurationLoader.parse(text, file: "config.yaml")
            return "(no error)"
        } catch {
            return error.message
        }
    }

    @Test("by default a keyless provider on loopback serves everyone; one with a key or off loopback the owner alone")
    func defaultAllowlist() {
        let local = ProviderSettings(name: "local", baseURL: "http://127.0.0.1:11434/v1", model: "m")
        let named = ProviderSettings(name: "named", baseURL: "http://localhost:8080/v1", model: "m")
        let keyed = ProviderSettings(
            name: "keyed", baseURL: "http://127.0.0.1:8080/v1", model: "m", apiKeySecret: "LOCAL_KEY")
        let lan = ProviderSettings(name: "lan", baseURL: "http://192.168.1.20:8000/v1", model: "m")
        let hosted = ProviderSettings(name: "openai", baseURL: "https://api.openai.com/v1", model: "m")
        for settings in [local, named] {
            #expect(!settings.isHosted)
            #expect(settings.allows(.owner, channel: "owner") && settings.allows(Self.contact, channel: "webhook:a"))
        }
        for settings in [keyed, lan, hosted] {
            #expect(settings.isHosted)
            #expect(settings.allows(.owner, channel: "owner"))
            #expect(!settings.allows(Self.contact, channel: "webhook:a"))
        }
    }

    @Test("each pattern matches only its principals: an id or a channel one byte off does not")
    func patterns() throws {
        let contact = try #require(PrincipalPattern("contact:c1"))
        #expect(contact.matches(Self.contact, channel: "x"))
        #expect(!contact.matches(.contact(id: "c2", ceilings: [:]), channel: "x"))
        #expect(!contact.matches(.owner, channel: "owner"))
        let channel = try #require(PrincipalPattern("channel:webhook:sms"))
        #expect(channel.matches(Self.contact, channel: "webhook:sms"))
        #expect(!channel.matches(Self.contact, channel: "webhook:smt"))
        #expect(!channel.matches(.owner, channel: "webhook:sms"))
        #expect(PrincipalPattern("channel:owner")?.matches(.owner, channel: "owner") == false)
        #expect(PrincipalPattern("contacts")?.matches(.owner, channel: "owner") == false)
        #expect(PrincipalPattern("everyone")?.matches(Self.contact, channel: "x") == true)
        for bad in ["", "Owner", "contact:", "channel:", "contact:a b", "anyone", "contact:\u{1b}[31m"] {
            #expect(PrincipalPattern(bad) == nil, "\(bad)")
        }
    }

    @Test("allowed_principals and daily_token_limit are read; a wrong entry names the key and what to write")
    func configKeys() throws {
        let config = try ConfigurationLoader.parse(
            """
            providers:
              local: {}
              openai:
                base_url: https://api.openai.com/v1
                model: gpt-4o-mini
                allowed_principals: [owner, channel:webhook:family]
                daily_token_limit: 200000
            agent:
              routes:
                owner: [local, openai]
                contacts: [local]
            """, file: "config.yaml")
        let openai = try #require(config.providers.named("openai"))
        #expect(openai.allowedPrincipals == [.owner, .channel("webhook:family")])
        #expect(openai.dailyTokenLimit == 200_000)
        #expect(config.agent.routes.map(\.providers) == [["local", "openai"], ["local"]])
        #expect(config.agent.routes.map(\.principals) == [.owner, .contacts])

        let wrong = configFailure("providers:\n  local:\n    allowed_principals: [owner, friends]\n")
        #expect(wrong.contains("providers.local.allowed_principals") && wrong.contains("contact:ID"), "\(wrong)")
        let empty = configFailure("providers:\n  local:\n    allowed_principals: []\n")
        #expect(empty.contains("lists no one"), "\(empty)")
        let limit = configFailure("providers:\n  local:\n    daily_token_limit: 0\n")
        #expect(limit.contains("providers.local.daily_token_limit"), "\(limit)")
    }

    @Test("a route naming a provider that is not configured is a config error naming the key and the fix")
    func unknownProviderInRoute() {
        let message = configFailure(
            """
            providers:
              local: {}
            agent:
              routes:
                channel:webhook:sms: [local, claude]
            """)
        #expect(message.contains("config.yaml:5"), "\(message)")
        #expect(message.contains("agent.routes.channel:webhook:sms"), "\(message)")
        #expect(message.contains("claude") && message.contains("(local)") && message.contains("add providers.claude"))
        let twice = configFailure("agent:\n  routes:\n    owner: [local, local]\n")
        #expect(twice.contains("twice"), "\(twice)")
        let none = configFailure("agent:\n  routes:\n    owner: []\n")
        #expect(none.contains("lists no provider"), "\(none)")
        let who = configFailure("agent:\n  routes:\n    strangers: [local]\n")
        #expect(who.contains("agent.routes.strangers") && who.contains("is not a principal"), "\(who)")
    }

    @Test("an outage is no connection, a timeout, a 429 or a server failure; a refusal or a bad answer is not")
    func outages() {
        #expect(ProviderError(.unreachable, "x").isOutage)
        #expect(ProviderError(.timedOut, "x").isOutage)
        #expect(ProviderError(.rateLimited, "x").isOutage)
        #expect(ProviderError(.badResponse, "x").countsAsDown().isOutage)
        #expect(!ProviderError(.badResponse, "x").isOutage)
        #expect(!ProviderError(.rejected, "x").isOutage)
        #expect(!ProviderError(.configuration, "x").isOutage)
    }

    @Test("x-should-retry: false stops the retry a 503 would get; true retries a status that would not be")
    func shouldRetryDecision() {
        let failed = ProviderError(.badResponse, "failed")
        #expect(ProviderEndpoint.classified(failed, status: 503, shouldRetry: nil, after: nil).retryable)
        let refused = ProviderEndpoint.classified(failed, status: 503, shouldRetry: "false", after: nil)
        #expect(!refused.retryable && refused.serverDown)
        #expect(ProviderEndpoint.classified(failed, status: 409, shouldRetry: "true", after: nil).retryable)
        #expect(!ProviderEndpoint.classified(failed, status: 409, shouldRetry: nil, after: nil).retryable)
        #expect(!ProviderEndpoint.classified(failed, status: 409, shouldRetry: "yes", after: nil).retryable)
        #expect(ProviderEndpoint.classified(failed, status: 429, shouldRetry: " TRUE ", after: nil).retryable)
    }

    @Test("x-should-retry through a real server: false is asked once; true on a 409 is asked again and answers")
    func shouldRetryOverTheWire() async throws {
        let answer =
            #"{"id":"1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"second time"},"finish_reason":"stop"}]}"#
        let count = Mutex(0)
        let server = try await LoopbackHTTPServer.start { request in
            let n = count.withLock { value in
                value += 1
                return value
            }
            if request.target.hasPrefix("/never") {
                return .init(status: 503, headers: [("x-should-retry", "false")], body: "{}")
            }
            if n == 1 { return .init(status: 409, headers: [("x-should-retry", "true")], body: "{}") }
            return .init(headers: [("Content-Type", "application/json")], body: answer)
        }
        defer { Task { await server.stop() } }
        let clock = FakeClock()
        let retried = ProviderSettings(name: "p", baseURL: server.origin + "/v1", model: "m", stream: false)
        let reply = try await retried.makeProvider(vault: nil, environment: clock.environment)
            .complete(ModelRequest(messages: [ChatMessage(role: .user, content: "x")])) { _ in }
        #expect(reply.text == "second time")
        #expect(server.requests.count == 2 && clock.sleeps.count == 1)

        let never = ProviderSettings(name: "q", baseURL: server.origin + "/never", model: "m", stream: false)
        let error = await failure(of: try never.makeProvider(vault: nil, environment: clock.environment))
        #expect(error?.serverDown == true && error?.retryable == false)
        #expect(server.requests.filter { $0.target.hasPrefix("/never") }.count == 1)
    }
}
