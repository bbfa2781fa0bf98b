import Foundation
import MoatTestSupport
import Testing

@testable import MoatProviders

/// The Anthropic fake is only useful if it is faithful: the official `anthropic` Python client must parse
/// what it sends, streamed with a tool call and unknown events, and not, and read its 429 and 529.
@Suite(.promptScheduling) struct ScriptedAnthropicServerTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test(
        "the official anthropic Python client parses its answers: text, a streamed tool call, a 429 it retries, a 529")
    func officialClient() async throws {
        let venv = try await PythonVenv.forTest("anthropic", packages: ["anthropic"])
        let input = #"{"path": "notes/ünï \"q\".txt"}"#
        let server = try await ScriptedAnthropicServer.start(replies: [
            .text("Hello from the script ✓", usage: .init(prompt: 11, completion: 5)),
            .init(
                text: "Streamed ✓ hello", toolCalls: [.init("list_files", input, id: "toolu_x1")],
                usage: .init(prompt: 13, completion: 9), fault: .unknownEvents),
            .init(toolCalls: [.init("list_files", input, id: "toolu_x2")]),
            .fault(.status(429, type: "rate_limit_error", headers: [("retry-after-ms", "20"), ("retry-after", "1")])),
            .text("after the wait"),
            .fault(.overloaded),
        ])
        defer { Task { await server.stop() } }
        let script = Self.repository.appendingPathComponent("Tests/Clients/anthropic_client_check.py").path
        let (status, out, err) = try await venv.run(script, [server.baseURL])
        try #require(status == 0, "the anthropic client failed:\n\(err.suffix(3000))")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let text = try #require(parsed["text"] as? [String: Any])
        #expect(text["content"] as? [String] == ["Hello from the script ✓"])
        #expect(text["stop_reason"] as? String == "end_turn")
        #expect(text["usage"] as? [Int] == [11, 5])
        let streamed = try #require(parsed["streamed"] as? [String: Any])
        #expect(streamed["text"] as? String == "Streamed ✓ hello")
        #expect((streamed["pieces"] as? Int ?? 0) > 1)
        let calls = try #require(streamed["calls"] as? [[String]])
        #expect(calls.map { [$0[0], $0[1]] } == [["toolu_x1", "list_files"]])
        #expect(calls.first.map { Self.sameJSON($0[2], input) } == true)
        #expect(streamed["stop_reason"] as? String == "tool_use")
        #expect(streamed["usage"] as? [Int] == [13, 9])
        let call = try #require(parsed["tool_call"] as? [String: Any])
        let wholeCalls = try #require(call["calls"] as? [[String]])
        #expect(wholeCalls.map { [$0[0], $0[1]] } == [["toolu_x2", "list_files"]])
        #expect(wholeCalls.first.map { Self.sameJSON($0[2], input) } == true)
        #expect(call["stop_reason"] as? String == "tool_use")
        #expect(parsed["after_429"] as? [String] == ["after the wait"])
        let overloaded = try #require(parsed["overloaded"] as? [Any])
        #expect(overloaded.first as? Int == 529)
        #expect(overloaded.dropFirst().first as? String == "overloaded_error")
        #expect(server.requests.count == 6)
        // The client names its own API version (2026-10-21 for anthropic 2.17.0); Moat sends 2023-06-01, and
        // the same answers satisfy both.
        #expect(server.requests.allSatisfy { $0.header("anthropic-version") != nil })
        #expect(server.requests.first?.json["system"] as? String == "Be brief.")
    }

    @Test("the fake refuses what the API refuses: no version header, roles out of turn, an unanswered tool_result")
    func refusesWhatTheAPIRefuses() async throws {
        let server = try await ScriptedAnthropicServer.start()
        defer { Task { await server.stop() } }
        func post(_ body: String, version: Bool = true) async throws -> (status: Int, body: String) {
            let headers = version ? "anthropic-version: 2023-06-01\r\n" : ""
            let response = try await RawHTTP.sendOffPool(
                "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\(headers)"
                    + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)", port: server.port)
            return (response.status, response.body)
        }
        let hello = #"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#
        let noVersion = try await post(hello, version: false)
        #expect(noVersion.status == 400 && noVersion.body.contains("anthropic-version"))
        let outOfTurn = try await post(
            #"{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":"hi"}]}"#)
        #expect(outOfTurn.status == 400 && outOfTurn.body.contains("\"type\":\"invalid_request_error\""))
        let stray = try await post(
            #"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"a"}]}]}"#
        )
        #expect(stray.status == 400 && stray.body.contains("tool_use_id"))
        let emptyText = try await post(
            #"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}"#)
        #expect(emptyText.status == 400)
        let exhausted = try await post(hello)
        #expect(exhausted.status == 500 && exhausted.body.contains("\"type\":\"api_error\""))
    }

    static func sameJSON(_ left: String, _ right: String) -> Bool {
        guard let a = try? JSONSerialization.jsonObject(with: Data(left.utf8)),
            let b = try? JSONSerialization.jsonObject(with: Data(right.utf8))
        else { return false }
        return (a as? NSDictionary) == (b as? NSDictionary)
    }
}
