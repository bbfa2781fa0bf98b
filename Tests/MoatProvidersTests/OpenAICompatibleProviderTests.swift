import Foundation
import MoatCore
import MoatNet
import MoatTestSupport
import Testing

@testable import MoatProviders

@Suite struct OpenAICompatibleProviderTests {
    static let question = ModelRequest(messages: [
        ChatMessage(role: .system, content: "You are terse."), ChatMessage(role: .user, content: "Say hello"),
    ])

    @Test("a server that answers a streamed request with one JSON document is read as such, its text shown once")
    func streamIgnored() async throws {
        var options = ScriptedModelServer.Options()
        options.ignoresStream = true
        let server = try await ScriptedModelServer.start(replies: [.text("whole answer")], options: options)
        defer { Task { await server.stop() } }
        let pieces = TextPieces()
        let reply = try await provider(server).complete(Self.question, onText: pieces.onText)
        #expect(reply.text == "whole answer")
        #expect(pieces.all == ["whole answer"])
        #expect(server.requests.last?.json["stream"] as? Bool == true)
    }

    @Test(
        "the request carries tools with tool_choice auto, the assistant's tool calls (content empty) and the tool result's id"
    )
    func requestWireFormat() async throws {
        let server = try await ScriptedModelServer.start(replies: [.text("ok"), .text("ok")])
        defer { Task { await server.stop() } }
        let request = ModelRequest(
            messages: [
                ChatMessage(role: .system, content: "sys"),
                ChatMessage(role: .user, content: "list my files"),
                ChatMessage(
                    role: .assistant, content: "",
                    toolCalls: [ToolCall(id: "call_9", name: "list_files", arguments: "{}")]),
                ChatMessage(role: .tool, content: "a.txt", toolCallID: "call_9"),
            ],
            tools: [
                ToolSchema(
                    name: "list_files", description: "Lists files.",
                    parameters: #"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#)
            ],
            maximumOutputTokens: 256)
        _ = try await provider(server).complete(request) { _ in }
        let body = try #require(server.requests.last).json
        let messages = try #require(body["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant", "tool"])
        // Empty, not null: llama.cpp's Python server refuses a null content with a 500.
        #expect(messages[2]["content"] as? String == "")
        let call = try #require((messages[2]["tool_calls"] as? [[String: Any]])?.first)
        #expect(call["id"] as? String == "call_9")
        #expect(call["type"] as? String == "function")
        #expect((call["function"] as? [String: Any])?["arguments"] as? String == "{}")
        #expect(messages[3]["tool_call_id"] as? String == "call_9")
        #expect(messages[3]["content"] as? String == "a.txt")
        let tool = try #require((body["tools"] as? [[String: Any]])?.first)
        #expect(tool["type"] as? String == "function")
        let function = try #require(tool["function"] as? [String: Any])
        #expect(function["name"] as? String == "list_files")
        #expect((function["parameters"] as? [String: Any])?["required"] as? [String] == ["path"])
        #expect(body["max_tokens"] as? Int == 256)
        // llama.cpp's Python server reads a missing tool_choice as "none": it is always sent with tools.
        #expect(body["tool_choice"] as? String == "auto")
        _ = try await provider(server).complete(ModelRequest(messages: [ChatMessage(role: .user, content: "hi")])) {
            _ in
        }
        #expect(try #require(server.requests.last).json["tool_choice"] == nil)
    }

    @Test("a tool whose parameters are not a JSON object is refused before anything is sent")
    func badToolParameters() async throws {
        let server = try await ScriptedModelServer.start(replies: [.text("unused")])
        defer { Task { await server.stop() } }
        let request = ModelRequest(
            messages: [ChatMessage(role: .user, content: "x")],
            tools: [ToolSchema(name: "broken", description: "", parameters: "[1, 2")])
        let error = await roundError(try provider(server), request)
        #expect(error?.code == .configuration)
        #expect(server.requests.isEmpty)
    }

    @Test("HTTP errors become clear errors naming the origin: 404 (model or base_url), 500, 429 with Retry-After")
    func statusErrors() async throws {
        let server = try await ScriptedModelServer.start(replies: [
            .fault(.status(404, body: #"{"error":{"message":"model \"x\" not found, try pulling it first"}}"#)),
            .fault(.status(500, body: #"{"error":"CUDA kernel panic in layer 7"}"#)),
            .fault(.status(429, body: "{}")),
            .fault(.status(400, body: "{}")),
        ])
        defer { Task { await server.stop() } }
        let provider = try provider(server, model: "qwen-missing")
        let notFound = try #require(await roundError(provider))
        #expect(notFound.code == .rejected)
        #expect(notFound.message.contains("http://127.0.0.1:\(server.port)"))
        #expect(notFound.message.contains("ollama pull qwen-missing"))
        #expect(notFound.message.contains("base_url"))
        #expect(!notFound.message.contains("try pulling it first"), "the server's body is never echoed")
        let failed = try #require(await roundError(provider))
        #expect(failed.code == .badResponse)
        #expect(failed.message.contains("HTTP 500"))
        #expect(!failed.message.contains("kernel panic"))
        let limited = try #require(await roundError(provider))
        #expect(limited.code == .rateLimited)
        let invalid = try #require(await roundError(provider))
        #expect(invalid.code == .rejected)
        #expect(invalid.message.contains("HTTP 400"))
    }

    @Test("nothing listening: the error says the model server at that origin is not running and how to start it")
    func connectionRefused() async throws {
        let port = try await closedPort()
        let settings = ProviderSettings(name: "local", baseURL: "http://127.0.0.1:\(port)/v1", model: "m")
        let error = try #require(await roundError(try OpenAICompatibleProvider(settings: settings, vault: nil)))
        #expect(error.code == .unreachable)
        #expect(error.message.contains("the model server at http://127.0.0.1:\(port) is not running"))
        // On Ollama's port the hint names the command that starts it.
        let ollama = try OpenAICompatibleProvider(settings: ProvidersSettings.defaultLocal, vault: nil)
        let hint = ollama.failure(NetError(.connectFailed, "nothing is listening at x (connection refused)"))
        #expect(
            hint.message
                == "the model server at http://127.0.0.1:11434 is not running: start it with `ollama serve` (provider local)"
        )
    }

    @Test("a stream event that is not JSON is a bad response that names the event, not its text")
    func malformedEvent() async throws {
        let server = try await ScriptedModelServer.start(replies: [
            Reply(text: "before and after", fault: .malformedEvent(after: 2))
        ])
        defer { Task { await server.stop() } }
        let error = try #require(await roundError(try provider(server)))
        #expect(error.code == .badResponse)
        #expect(error.message.contains("stream event 3, which is not valid JSON"))
        #expect(!error.message.contains("choices"))
    }

    @Test("a server that goes silent mid-stream, or never answers, times out")
    func silence() async throws {
        let server = try await ScriptedModelServer.start(replies: [
            Reply(text: "a long answer that stops", fault: .silenceAfterEvents(2)), Reply(fault: .silence),
        ])
        defer { Task { await server.stop() } }
        // Each limit short only where it is tested, so a busy machine cannot trip the other one first.
        let shortIdle = ProviderTimeouts(firstByte: .seconds(120), idle: .seconds(1))
        let idle = try #require(await roundError(try provider(server, timeouts: shortIdle)))
        #expect(idle.code == .timedOut)
        #expect(idle.message.contains("went silent"))
        #expect(idle.message.contains("providers.test.timeouts"))
        let shortFirstByte = ProviderTimeouts(firstByte: .milliseconds(500), idle: .seconds(120))
        let first = try #require(await roundError(try provider(server, timeouts: shortFirstByte)))
        #expect(first.code == .timedOut)
        #expect(first.message.contains("did not start answering"))
    }

    @Test("a 200 with an empty body (llama-cpp-python's streamed tool answer) says to turn streaming off")
    func emptyBody() async throws {
        let server = try await ScriptedModelServer.start(replies: [Reply(fault: .emptyBody)])
        defer { Task { await server.stop() } }
        let error = try #require(await roundError(try provider(server)))
        #expect(error.code == .badResponse)
        #expect(error.message.contains("stream: false"))
    }

    @Test("an answer over the size cap is refused")
    func sizeCap() async throws {
        let server = try await ScriptedModelServer.start(replies: [.text(String(repeating: "word ", count: 4000))])
        defer { Task { await server.stop() } }
        var settings = ProviderSettings(name: "test", baseURL: server.baseURL, model: "m", stream: false)
        settings.maximumResponseBytes = 4096
        let error = try #require(await roundError(try OpenAICompatibleProvider(settings: settings, vault: nil)))
        #expect(error.code == .badResponse)
        #expect(error.message.contains("larger than 4096 bytes"))
    }
}

typealias Reply = ScriptedModelServer.Reply

@Suite struct ProviderAPIKeyTests {
    static let canary = "sk-moat-canary-7f3e9a1c5b"

    @Test("the API key is read from the vault at egress and sent as a Bearer header, and the server accepts it")
    func keySent() async throws {
        var options = ScriptedModelServer.Options()
        options.requiredAPIKey = Self.canary
        let server = try await ScriptedModelServer.start(replies: [.text("authorised")], options: options)
        defer { Task { await server.stop() } }
        let keys = try KeyVault(["MODEL_KEY": Self.canary])
        let reply = try await provider(server, keySecret: "MODEL_KEY", vault: keys.vault)
            .complete(ModelRequest(messages: [ChatMessage(role: .user, content: "hi")])) { _ in }
        #expect(reply.text == "authorised")
        #expect(server.requests.last?.header("Authorization") == "Bearer \(Self.canary)")
    }

    @Test("a refused key names its vault secret, and no error of any kind holds the key")
    func keyNeverInErrors() async throws {
        var options = ScriptedModelServer.Options()
        options.requiredAPIKey = "sk-some-other-key"
        let server = try await ScriptedModelServer.start(options: options)
        defer { Task { await server.stop() } }
        let keys = try KeyVault(["MODEL_KEY": Self.canary])
        let keyed = try provider(server, keySecret: "MODEL_KEY", vault: keys.vault)
        var messages: [String] = []
        let refused = try #require(await roundError(keyed))
        #expect(refused.code == .rejected)
        #expect(refused.message.contains("refused the API key in vault secret MODEL_KEY"))
        messages.append(refused.message)
        // Every other failure, with the same key in the header.
        var open = ScriptedModelServer.Options()
        open.hostile = .off
        let faulty = try await ScriptedModelServer.start(
            replies: [
                .fault(.status(500, body: "{}")), .fault(.status(404, body: "{}")),
                Reply(text: "cut", fault: .cutAfterEvents(2)),
                Reply(text: "bad", fault: .malformedEvent(after: 1)),
                Reply(text: "slow", fault: .silenceAfterEvents(1)),
                Reply(fault: .emptyBody),
            ], options: open)
        defer { Task { await faulty.stop() } }
        let faultyKeyed = try provider(
            faulty, keySecret: "MODEL_KEY", vault: keys.vault,
            timeouts: ProviderTimeouts(firstByte: .milliseconds(300), idle: .milliseconds(300)))
        for _ in 0..<6 { messages.append(try #require(await roundError(faultyKeyed)).message) }
        let port = try await closedPort()
        let refusedConnection = try OpenAICompatibleProvider(
            settings: ProviderSettings(
                name: "gone", baseURL: "http://127.0.0.1:\(port)/v1", model: "m", apiKeySecret: "MODEL_KEY"),
            vault: keys.vault)
        messages.append(try #require(await roundError(refusedConnection)).message)
        #expect(messages.count == 8)
        for message in messages {
            #expect(!message.contains(Self.canary), "an error message held the API key: \(message)")
            #expect(!message.contains("canary"))
        }
        #expect(faulty.requests.allSatisfy { $0.header("Authorization") == "Bearer \(Self.canary)" })
    }

    @Test("a key secret missing from the vault, or no vault at all, is a configuration error before any request")
    func missingKey() async throws {
        let server = try await ScriptedModelServer.start(replies: [.text("unused")])
        defer { Task { await server.stop() } }
        let keys = try KeyVault([:])
        let missing = try #require(await roundError(try provider(server, keySecret: "MODEL_KEY", vault: keys.vault)))
        #expect(missing.code == .configuration)
        #expect(missing.message.contains("moat vault add MODEL_KEY"))
        let noVault = try #require(await roundError(try provider(server, keySecret: "MODEL_KEY", vault: nil)))
        #expect(noVault.code == .configuration)
        #expect(server.requests.isEmpty)
    }
}
