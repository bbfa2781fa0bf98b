import Foundation
import MoatProviders
import Synchronization

/// A model that obeys instructions wherever it reads them, as a hijacked model would.
///
/// It reads the last message of each request (the user's message, or a tool's result) and, for each line
/// `CALL name {json}` in it, calls that tool. With nothing to obey it answers `done: ` and the last
/// message's text. `loop` makes it call one tool forever (for budgets). Every request is kept.
final class ScriptedModel: ModelProvider {
    let name = "scripted"
    let loopTool: String?
    let usage: TokenUsage?
    private let state = Mutex<(requests: [ModelRequest], next: Int)>(([], 0))
    /// Runs at each request (a test moves its clock here).
    let onRequest: @Sendable () -> Void

    /// The provider's own context budget (`providers.NAME.context_tokens`), if any.
    let contextTokens: Int?

    init(
        loop tool: String? = nil, usage: TokenUsage? = nil, contextTokens: Int? = nil,
        onRequest: @escaping @Sendable () -> Void = {}
    ) {
        self.loopTool = tool
        self.usage = usage
        self.contextTokens = contextTokens
        self.onRequest = onRequest
    }

    var requests: [ModelRequest] { state.withLock { $0.requests } }

    func complete(
        _ request: ModelRequest, onText: @escaping @Sendable (String) async -> Void
    ) async throws(ProviderError) -> ModelReply {
        onRequest()
        let id = state.withLock { state in
            state.requests.append(request)
            state.next += 1
            return state.next
        }
        if let loopTool {
            return ModelReply(
                text: "", toolCalls: [ToolCall(id: "call_\(id)", name: loopTool, arguments: "{\"n\":\(id)}")],
                finishReason: "tool_calls", usage: usage)
        }
        let last = request.messages.last?.content ?? ""
        let calls = Self.instructions(in: last).enumerated().map { index, call in
            ToolCall(id: "call_\(id)_\(index)", name: call.name, arguments: call.arguments)
        }
        if !calls.isEmpty {
            return ModelReply(text: "", toolCalls: calls, finishReason: "tool_calls", usage: usage)
        }
        let text = "done: " + last
        await onText(text)
        return ModelReply(text: text, finishReason: "stop", usage: usage)
    }

    /// Each `CALL name {json}` line of `text`.
    static func instructions(in text: String) -> [(name: String, arguments: String)] {
        text.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "CALL ") else { return nil }
            let rest = line[range.upperBound...]
            guard let space = rest.firstIndex(of: " ") else { return (String(rest), "{}") }
            return (String(rest[..<space]), String(rest[rest.index(after: space)...]))
        }
    }
}
