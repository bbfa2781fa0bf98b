import Foundation
import MoatTestSupport
import Testing

@testable import MoatProviders

/// What only the Anthropic Messages provider has, against the wire-faithful fake: the request mapping,
/// the error event, the API's statuses and error types. What both providers share is in
/// ProviderConformanceTests.
@Suite struct AnthropicProviderTests {
    @Test(
        "the request is the Messages API's: system on top, alternating turns, tool_use and tool_result, input_schema, headers"
    )
    func requestMapping() async throws {
        let keys = try KeyVault(["ANTHROPIC_API_KEY": "sk-ant-moat-canary-0001"])
        var options = ScriptedAnthropicServer.Options()
        options.requiredAPIKey = "sk-ant-moat-canary-0001"
        let server = try await ScriptedAnthropicServer.start(replies: [.text("ok")], options: options)
        defer { Task { await server.stop() } }
        let provider = try anthropic(server, keySecret: "ANTHROPIC_API_KEY", vault: keys.vault)
        let request = ModelRequest(
            messages: [
                ChatMessage(role: .system, content: "You are Moat's agent."),
                ChatMessage(role: .user, content: "list my files"),
                ChatMessage(
                    role: .assistant, content: "",
                    toolCalls: [
                        ToolCall(id: "toolu_a", name: "list_files", arguments: #"{"path":"."}"#),
                        ToolCall(id: "toolu_b", name: "read_file", arguments: "not json"),
                    ]),
                ChatMessage(role: .tool, content: "a.txt", toolCallID: "toolu_a"),
                ChatMessage(role: .tool, content: "error: bad arguments", toolCallID: "toolu_b"),
                ChatMessage(role: .user, content: "and?"),
            ],
            tools: [
                ToolSchema(
                    name: "list_files", description: "Lists files.",
                    parameters: #"{"type":"object","properties":{"path":{"type":"string"}}}"#)
            ], maximumOutputTokens: 321)
        let reply = try await provider.complete(request) { _ in }
        #expect(reply.text == "ok")
        let sent = try #require(server.requests.first)
        #expect(sent.method == "POST" && sent.path == "/v1/messages")
        #expect(sent.header("anthropic-version") == "2023-06-01")
        #expect(sent.header("x-api-key") == "sk-ant-moat-canary-0001")
        #expect(sent.header("authorization") == nil)
        let body = sent.json
        #expect(body["system"] as? String == "You are Moat's agent.")
        #expect(body["max_tokens"] as? Int == 321)
        #expect(body["stream"] as? Bool == true)
        let messages = try #require(body["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["user", "assistant", "user"])
        let uses = try #require(messages[1]["content"] as? [[String: Any]])
        #expect(uses.map { $0["type"] as? String } == ["tool_use", "tool_use"])
        #expect((uses[0]["input"] as? [String: String]) == ["path": "."])
        #expect((uses[1]["input"] as? [String: Any])?.isEmpty == true, "input that is not an object is sent as {}")
        let results = try #require(messages[2]["content"] as? [[String: Any]])
        #expect(results.map { $0["type"] as? String } == ["tool_result", "tool_result", "text"])
        #expect(results.map { $0["tool_use_id"] as? String } == ["toolu_a", "toolu_b", nil])
        let tools = try #require(body["tools"] as? [[String: Any]])
        #expect(tools.first?["name"] as? String == "list_files")
        #expect((tools.first?["input_schema"] as? [String: Any])?["type"] as? String == "object")
    }

    @Test("model output that is not JSON in a tool call's input reaches the tool as text, which refuses it")
    func malformedToolInput() async throws {
        let server = try await ScriptedAnthropicServer.start(replies: [
            .init(toolCalls: [.init("shell", #"{"command": "ls"#, id: "t1")])
        ])
        defer { Task { await server.stop() } }
        let reply = try await anthropic(server).complete(
            ModelRequest(messages: [ChatMessage(role: .user, content: "x")])
        ) { _ in }
        #expect(reply.toolCalls.first?.arguments == #"{"command": "ls"#, "the tool that receives it checks it")
    }

    @Test("an error event in the middle of the stream fails the round saying so, without the server's text")
    func errorEvent() async throws {
        let server = try await ScriptedAnthropicServer.start(replies: [
            .init(text: "overloaded soon", fault: .errorEvent(type: "overloaded_error", after: 4))
        ])
        defer { Task { await server.stop() } }
        let overloaded = try #require(await failure(of: try anthropic(server)))
        #expect(overloaded.message.contains("reported overloaded_error in the middle of the answer"))
        #expect(!overloaded.message.contains("scripted"), "the server's own text is not shown")
        #expect(!overloaded.retryable && overloaded.serverDown)
    }

    @Test(
        "error statuses become clear errors naming the origin and the API's error type, never the key or the server's text"
    )
    func statusErrors() async throws {
        let keys = try KeyVault(["ANTHROPIC_API_KEY": "sk-ant-moat-canary-0002"])
        var options = ScriptedAnthropicServer.Options()
        options.requiredAPIKey = "sk-ant-another-key"
        let guarded = try await ScriptedAnthropicServer.start(options: options)
        defer { Task { await guarded.stop() } }
        let refused = try #require(
            await failure(of: try anthropic(guarded, keySecret: "ANTHROPIC_API_KEY", vault: keys.vault)))
        #expect(refused.code == .rejected)
        #expect(refused.message.contains("refused the API key in vault secret ANTHROPIC_API_KEY (HTTP 401)"))
        let noKey = try #require(await failure(of: try anthropic(guarded)))
        #expect(noKey.message.contains("moat vault add ANTHROPIC_API_KEY"))

        let server = try await ScriptedAnthropicServer.start(replies: [
            .fault(.overloaded), .fault(.rateLimited(retryAfter: "7")), .fault(.status(404, type: "not_found_error")),
            .fault(.status(400, type: "invalid_request_error")), .fault(.status(500, type: "api_error")),
        ])
        defer { Task { await server.stop() } }
        let provider = try anthropic(server, keySecret: "ANTHROPIC_API_KEY", vault: keys.vault, model: "claude-x")
        let overloaded = try #require(await failure(of: provider))
        #expect(
            overloaded.message
                == "the model server at \(server.baseURL) (provider claude) is overloaded (HTTP 529, overloaded_error): try again later"
        )
        #expect(overloaded.retryable && overloaded.serverDown)
        let limited = try #require(await failure(of: provider))
        #expect(limited.code == .rateLimited)
        #expect(limited.retryable && !limited.serverDown)
        #expect(limited.retryAfter == .delay(.seconds(7)))
        let notFound = try #require(await failure(of: provider))
        #expect(notFound.code == .rejected && notFound.message.contains("not_found_error"))
        #expect(!notFound.retryable)
        let invalid = try #require(await failure(of: provider))
        #expect(invalid.code == .rejected && invalid.message.contains("HTTP 400, invalid_request_error"))
        let failed = try #require(await failure(of: provider))
        #expect(failed.message.contains("HTTP 500, api_error") && failed.retryable)
        for error in [refused, noKey, overloaded, limited, notFound, invalid, failed] {
            #expect(!error.message.contains("sk-ant"), "no key in: \(error.message)")
            #expect(!error.message.contains("scripted"), "no server text in: \(error.message)")
        }
        #expect(!guarded.requests.contains { $0.body.contains("sk-ant") }, "the key travels only in its header")
    }

    @Test("a base URL with /v1/messages, or a kind's wrong suffix, is refused before any request")
    func badBaseURL() {
        let settings = ProviderSettings(
            name: "claude", kind: .anthropic, baseURL: "https://api.anthropic.com/v1/messages", model: "m")
        #expect(throws: ProviderError.self) { try AnthropicProvider(settings: settings, vault: nil) }
    }
}
