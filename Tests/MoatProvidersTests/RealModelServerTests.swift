import Foundation
import Testing

@testable import MoatProviders

/// The provider against a real OpenAI-compatible server, opt-in: `tests/model-server.sh serve` (or any
/// server), then `MOAT_REAL_MODEL_URL=http://127.0.0.1:8000/v1 MOAT_REAL_MODEL=smollm2 swift test
/// --skip-build --filter RealModelServerTests`. Not run by CI yet; without the variable it is disabled.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["MOAT_REAL_MODEL_URL"] != nil, "set MOAT_REAL_MODEL_URL"))
struct RealModelServerTests {
    static let environment = ProcessInfo.processInfo.environment

    func provider(stream: Bool) throws -> OpenAICompatibleProvider {
        let settings = ProviderSettings(
            name: "real", baseURL: Self.environment["MOAT_REAL_MODEL_URL"] ?? "",
            model: Self.environment["MOAT_REAL_MODEL"] ?? "smollm2",
            stream: stream,
            timeouts: ProviderTimeouts(firstByte: .seconds(600), idle: .seconds(120), total: .seconds(900)))
        return try OpenAICompatibleProvider(settings: settings, vault: nil)
    }

    static let tools = [
        ToolSchema(
            name: "list_files", description: "Lists the files under a directory of the workspace.",
            parameters: #"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#)
    ]

    @Test("a real model answers text, streamed and not, and the streamed pieces add up to the reply")
    func text() async throws {
        let request = ModelRequest(
            messages: [ChatMessage(role: .user, content: "Say hello in five words.")], maximumOutputTokens: 32)
        let whole = try await provider(stream: false).complete(request) { _ in }
        #expect(!whole.text.isEmpty)
        let pieces = TextPieces()
        let streamed = try await provider(stream: true).complete(request, onText: pieces.onText)
        #expect(pieces.all.joined() == streamed.text)
    }

    @Test("a real model offered a tool answers a well-formed round (a tool call or text), streamed and not")
    func toolRound() async throws {
        let request = ModelRequest(
            messages: [ChatMessage(role: .user, content: "List the files in my workspace.")], tools: Self.tools,
            maximumOutputTokens: 64)
        for stream in [false, true] {
            let reply = try await provider(stream: stream).complete(request) { _ in }
            #expect(!reply.text.isEmpty || !reply.toolCalls.isEmpty)
            for call in reply.toolCalls { #expect(call.name == "list_files") }
        }
    }
}
