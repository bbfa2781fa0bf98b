import Foundation
import MoatAgent
import MoatCore
import MoatPolicy
import MoatProviders
import MoatTestSupport
import Synchronization
import Testing

/// Routing, fallbacks, allowlists and daily limits, against real model servers on loopback (a server
/// that is down is a closed port) and a real moat.db: what a provider's server sees is the proof.
@Suite(.promptScheduling) struct RoutingTests {
    /// A provider aimed at `baseURL`, tried once per round (no retry waits in the test).
    static func member(
        _ name: String, _ baseURL: String, allowed: [PrincipalPattern]? = nil, dailyLimit: Int? = nil
    ) throws -> ProviderRouting.Member {
        var settings = ProviderSettings(
            name: name, baseURL: baseURL, model: "scripted", stream: false,
            retries: ProviderRetries(maximumAttempts: 1))
        settings.allowedPrincipals = allowed
        settings.dailyTokenLimit = dailyLimit
        return ProviderRouting.Member(try settings.makeProvider(vault: nil), settings: settings)
    }

    static func deadURL() async throws -> String {
        let server = try await ScriptedModelServer.start()
        let url = server.baseURL
        await server.stop()
        return url
    }

    static func contactMessage(_ text: String, conversation: String = "sms-1") -> InboundMessage {
        InboundMessage(
            channel: "webhook:sms", senderID: "+15550100", conversation: conversation, text: text,
            idempotencyKey: UUID().uuidString)
    }

    @Test("a contact whose route names only a provider it may not use never reaches it; the owner is told")
    func contactNeverReachesHostedProvider() async throws {
        let hosted = try await ScriptedModelServer.start(replies: [.text("hosted answer")])
        defer { Task { await hosted.stop() } }
        let routing = try ProviderRouting(
            members: [try Self.member("hosted", hosted.baseURL, allowed: [.owner])], defaultProvider: "hosted",
            routes: [ProviderRoute(principals: .contacts, providers: ["hosted"])])
        let fixture = try AgentFixture(tools: [], routing: routing)
        try await fixture.policy.addContact(channel: "webhook:sms", senderID: "+15550100")
        let outcome = try await fixture.agent.handle(Self.contactMessage("spend the owner's money"))
        #expect(outcome.stoppedBy?.limit == .noProvider)
        #expect(outcome.provider == nil && outcome.rounds == 0)
        #expect(hosted.requests.isEmpty)
        let notice = try #require(fixture.notices.all.first { $0.kind == .noProvider })
        #expect(notice.text.contains("providers.NAME.allowed_principals") && notice.text.contains("hosted"))
        let actions = try fixture.auditActions()
        #expect(actions.contains("agent.route.skipped") && !actions.contains("agent.model"))
        // The owner, on the same provider, is answered.
        let owner = try await fixture.agent.handle(fixture.owner("hello"))
        #expect(owner.reply == "hosted answer" && owner.provider == "hosted")
        #expect(hosted.requests.count == 1)
    }

    @Test("a route listing a provider the contact may not use skips it and the next allowed one answers")
    func disallowedProviderIsSkipped() async throws {
        let hosted = try await ScriptedModelServer.start()
        let local = try await ScriptedModelServer.start(replies: [.text("local answer")])
        defer { Task { await hosted.stop() } }
        defer { Task { await local.stop() } }
        let routing = try ProviderRouting(
            members: [
                try Self.member("hosted", hosted.baseURL, allowed: [.owner]), try Self.member("local", local.baseURL),
            ],
            defaultProvider: "local",
            routes: [ProviderRoute(principals: .channel("webhook:sms"), providers: ["hosted", "local"])])
        let fixture = try AgentFixture(tools: [], routing: routing)
        try await fixture.policy.addContact(channel: "webhook:sms", senderID: "+15550100")
        let outcome = try await fixture.agent.handle(Self.contactMessage("hi"))
        #expect(outcome.reply == "local answer" && outcome.provider == "local" && outcome.fallbacks.isEmpty)
        #expect(hosted.requests.isEmpty && local.requests.count == 1)
    }

    @Test("a provider that is down (a closed port) or answers 503 hands the round to the next; audited")
    func fallbackOnOutage() async throws {
        let failing = try await ScriptedModelServer.start(replies: [.fault(.status(503, body: "{}"))])
        let live = try await ScriptedModelServer.start(replies: [.text("from live"), .text("again from live")])
        defer { Task { await failing.stop() } }
        defer { Task { await live.stop() } }
        let routing = try ProviderRouting(
            members: [
                try Self.member("dead", try await Self.deadURL()), try Self.member("failing", failing.baseURL),
                try Self.member("live", live.baseURL),
            ], defaultProvider: "dead",
            routes: [ProviderRoute(principals: .owner, providers: ["dead", "failing", "live"])])
        let fixture = try AgentFixture(tools: [], routing: routing)
        let outcome = try await fixture.agent.handle(fixture.owner("hello"))
        #expect(outcome.reply == "from live" && outcome.provider == "live")
        #expect(outcome.fallbacks == ["dead", "failing"])
        #expect(failing.requests.count == 1 && live.requests.count == 1)
        #expect(try fixture.count("audit_entries", "action = 'agent.model.fallback'") == 2)
        #expect(try fixture.count("audit_entries", "action = 'agent.model.failed'") == 2)
        // Usage is booked to the provider that answered.
        #expect(try fixture.count("agent_token_usage", "provider = 'live'") == 1)
        #expect(try fixture.count("agent_token_usage", "provider IN ('dead', 'failing')") == 0)
    }

    @Test("a refusal (HTTP 404: an unknown model) is not an outage: the next provider is never asked")
    func refusalDoesNotFallBack() async throws {
        let refusing = try await ScriptedModelServer.start(replies: [
            .fault(.status(404, body: #"{"error":{"message":"model not found"}}"#))
        ])
        let other = try await ScriptedModelServer.start(replies: [.text("unused")])
        defer { Task { await refusing.stop() } }
        defer { Task { await other.stop() } }
        let routing = try ProviderRouting(
            members: [try Self.member("first", refusing.baseURL), try Self.member("second", other.baseURL)],
            defaultProvider: "first", routes: [ProviderRoute(principals: .owner, providers: ["first", "second"])])
        let fixture = try AgentFixture(tools: [], routing: routing)
        let error = await agentError { try await fixture.agent.handle(fixture.owner("hello")) }
        #expect(error?.code == .provider)
        #expect(other.requests.isEmpty)
    }

    /// A `note` tool at `trust`, routed owner: [first, second]; `second` must never be asked.
    static func noteTaker(_ first: ScriptedModelServer, trust: TrustLevel) async throws
        -> (second: ScriptedModelServer, tool: TestTool, fixture: AgentFixture)
    {
        let second = try await ScriptedModelServer.start(replies: [.text("unused")])
        let routing = try ProviderRouting(
            members: [try member("first", first.baseURL), try member("second", second.baseURL)],
            defaultProvider: "first", routes: [ProviderRoute(principals: .owner, providers: ["first", "second"])])
        let tool = TestTool("note", domain: .files)
        return (second, tool, try AgentFixture(tools: [tool], trust: [.files: trust], routing: routing))
    }

    @Test("no fallback once a tool call of the turn was acted on: the second provider is never asked")
    func noFallbackAfterToolCalls() async throws {
        let first = try await ScriptedModelServer.start(replies: [
            .toolCall("note", #"{"target":"x"}"#), .fault(.status(503, body: "{}")),
        ])
        let (second, tool, fixture) = try await Self.noteTaker(first, trust: .fullAutonomy)
        defer { Task { await first.stop() } }
        defer { Task { await second.stop() } }
        let error = await agentError { try await fixture.agent.handle(fixture.owner("take a note")) }
        #expect(tool.ran.count == 1)
        #expect(error?.code == .provider)
        #expect(error?.message.contains("acted on") == true, "\(error?.message ?? "")")
        #expect(first.requests.count == 2 && second.requests.isEmpty)
        #expect(try fixture.count("audit_entries", "action = 'agent.model.fallback'") == 0)
        // The conversation is kept: the call and its result are stored for the next turn.
        #expect(try fixture.count("agent_messages", "role = 'tool'") == 1)
    }

    @Test("after an approved call ran, the resumed turn does not fall back: the second provider is never asked")
    func noFallbackAfterApprovedCall() async throws {
        let first = try await ScriptedModelServer.start(replies: [
            .toolCall("note", #"{"target":"x"}"#), .text("it waits for you"), .fault(.status(503, body: "{}")),
        ])
        let (second, tool, fixture) = try await Self.noteTaker(first, trust: .suggest)
        defer { Task { await first.stop() } }
        defer { Task { await second.stop() } }
        let held = try await fixture.agent.handle(fixture.owner("take a note"))
        let approval = try #require(held.pending.first?.approvalID)
        let error = await agentError { try await fixture.agent.approve(approval) }
        #expect(tool.ran.count == 1)
        #expect(error?.code == .provider)
        #expect(error?.message.contains("acted on") == true, "\(error?.message ?? "")")
        #expect(first.requests.count == 3 && second.requests.isEmpty)
    }

    @Test("no fallback once text of the answer was shown: a stream cut after its text started stays an error")
    func noFallbackAfterText() async throws {
        let first = try await ScriptedModelServer.start(replies: [.fault(.cutAfterEvents(3), text: "a long answer")])
        let second = try await ScriptedModelServer.start(replies: [.text("unused")])
        defer { Task { await first.stop() } }
        defer { Task { await second.stop() } }
        var settings = ProviderSettings(
            name: "first", baseURL: first.baseURL, model: "scripted", retries: ProviderRetries(maximumAttempts: 1))
        settings.stream = true
        let routing = try ProviderRouting(
            members: [
                ProviderRouting.Member(try settings.makeProvider(vault: nil), settings: settings),
                try Self.member("second", second.baseURL),
            ], defaultProvider: "first", routes: [ProviderRoute(principals: .owner, providers: ["first", "second"])])
        let fixture = try AgentFixture(tools: [], routing: routing)
        let shown = PieceRecorder()
        let error = await agentError {
            try await fixture.agent.handle(fixture.owner("hello"), onText: { shown.add($0) })
        }
        #expect(!shown.pieces.isEmpty)
        #expect(error?.code == .provider)
        #expect(error?.message.contains("already shown") == true, "\(error?.message ?? "")")
        #expect(second.requests.isEmpty)
    }

    @Test("a provider past its daily_token_limit gets no further request; the owner is told once that day")
    func dailyLimitStopsSpending() async throws {
        let hosted = try await ScriptedModelServer.start(replies: [
            .text("first", usage: .init(prompt: 900, completion: 200))
        ])
        let local = try await ScriptedModelServer.start(replies: [.text("local one"), .text("local two")])
        defer { Task { await hosted.stop() } }
        defer { Task { await local.stop() } }
        let routing = try ProviderRouting(
            members: [
                try Self.member("hosted", hosted.baseURL, dailyLimit: 1000), try Self.member("local", local.baseURL),
            ],
            defaultProvider: "hosted", routes: [ProviderRoute(principals: .owner, providers: ["hosted", "local"])])
        let fixture = try AgentFixture(tools: [], routing: routing)
        let first = try await fixture.agent.handle(fixture.owner("one", conversation: "a"))
        #expect(first.provider == "hosted")
        let second = try await fixture.agent.handle(fixture.owner("two", conversation: "b"))
        let third = try await fixture.agent.handle(fixture.owner("three", conversation: "c"))
        #expect(second.provider == "local" && second.fallbacks == ["hosted"] && third.provider == "local")
        #expect(hosted.requests.count == 1 && local.requests.count == 2)
        #expect(fixture.notices.all.filter { $0.kind == .providerLimit }.count == 1)
        #expect(try fixture.count("audit_entries", "action = 'agent.provider.limit'") == 1)
        // The next UTC day the limit starts again, and so does the notice.
        fixture.advance(86_400)
        hosted.enqueue(.text("a new day", usage: .init(prompt: 1000, completion: 10)))
        #expect(try await fixture.agent.handle(fixture.owner("four", conversation: "d")).provider == "hosted")
        local.enqueue(.text("local three"))
        #expect(try await fixture.agent.handle(fixture.owner("five", conversation: "e")).provider == "local")
        #expect(fixture.notices.all.filter { $0.kind == .providerLimit }.count == 2)
    }

    @Test("with no other provider, a reached daily_token_limit stops the turn and sends nothing")
    func dailyLimitWithoutFallback() async throws {
        let hosted = try await ScriptedModelServer.start(replies: [
            .text("first", usage: .init(prompt: 5000, completion: 10))
        ])
        defer { Task { await hosted.stop() } }
        let routing = try ProviderRouting(
            members: [try Self.member("hosted", hosted.baseURL, dailyLimit: 1000)], defaultProvider: "hosted")
        let fixture = try AgentFixture(tools: [], routing: routing)
        _ = try await fixture.agent.handle(fixture.owner("one"))
        let stopped = try await fixture.agent.handle(fixture.owner("two"))
        #expect(stopped.stoppedBy?.limit == .providerTokens)
        #expect(stopped.reply.contains("daily_token_limit") && stopped.rounds == 0)
        #expect(hosted.requests.count == 1)
        #expect(fixture.notices.all.filter { $0.kind == .providerLimit }.count == 1)
    }

    @Test("the owner's chosen provider is kept with the conversation; an unknown or conflicting choice is refused")
    func conversationProvider() async throws {
        let one = try await ScriptedModelServer.start(replies: [.text("unused")])
        let two = try await ScriptedModelServer.start(replies: [.text("from two"), .text("two again")])
        defer { Task { await one.stop() } }
        defer { Task { await two.stop() } }
        let routing = try ProviderRouting(
            members: [try Self.member("one", one.baseURL), try Self.member("two", two.baseURL)], defaultProvider: "one")
        let fixture = try AgentFixture(tools: [], routing: routing)
        var first = fixture.owner("hello", conversation: "chosen")
        first.provider = "two"
        #expect(try await fixture.agent.handle(first).provider == "two")
        #expect(try await fixture.agent.handle(fixture.owner("more", conversation: "chosen")).provider == "two")
        #expect(one.requests.isEmpty && two.requests.count == 2)
        #expect(try fixture.count("agent_conversation_routes", "provider = 'two'") == 1)

        var unknown = fixture.owner("hello", conversation: "other")
        unknown.provider = "three"
        let error = await agentError { try await fixture.agent.handle(unknown) }
        #expect(error?.code == .invalidInput)
        #expect(error?.message.contains("one, two") == true, "\(error?.message ?? "")")
        var conflicting = fixture.owner("hello", conversation: "chosen")
        conflicting.provider = "one"
        #expect(await agentError { try await fixture.agent.handle(conflicting) }?.code == .invalidInput)
        #expect(try fixture.count("agent_conversations", "id = 'other'") == 0)
        #expect(one.requests.isEmpty)
    }

    @Test("a contact cannot choose a provider: the message is refused before it is stored")
    func contactCannotChoose() async throws {
        let server = try await ScriptedModelServer.start(replies: [.text("unused")])
        defer { Task { await server.stop() } }
        let routing = try ProviderRouting(members: [try Self.member("one", server.baseURL)], defaultProvider: "one")
        let fixture = try AgentFixture(tools: [], routing: routing)
        try await fixture.policy.addContact(channel: "webhook:sms", senderID: "+15550100")
        var message = Self.contactMessage("hi")
        message.provider = "one"
        #expect(await agentError { try await fixture.agent.handle(message) }?.code == .invalidInput)
        #expect(server.requests.isEmpty)
        #expect(try fixture.count("agent_conversations") == 0)
    }

    @Test("a route naming an unknown provider is refused naming the route and the providers there are")
    func unknownProviderInRoute() throws {
        let members = [
            ProviderRouting.Member(
                ScriptedModel(), settings: ProviderSettings(name: "scripted", baseURL: "", model: ""))
        ]
        do {
            _ = try ProviderRouting(
                members: members, defaultProvider: "scripted",
                routes: [ProviderRoute(principals: .contacts, providers: ["scripted", "claude"])])
            Issue.record("an unknown provider was accepted")
        } catch {
            #expect(error.message.contains("agent.routes.contacts") && error.message.contains("claude"))
            #expect(error.message.contains("among providers: scripted"))
        }
    }
}

/// The pieces of text a turn showed.
final class PieceRecorder: Sendable {
    private let state = Mutex<[String]>([])
    func add(_ piece: String) { state.withLock { $0.append(piece) } }
    var pieces: [String] { state.withLock { $0 } }
}
