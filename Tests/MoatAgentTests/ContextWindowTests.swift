import Foundation
import MoatCore
import MoatProviders
import MoatTools
import Testing

@testable import MoatAgent

/// The context budget as a pure decision: what one round sends for every budget from too small to
/// roomy, and the invariants that hold at each.
@Suite struct ContextWindowTests {
    static let prompt = "You are Moat's agent. The gateway decides what runs."
    static let tools = [
        ToolSchema(name: "read_file", description: "Reads a file.", parameters: #"{"type":"object","properties":{}}"#)
    ]

    /// A conversation of several turns: plain replies, a tool round with two parallel calls, a tool round
    /// with one call, and the current user message last.
    static let history: [ChatMessage] = [
        ChatMessage(role: .user, content: "first question " + String(repeating: "a", count: 400)),
        ChatMessage(role: .assistant, content: "first answer " + String(repeating: "b", count: 400)),
        ChatMessage(role: .user, content: "read two files"),
        ChatMessage(
            role: .assistant, content: "",
            toolCalls: [
                ToolCall(id: "call_1", name: "read_file", arguments: #"{"path":"a.txt"}"#),
                ToolCall(id: "call_2", name: "read_file", arguments: #"{"path":"b.txt"}"#),
            ]),
        ChatMessage(role: .tool, content: String(repeating: "c", count: 600), toolCallID: "call_1"),
        ChatMessage(role: .tool, content: String(repeating: "d", count: 600), toolCallID: "call_2"),
        ChatMessage(role: .assistant, content: "both read"),
        ChatMessage(role: .user, content: "and a third"),
        ChatMessage(
            role: .assistant, content: "reading",
            toolCalls: [ToolCall(id: "call_3", name: "read_file", arguments: #"{"path":"c.txt"}"#)]),
        ChatMessage(role: .tool, content: String(repeating: "e", count: 300), toolCallID: "call_3"),
        ChatMessage(role: .assistant, content: "done"),
        ChatMessage(role: .user, content: "the current message"),
    ]

    static func fit(_ history: [ChatMessage], budget: Int) -> Result<ContextWindow, ContextWindow.Overflow> {
        ContextWindow.fit(systemPrompt: prompt, history: history, tools: tools, budget: budget)
    }

    /// The invariants every window holds, whatever the budget.
    static func checkInvariants(_ window: ContextWindow, history: [ChatMessage], budget: Int) {
        let messages = window.messages
        #expect(messages.first?.role == .system)
        #expect(messages.first?.content.hasPrefix(prompt) == true, "the system prompt is first and whole")
        #expect(messages.dropFirst().allSatisfy { $0.role != .system })
        #expect(window.estimatedTokens <= budget)
        #expect(
            (window.leftOut > 0) == (messages.first?.content.contains("were left out") == true),
            "the note appears exactly when messages were left out")
        let sent = Array(messages.dropFirst())
        #expect(sent.last == history.last(where: { $0.role == .user }) || sent.last?.role == .tool)
        #expect(sent.contains(history.last(where: { $0.role == .user })!), "the current user message is kept")
        #expect(sent.first?.role == .user, "the window starts at a user message")
        // Sent messages keep their order: they are a subsequence of the history.
        var cursor = history.startIndex
        for message in sent {
            guard let found = history[cursor...].firstIndex(of: message) else {
                Issue.record("a message was sent out of order or changed")
                return
            }
            cursor = found + 1
        }
        #expect(window.leftOut + sent.count + window.unpaired == history.count)
        // Every call is answered right after it, and every answer follows its call.
        var open = Set<String>()
        for message in sent {
            if message.role == .tool {
                #expect(open.remove(message.toolCallID ?? "") != nil, "a tool result without its call was sent")
            } else {
                #expect(open.isEmpty, "a tool call without its result was sent")
                open = Set(message.toolCalls.map(\.id))
            }
        }
        #expect(open.isEmpty)
    }

    @Test("for every budget, the system prompt is first and whole, the current message kept, and calls stay paired")
    func invariantsAtEveryBudget() throws {
        let whole = try Self.fit(Self.history, budget: 1_000_000).get()
        var fitted = 0
        var lastLeftOut = Int.max
        for budget in stride(from: 20, through: whole.estimatedTokens + 10, by: 3) {
            guard case .success(let window) = Self.fit(Self.history, budget: budget) else { continue }
            fitted += 1
            Self.checkInvariants(window, history: Self.history, budget: budget)
            #expect(window.leftOut <= lastLeftOut, "a larger budget never leaves more out")
            lastLeftOut = window.leftOut
        }
        #expect(fitted > 100)
        #expect(lastLeftOut == 0)
    }

    @Test("when everything fits, the round is the system prompt and the conversation unchanged, with no note")
    func everythingFits() throws {
        let window = try Self.fit(Self.history, budget: 100_000).get()
        #expect(window.messages == [ChatMessage(role: .system, content: Self.prompt)] + Self.history)
        #expect(window.leftOut == 0 && window.unpaired == 0)
    }

    @Test("the oldest turns go first, and the model is told how many messages it does not see")
    func oldestFirst() throws {
        // Room for the last two turns, not for the first question and answer.
        let whole = try Self.fit(Self.history, budget: 1_000_000).get()
        let window = try Self.fit(Self.history, budget: whole.estimatedTokens - 150).get()
        #expect(window.leftOut == 2)
        #expect(Array(window.messages.dropFirst()) == Array(Self.history.dropFirst(2)))
        #expect(window.messages[0].content == Self.prompt + "\n\n" + ContextWindow.note(leftOut: 2))
        #expect(window.messages[0].content.contains("the 2 oldest messages of this conversation were left out"))
    }

    @Test("a tool round that does not fit is left out whole: its call never goes without its results")
    func toolRoundWhole() throws {
        // Just short of what the two-call round needs: it goes, with the user message before it (the
        // window starts at a user message), and the answer after it (it is not a user message).
        let sizes = ContextWindow.units(Self.history).units
        #expect(sizes.map(\.range.count) == [1, 1, 1, 3, 1, 1, 2, 1, 1])
        let whole = try Self.fit(Self.history, budget: 1_000_000).get()
        let noteTokens = TokenEstimate.text("\n\n" + ContextWindow.note(leftOut: Self.history.count))
        let withoutFirstTurn = whole.estimatedTokens - sizes[0].tokens - sizes[1].tokens + noteTokens
        let window = try Self.fit(Self.history, budget: withoutFirstTurn - sizes[3].tokens + 1).get()
        let sent = Array(window.messages.dropFirst())
        #expect(!sent.contains { $0.toolCallID == "call_1" || $0.toolCallID == "call_2" })
        #expect(!sent.contains { $0.toolCalls.contains { $0.id == "call_1" } })
        #expect(sent.first == ChatMessage(role: .user, content: "and a third"))
        #expect(window.leftOut == 7)
    }

    @Test("a tool result whose call is not before it, and a call whose results are missing, are never sent")
    func unpairedNeverSent() throws {
        let history = [
            ChatMessage(role: .tool, content: "an orphan result", toolCallID: "call_gone"),
            ChatMessage(role: .user, content: "hello"),
            ChatMessage(
                role: .assistant, content: "",
                toolCalls: [
                    ToolCall(id: "call_a", name: "read_file", arguments: "{}"),
                    ToolCall(id: "call_b", name: "read_file", arguments: "{}"),
                ]),
            ChatMessage(role: .tool, content: "only one answer", toolCallID: "call_a"),
            ChatMessage(role: .assistant, content: "something went wrong"),
            ChatMessage(role: .tool, content: "answers nothing", toolCallID: "call_a"),
            ChatMessage(role: .user, content: "again"),
        ]
        let window = try Self.fit(history, budget: 100_000).get()
        #expect(
            Array(window.messages.dropFirst()) == [
                history[1], ChatMessage(role: .assistant, content: "something went wrong"), history[6],
            ])
        #expect(window.unpaired == 4)
        #expect(window.leftOut == 0)
        Self.checkInvariants(window, history: history, budget: 100_000)
    }

    @Test("the newest tool results are kept even when older parts of the same turn must go")
    func latestRoundPinned() throws {
        var history = Array(Self.history.dropLast(2))
        // The turn's own earlier round (call_3) and the first turns go; the round being answered stays.
        history.append(
            ChatMessage(
                role: .assistant, content: "", toolCalls: [ToolCall(id: "call_9", name: "read_file", arguments: "{}")]))
        history.append(ChatMessage(role: .tool, content: String(repeating: "f", count: 2000), toolCallID: "call_9"))
        let units = ContextWindow.units(history).units
        let pinned = units[5].tokens + units.last!.tokens
        let base =
            TokenEstimate.message(ChatMessage(role: .system, content: Self.prompt))
            + TokenEstimate.tools(Self.tools) + TokenEstimate.text("\n\n" + ContextWindow.note(leftOut: history.count))
        let window = try Self.fit(history, budget: base + pinned).get()
        #expect(
            Array(window.messages.dropFirst()) == [ChatMessage(role: .user, content: "and a third")]
                + history.suffix(2))
        Self.checkInvariants(window, history: history, budget: base + pinned)
    }

    @Test("what must be sent but cannot fit is refused with the numbers and the fix, naming what weighs most")
    func overflow() {
        let big = [ChatMessage(role: .user, content: String(repeating: "x", count: 40_000))]
        guard case .failure(let overflow) = Self.fit(big, budget: 2000) else {
            Issue.record("a 10000-token message fitted a 2000-token budget")
            return
        }
        #expect(overflow.budget == 2000 && overflow.needed > 10_000)
        #expect(overflow.largest == "the current message")
        #expect(overflow.explanation.contains("raise agent.context_tokens"))
        #expect(!overflow.explanation.contains("xxxx"), "the message's text is not repeated")
        let toolHeavy = [
            ChatMessage(role: .user, content: "read it"),
            ChatMessage(
                role: .assistant, content: "", toolCalls: [ToolCall(id: "c", name: "read_file", arguments: "{}")]),
            ChatMessage(role: .tool, content: String(repeating: "y", count: 40_000), toolCallID: "c"),
        ]
        guard case .failure(let heavy) = Self.fit(toolHeavy, budget: 2000) else {
            Issue.record("a 10000-token tool result fitted a 2000-token budget")
            return
        }
        #expect(heavy.largest == "the latest tool results")
        #expect(heavy.explanation.contains("lower agent.tool_output_bytes"))
    }

    @Test("the estimate is UTF-8 bytes over four, rounded up, plus framing per message and per tool")
    func estimate() {
        #expect(TokenEstimate.text("") == 0)
        #expect(TokenEstimate.text("abcd") == 1)
        #expect(TokenEstimate.text("abcde") == 2)
        #expect(TokenEstimate.text("ünï✓") == 2, "8 bytes")
        #expect(TokenEstimate.text("ünï✓!") == 3, "9 bytes")
        #expect(TokenEstimate.message(ChatMessage(role: .user, content: "abcd")) == 1 + TokenEstimate.framing)
        let call = ChatMessage(
            role: .assistant, content: "", toolCalls: [ToolCall(id: "ab", name: "cd", arguments: "{}")])
        #expect(TokenEstimate.message(call) == 2 + TokenEstimate.framing)
        #expect(
            TokenEstimate.tools(Self.tools) == TokenEstimate.text("read_fileReads a file." + Self.tools[0].parameters)
                + 4)
    }
}

/// The budget through the pipeline: a real `moat.db`, the scripted model recording every request.
@Suite struct ContextBudgetPipelineTests {
    @Test("a conversation longer than the budget: every round sends the system prompt, the note and the new message")
    func longConversation() async throws {
        var settings = AgentSettings()
        settings.contextTokens = 1024
        let fixture = try AgentFixture(tools: [], settings: settings)
        for turn in 1...6 {
            let text = "message \(turn) " + String(repeating: "word ", count: 200)
            _ = try await fixture.agent.handle(fixture.owner(text))
        }
        let last = try #require(fixture.model.requests.last)
        #expect(last.messages.first?.role == .system)
        #expect(last.messages.first?.content.hasPrefix(AgentSettings.defaultSystemPrompt) == true)
        #expect(last.messages.first?.content.contains("oldest messages of this conversation were left out") == true)
        #expect(last.messages.last?.content.hasPrefix("message 6 ") == true)
        #expect(last.messages.count < 12)
        #expect(!last.messages.contains { $0.content.hasPrefix("message 1 ") })
        #expect(fixture.model.requests.first?.messages.first?.content == AgentSettings.defaultSystemPrompt)
        // Nothing is lost from moat.db: the budget only chooses what is sent.
        #expect(try fixture.count("agent_messages") == 12)
        #expect(try fixture.auditActions().filter { $0 == "agent.model" }.count == 6)
    }

    @Test("a tool result over agent.tool_output_bytes reaches the model cut, with Moat's marker, inside a tight budget")
    func cutMarkerSurvives() async throws {
        var settings = AgentSettings()
        settings.toolOutputBytes = 256
        settings.contextTokens = 1024
        let tool = TestTool(
            "read", domain: .files, output: { _ in String(repeating: "z", count: 5000) + "THE-END" })
        let fixture = try AgentFixture(tools: [tool], trust: [.files: .fullAutonomy], settings: settings)
        _ = try await fixture.agent.handle(fixture.owner("earlier " + String(repeating: "word ", count: 400)))
        _ = try await fixture.agent.handle(fixture.owner("CALL read {}"))
        let answer = try #require(fixture.model.requests.last?.messages.last)
        #expect(answer.role == .tool)
        #expect(answer.content == String(repeating: "z", count: 256) + "\n[cut by Moat at 256 bytes]")
        #expect(fixture.model.requests.last?.messages.first?.content.contains("were left out") == true)
    }

    @Test("a provider's context_tokens overrides agent.context_tokens")
    func providerBudget() async throws {
        var settings = AgentSettings()
        settings.contextTokens = 1_000_000
        let fixture = try AgentFixture(model: ScriptedModel(contextTokens: 1024), tools: [], settings: settings)
        for turn in 1...4 {
            _ = try await fixture.agent.handle(fixture.owner("turn \(turn) " + String(repeating: "word ", count: 300)))
        }
        let last = try #require(fixture.model.requests.last)
        #expect(last.messages.first?.content.contains("were left out") == true)
        #expect(ContextWindow.units(Array(last.messages.dropFirst())).units.reduce(0) { $0 + $1.tokens } < 1024)
    }

    @Test("a message too large for the budget is refused before the model with the fix, and the message is kept")
    func overflowRefused() async throws {
        var settings = AgentSettings()
        settings.contextTokens = 1024
        let fixture = try AgentFixture(tools: [], settings: settings)
        let error = await agentError {
            try await fixture.agent.handle(fixture.owner(String(repeating: "q", count: 8000)))
        }
        #expect(error?.code == .invalidInput)
        #expect(error?.message.contains("more than the context budget of 1024 tokens") == true)
        #expect(error?.message.contains("qqqq") == false)
        #expect(fixture.model.requests.isEmpty)
        #expect(try fixture.count("agent_messages") == 1)
    }
}
