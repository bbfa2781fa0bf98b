import Foundation
import MoatTestSupport
import Testing

@testable import MoatProviders

/// The two wire formats, for suites that hold both providers to the same checks.
enum WireKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case openAI = "OpenAI-compatible"
    case anthropic = "Anthropic"

    var testDescription: String { rawValue }
}

/// A fault either fake can play, in the terms both share.
enum WireFault: Sendable {
    case none
    /// The connection closes after this many events (not streaming: after half the body).
    case cutAfterEvents(Int)
    /// The first tool-call delta with arguments is cut in the middle of its JSON.
    case malformedToolDelta
    /// Events the API says clients skip.
    case unknownEvents
    /// 429 with `retry-after: SECONDS`.
    case rateLimited(retryAfter: String)
}

/// What both fakes' own fault types can say.
protocol SharedFault {
    static var none: Self { get }
    static func cutAfterEvents(_ count: Int) -> Self
    static var malformedToolDelta: Self { get }
    static var unknownEvents: Self { get }
    static func rateLimited(retryAfter: String) -> Self
}

extension ScriptedModelServer.Fault: SharedFault {}
extension ScriptedAnthropicServer.Fault: SharedFault {}

extension WireFault {
    /// This fault in a fake's own terms.
    func translated<Fault: SharedFault>() -> Fault {
        switch self {
        case .none: .none
        case .cutAfterEvents(let count): .cutAfterEvents(count)
        case .malformedToolDelta: .malformedToolDelta
        case .unknownEvents: .unknownEvents
        case .rateLimited(let after): .rateLimited(retryAfter: after)
        }
    }
}

/// One scripted answer, in the terms both fakes share.
struct ScriptedTurn: Sendable {
    var text = ""
    var calls: [ScriptedModelServer.Call] = []
    var usage: ScriptedModelServer.Usage?
    var fault = WireFault.none
}

/// A wire-faithful fake of either API on loopback (``ScriptedModelServer`` or ``ScriptedAnthropicServer``),
/// with the provider of that kind aimed at it and the requests read the way each API carries them.
struct FakeModelServer: Sendable {
    let kind: WireKind
    private let openAI: ScriptedModelServer?
    private let anthropic: ScriptedAnthropicServer?

    /// Starts a fake of `kind` answering `turns` in order; the stream is written `writeSize` bytes per
    /// HTTP chunk (nil: an event per chunk) with lines ending in `lineEnding`, and tool arguments go out
    /// in pieces of `argumentPieceLength` characters.
    static func start(
        _ kind: WireKind, _ turns: [ScriptedTurn], writeSize: Int? = 7, lineEnding: String = "\n",
        argumentPieceLength: Int = 4
    ) async throws -> FakeModelServer {
        switch kind {
        case .openAI:
            var options = ScriptedModelServer.Options()
            options.writeSize = writeSize
            options.lineEnding = lineEnding
            options.comments = lineEnding != "\n"
            options.argumentPieceLength = argumentPieceLength
            let replies = turns.map { turn in
                ScriptedModelServer.Reply(
                    text: turn.text, toolCalls: turn.calls, usage: turn.usage,
                    fault: turn.fault.translated())
            }
            let server = try await ScriptedModelServer.start(replies: replies, options: options)
            return FakeModelServer(kind: kind, openAI: server, anthropic: nil)
        case .anthropic:
            var options = ScriptedAnthropicServer.Options()
            options.writeSize = writeSize
            options.lineEnding = lineEnding
            options.argumentPieceLength = argumentPieceLength
            let replies = turns.map { turn in
                ScriptedAnthropicServer.Reply(
                    text: turn.text, toolCalls: turn.calls, usage: turn.usage,
                    fault: turn.fault.translated())
            }
            let server = try await ScriptedAnthropicServer.start(replies: replies, options: options)
            return FakeModelServer(kind: kind, openAI: nil, anthropic: server)
        }
    }

    func stop() async {
        await openAI?.stop()
        await anthropic?.stop()
    }

    var baseURL: String { openAI?.baseURL ?? anthropic?.baseURL ?? "" }
    var port: Int { openAI?.port ?? anthropic?.port ?? 0 }
    var requests: [ScriptedModelServer.Recorded] { openAI?.requests ?? anthropic?.requests ?? [] }

    /// The provider's settings: named `fake`, aimed at this server.
    func settings(stream: Bool) -> ProviderSettings {
        ProviderSettings(
            name: "fake", kind: kind == .openAI ? .openai : .anthropic, baseURL: baseURL, model: "scripted-model",
            stream: stream)
    }

    /// The bare provider (no retries).
    func provider(stream: Bool) throws -> any ModelProvider {
        switch kind {
        case .openAI: try OpenAICompatibleProvider(settings: settings(stream: stream), vault: nil)
        case .anthropic: try AnthropicProvider(settings: settings(stream: stream), vault: nil)
        }
    }

    /// The provider as the agent gets it: with retries and the breaker, on `clock`.
    func resilient(stream: Bool, clock: FakeClock) throws -> ResilientProvider {
        try settings(stream: stream).makeProvider(vault: nil, environment: clock.environment)
    }

    /// The system prompt a request carried: OpenAI's first `system` message, Anthropic's top-level `system`.
    func systemPrompt(_ request: ScriptedModelServer.Recorded) -> String? {
        let body = request.json
        switch kind {
        case .openAI:
            let first = (body["messages"] as? [[String: Any]])?.first
            return first?["role"] as? String == "system" ? first?["content"] as? String : nil
        case .anthropic:
            return body["system"] as? String
        }
    }

    /// The tool results a request carried, as (call id, content): OpenAI's `tool` messages, Anthropic's
    /// `tool_result` blocks.
    func toolResults(_ request: ScriptedModelServer.Recorded) -> [[String]] {
        let messages = request.json["messages"] as? [[String: Any]] ?? []
        switch kind {
        case .openAI:
            return messages.filter { $0["role"] as? String == "tool" }.map {
                [$0["tool_call_id"] as? String ?? "", $0["content"] as? String ?? ""]
            }
        case .anthropic:
            return messages.flatMap { $0["content"] as? [[String: Any]] ?? [] }
                .filter { $0["type"] as? String == "tool_result" }
                .map { [$0["tool_use_id"] as? String ?? "", $0["content"] as? String ?? ""] }
        }
    }
}
