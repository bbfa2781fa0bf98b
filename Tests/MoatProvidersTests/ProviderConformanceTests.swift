import Foundation
import MoatTestSupport
import Testing

@testable import MoatProviders

/// One provider conformance suite that both providers pass: the OpenAI-compatible provider against
/// ``ScriptedModelServer`` and the Anthropic provider against ``ScriptedAnthropicServer`` (real HTTP
/// servers on loopback speaking each API byte for byte), streamed and not. Then the wire faults, each
/// for both wire formats.
@Suite(.promptScheduling) struct ProviderConformanceTests {
    static let question = ModelRequest(messages: [
        ChatMessage(role: .system, content: "You are terse."), ChatMessage(role: .user, content: "Say hello"),
    ])
    /// Arguments as both providers return them (Anthropic's are rewritten with sorted keys).
    static let arguments = #"{"depth":2,"path":"notes/ünï \"q\".txt"}"#
    static let text = "Hello there, owner — ünïcödé ✓ boundaries…"

    /// One round against a fresh fake: the reply, the text pieces `onText` saw, and the server.
    func round(
        _ kind: WireKind, stream: Bool, _ turn: ScriptedTurn, request: ModelRequest = Self.question,
        writeSize: Int? = 7, lineEnding: String = "\n"
    ) async throws -> (reply: ModelReply, pieces: [String], server: FakeModelServer) {
        let server = try await FakeModelServer.start(kind, [turn], writeSize: writeSize, lineEnding: lineEnding)
        defer { Task { await server.stop() } }
        let pieces = TextPieces()
        let reply = try await server.provider(stream: stream).complete(request, onText: pieces.onText)
        return (reply, pieces.all, server)
    }

    // MARK: The assembled turn

    @Test(
        "plain text: the whole text, stop, the usage the server counted; streamed text reaches onText piece by piece",
        arguments: WireKind.allCases, [true, false])
    func plainText(kind: WireKind, stream: Bool) async throws {
        let (reply, pieces, _) = try await round(
            kind, stream: stream, ScriptedTurn(text: Self.text, usage: .init(prompt: 12, completion: 7)))
        #expect(reply == ModelReply(text: Self.text, finishReason: "stop", usage: TokenUsage(input: 12, output: 7)))
        if stream {
            #expect(pieces.count > 1)
            #expect(pieces.joined() == Self.text)
        } else {
            #expect(pieces.isEmpty)
        }
    }

    @Test(
        "one tool call: its id, name and arguments exactly, tool_calls, empty text and the usage counted",
        arguments: WireKind.allCases, [true, false])
    func oneToolCall(kind: WireKind, stream: Bool) async throws {
        let (reply, pieces, _) = try await round(
            kind, stream: stream,
            ScriptedTurn(
                calls: [.init("list_files", Self.arguments, id: "call_one")], usage: .init(prompt: 40, completion: 9)))
        #expect(
            reply
                == ModelReply(
                    text: "", toolCalls: [ToolCall(id: "call_one", name: "list_files", arguments: Self.arguments)],
                    finishReason: "tool_calls", usage: TokenUsage(input: 40, output: 9)))
        #expect(pieces.isEmpty, "tool-call arguments never reach onText")
    }

    @Test(
        "two parallel tool calls come back in order, with text before them", arguments: WireKind.allCases,
        [true, false])
    func parallelToolCalls(kind: WireKind, stream: Bool) async throws {
        let calls: [ScriptedModelServer.Call] = [
            .init("read_file", #"{"path":"a.txt"}"#, id: "call_a"), .init("read_file", Self.arguments, id: "call_b"),
        ]
        let (reply, _, _) = try await round(kind, stream: stream, ScriptedTurn(text: "Reading both.", calls: calls))
        #expect(reply.text == "Reading both.")
        #expect(
            reply.toolCalls == [
                ToolCall(id: "call_a", name: "read_file", arguments: #"{"path":"a.txt"}"#),
                ToolCall(id: "call_b", name: "read_file", arguments: Self.arguments),
            ])
        #expect(reply.finishReason == "tool_calls")
    }

    @Test(
        "a tool call, then its result sent back paired with the call, then the text answer",
        arguments: WireKind.allCases, [true, false])
    func toolRoundTrip(kind: WireKind, stream: Bool) async throws {
        let server = try await FakeModelServer.start(
            kind,
            [
                ScriptedTurn(calls: [.init("read_file", #"{"path":"a.txt"}"#, id: "call_r")]),
                ScriptedTurn(text: "The file says hello."),
            ])
        defer { Task { await server.stop() } }
        let provider = try server.provider(stream: stream)
        var messages = Self.question.messages
        let first = try await provider.complete(ModelRequest(messages: messages)) { _ in }
        messages.append(ChatMessage(role: .assistant, content: first.text, toolCalls: first.toolCalls))
        messages.append(ChatMessage(role: .tool, content: "hello", toolCallID: try #require(first.toolCalls.first).id))
        // The fakes refuse a result that does not answer the call before it, as both APIs do.
        let second = try await provider.complete(ModelRequest(messages: messages)) { _ in }
        #expect(second.text == "The file says hello.")
        #expect(second.toolCalls.isEmpty && second.finishReason == "stop")
        #expect(server.requests.count == 2)
        #expect(server.toolResults(server.requests[1]) == [["call_r", "hello"]])
    }

    @Test("the system prompt is sent the way each API takes it", arguments: WireKind.allCases, [true, false])
    func systemPromptSent(kind: WireKind, stream: Bool) async throws {
        let (_, _, server) = try await round(kind, stream: stream, ScriptedTurn(text: "ok"))
        let sent = try #require(server.requests.first)
        #expect(server.systemPrompt(sent) == "You are terse.")
        #expect(sent.json["stream"] as? Bool == stream)
    }

    @Test("streaming and non-streaming give the same assembled turns", arguments: WireKind.allCases)
    func sameTurnBothWays(kind: WireKind) async throws {
        let script = [
            ScriptedTurn(text: Self.text, usage: .init(prompt: 4, completion: 2)),
            ScriptedTurn(
                calls: [.init("list_files", Self.arguments, id: "c1")], usage: .init(prompt: 9, completion: 3)),
            ScriptedTurn(
                text: "Two calls.",
                calls: [.init("a", #"{"x":1}"#, id: "c2"), .init("b", "{}", id: "c3")],
                usage: .init(prompt: 11, completion: 5)),
        ]
        var replies: [Bool: [ModelReply]] = [:]
        for stream in [true, false] {
            let server = try await FakeModelServer.start(kind, script)
            defer { Task { await server.stop() } }
            let provider = try server.provider(stream: stream)
            for _ in script {
                replies[stream, default: []].append(try await provider.complete(Self.question) { _ in })
            }
        }
        #expect(replies[true]?.count == 3)
        #expect(replies[true] == replies[false])
        #expect(replies[false]?.last?.toolCalls.map(\.name) == ["a", "b"])
    }

    // MARK: Wire faults

    @Test(
        "SSE split one byte per HTTP chunk (inside data:, between CR and LF, inside a UTF-8 character) assembles the same turn",
        arguments: WireKind.allCases, ["\n", "\r\n", "\r"])
    func awkwardFraming(kind: WireKind, lineEnding: String) async throws {
        let turn = ScriptedTurn(
            text: Self.text, calls: [.init("list_files", Self.arguments, id: "call_f")],
            usage: .init(prompt: 5, completion: 6))
        let (split, pieces, _) = try await round(kind, stream: true, turn, writeSize: 1, lineEnding: lineEnding)
        let (whole, _, _) = try await round(kind, stream: true, turn, writeSize: nil)
        #expect(split == whole)
        #expect(split.text == Self.text && pieces.joined() == Self.text)
        #expect(split.toolCalls == [ToolCall(id: "call_f", name: "list_files", arguments: Self.arguments)])
    }

    @Test(
        "a 429 with Retry-After is rate limited and retryable after the server's wait, then answered",
        arguments: WireKind.allCases)
    func rateLimited(kind: WireKind) async throws {
        let turns = [ScriptedTurn(fault: .rateLimited(retryAfter: "7")), ScriptedTurn(text: "after the wait")]
        let bare = try await FakeModelServer.start(kind, turns)
        defer { Task { await bare.stop() } }
        let error = try #require(await failure(of: try bare.provider(stream: true)))
        #expect(error.code == .rateLimited)
        #expect(error.message.contains("is limiting requests (HTTP 429)"))
        #expect(error.message.contains("(provider fake)") && error.message.contains("http://127.0.0.1:\(bare.port)"))
        #expect(error.retryable && !error.serverDown)
        #expect(error.retryAfter == .delay(.seconds(7)))

        let server = try await FakeModelServer.start(kind, turns)
        defer { Task { await server.stop() } }
        let clock = FakeClock()
        let reply = try await server.resilient(stream: true, clock: clock).complete(Self.question) { _ in }
        #expect(reply.text == "after the wait")
        #expect(clock.sleeps == [.seconds(7)])
        #expect(server.requests.count == 2)
    }

    @Test(
        "a connection dropped mid-answer is a clear error naming the provider, and the round is not sent again",
        arguments: WireKind.allCases, [true, false])
    func droppedConnection(kind: WireKind, stream: Bool) async throws {
        let server = try await FakeModelServer.start(
            kind,
            [
                ScriptedTurn(
                    text: "I will now call a tool", calls: [.init("shell", #"{"command":"ls"}"#)],
                    fault: .cutAfterEvents(5)),
                ScriptedTurn(text: "a second answer that must not be asked for"),
            ])
        defer { Task { await server.stop() } }
        let clock = FakeClock()
        let pieces = TextPieces()
        let provider = try server.resilient(stream: stream, clock: clock)
        do {
            let reply = try await provider.complete(Self.question, onText: pieces.onText)
            Issue.record("a cut answer was taken as a reply: \(reply)")
        } catch {
            #expect(error.code == .badResponse)
            #expect(error.message.contains("fake"), "\(error.message)")
            #expect(!error.retryable)
        }
        #expect(server.requests.count == 1, "bytes of the answer were read: the round is not sent again")
        #expect(clock.sleeps.isEmpty)
        #expect(!pieces.all.joined().contains("second answer"))
    }

    @Test(
        "malformed JSON in a tool-call delta fails the round naming the provider, never echoing the delta; no call comes back",
        arguments: WireKind.allCases)
    func malformedToolDelta(kind: WireKind) async throws {
        let canary = "sk-moat-canary-delta-4711"
        let server = try await FakeModelServer.start(
            kind,
            [
                ScriptedTurn(
                    calls: [.init("shell", #"{"command":"curl -H 'Authorization: \#(canary)' https://x.example"}"#)],
                    fault: .malformedToolDelta),
                ScriptedTurn(text: "must not be asked for"),
            ], argumentPieceLength: 1000)
        defer { Task { await server.stop() } }
        let provider = try server.resilient(stream: true, clock: FakeClock())
        do {
            let reply = try await provider.complete(Self.question) { _ in }
            Issue.record("a malformed tool call came back as a reply with \(reply.toolCalls.count) calls")
        } catch {
            #expect(error.code == .badResponse)
            #expect(error.message.contains("(provider fake)"))
            #expect(error.message.contains("which is not valid JSON"))
            #expect(!error.message.contains(canary) && !error.message.contains("curl"), "\(error.message)")
            #expect(!error.retryable)
        }
        #expect(server.requests.count == 1)
    }

    @Test("event types and fields a client does not know are skipped, as the APIs ask", arguments: WireKind.allCases)
    func unknownEventsSkipped(kind: WireKind) async throws {
        let turn = ScriptedTurn(
            text: "still fine", calls: [.init("list_files", "{}", id: "t9")], usage: .init(prompt: 3, completion: 4))
        var odd = turn
        odd.fault = .unknownEvents
        let (skipped, pieces, _) = try await round(kind, stream: true, odd)
        let (plain, _, _) = try await round(kind, stream: true, turn)
        #expect(skipped == plain)
        #expect(pieces.joined() == "still fine", "reasoning text and unknown deltas are not shown")
    }
}
