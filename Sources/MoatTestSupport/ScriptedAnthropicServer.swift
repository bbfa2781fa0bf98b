import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// A model server for tests that speaks Anthropic's Messages API byte for byte: a real HTTP/1.1 server
/// on 127.0.0.1 answering `POST /v1/messages` from a script, as one JSON message or as server-sent
/// events, as the request's `"stream"` asks.
///
/// **Requests are checked as the API checks them**: `anthropic-version` must be present (400 without),
/// `x-api-key` must equal ``Options/requiredAPIKey`` when set (401 `authentication_error`, the key never
/// echoed), `model`, `max_tokens` and `messages` are required, roles must alternate starting with
/// `user`, text blocks must not be empty, and every `tool_result` must answer a `tool_use` of the
/// assistant turn just before it (400 `invalid_request_error` otherwise); another path gets 404
/// `not_found_error`. Error bodies are `{"type":"error","error":{"type":…,"message":…},"request_id":…}`.
///
/// **Streaming** follows the API's event order: `message_start` (with input tokens), a `ping`, then per
/// content block `content_block_start`, its deltas (`text_delta` pieces of ``Options/textPieceLength``
/// characters; for a tool call an empty `input_json_delta`, then the input in pieces of
/// ``Options/argumentPieceLength`` characters) and `content_block_stop`, then `message_delta` (stop
/// reason, output tokens) and `message_stop`. Each event is `event: TYPE` + `data: JSON` + a blank line
/// (lines ending in ``Options/lineEnding``), written ``Options/writeSize`` bytes at a time, each its own
/// HTTP chunk, so event, line, JSON and UTF-8 boundaries fall anywhere.
///
/// **Faults** (``Fault``): an error status with the API's error body and extra headers (``Fault/rateLimited(retryAfter:)``:
/// 429 with `retry-after`; ``Fault/overloaded``: 529), a connection closed after N events, an
/// `input_json_delta` event whose JSON is cut, an event type the API may add later (and an unknown
/// delta type) that a client must skip, an `error` event in the middle of the stream, silence.
///
/// **Recording.** Every request is kept (``requests``), so a test can check what was sent.
public final class ScriptedAnthropicServer: Sendable {
    public struct Reply: Sendable {
        public var text: String
        public var toolCalls: [Call]
        public var usage: Usage?
        /// Default: `tool_use` when there are calls, else `end_turn`.
        public var stopReason: String?
        public var fault: Fault

        public init(
            text: String = "", toolCalls: [Call] = [], usage: Usage? = nil, stopReason: String? = nil,
            fault: Fault = .none
        ) {
            self.text = text
            self.toolCalls = toolCalls
            self.usage = usage
            self.stopReason = stopReason
            self.fault = fault
        }

        public static func text(_ text: String, usage: Usage? = nil) -> Reply { Reply(text: text, usage: usage) }

        public static func fault(_ fault: Fault, text: String = "") -> Reply { Reply(text: text, fault: fault) }
    }

    /// A tool call: name, input as JSON text (streamed in pieces exactly as written, so invalid JSON stays
    /// invalid), and an id (default `toolu_moat<n>`, numbered across the server's life).
    public typealias Call = ScriptedModelServer.Call
    /// Tokens: `prompt` is reported as `input_tokens`, `completion` as `output_tokens`.
    public typealias Usage = ScriptedModelServer.Usage

    public enum Fault: Sendable {
        case none
        /// This status, the API's error body with this error type, and these headers.
        case status(Int, type: String, headers: [(String, String)] = [])
        /// Closes the connection after this many events (or, not streaming, after half the body).
        case cutAfterEvents(Int)
        /// The first `input_json_delta` event's data is cut in the middle of its JSON.
        case malformedToolDelta
        /// An event type the API does not have (yet), and a delta type likewise, which clients skip.
        case unknownEvents
        /// An `error` event of this type after this many events; the stream ends there.
        case errorEvent(type: String, after: Int)
        /// Reads the request and never answers.
        case silence

        /// 429 `rate_limit_error` with `retry-after: SECONDS` (or an HTTP date).
        public static func rateLimited(retryAfter: String) -> Fault {
            .status(429, type: "rate_limit_error", headers: [("retry-after", retryAfter)])
        }

        /// 529 `overloaded_error`, as the API answers when it is overloaded.
        public static let overloaded = Fault.status(529, type: "overloaded_error")
    }

    public struct Options: Sendable {
        public var textPieceLength = 3
        public var argumentPieceLength = 4
        /// Bytes per write (each its own HTTP chunk); nil: one write per event.
        public var writeSize: Int? = ScriptedAnswer.defaultWriteSize
        /// Ends each line of the stream (`"\r\n"` and `"\r"` are as valid as the API's `"\n"`).
        public var lineEnding = "\n"
        public var requiredAPIKey: String?

        public init() {}
    }

    public let port: Int
    public let options: Options
    /// `http://127.0.0.1:PORT`, a provider's base URL (the client adds `/v1/messages`).
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The TCP connections accepted (keep-alive: one for several requests).
    public let connections: ScriptedConnections
    private let channel: any Channel
    private let state: Mutex<State>

    struct State {
        var queue: [Reply]
        var requests: [ScriptedModelServer.Recorded] = []
        var served = 0
        var calls = 0
    }

    /// Starts on a free port of 127.0.0.1.
    public static func start(replies: [Reply] = [], options: Options = Options()) async throws
        -> ScriptedAnthropicServer
    {
        let connections = ScriptedConnections()
        return try await startScriptedServer(connections: connections) {
            ScriptedAnthropicServer(channel: $0, replies: replies, options: options, connections: connections)
        } answer: {
            $0.answer(method: $1, path: $2, headers: $3, body: $4)
        }
    }

    private init(channel: any Channel, replies: [Reply], options: Options, connections: ScriptedConnections) {
        self.connections = connections
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.options = options
        self.state = Mutex(State(queue: replies))
    }

    /// Stops listening and closes the connections it accepted (a kept-alive one included), as a server
    /// process that stops does.
    public func stop() async {
        try? await channel.close()
        await connections.closeAll()
    }

    public func enqueue(_ replies: Reply...) {
        state.withLock { $0.queue += replies }
    }

    /// Every request so far, first to last.
    public var requests: [ScriptedModelServer.Recorded] { state.withLock { $0.requests } }

    // MARK: Answering

    func answer(method: String, path: String, headers: HTTPHeaders, body: [UInt8]) -> ScriptedAnswer {
        let recorded = ScriptedModelServer.Recorded(
            method: method, path: path, headers: headers.map { ($0.name, $0.value) },
            body: String(decoding: body, as: UTF8.self))
        state.withLock { $0.requests.append(recorded) }
        guard method == "POST", path == "/v1/messages" || path.hasPrefix("/v1/messages?") else {
            return error(404, "not_found_error", "Not found")
        }
        if let key = options.requiredAPIKey, headers["x-api-key"].first != key {
            return error(401, "authentication_error", "invalid x-api-key")
        }
        guard headers["anthropic-version"].first != nil else {
            return error(400, "invalid_request_error", "anthropic-version: header is required")
        }
        let request = recorded.json
        guard let model = request["model"] as? String, !model.isEmpty else {
            return error(400, "invalid_request_error", "model: Field required")
        }
        guard let maxTokens = request["max_tokens"] as? Int, maxTokens >= 1 else {
            return error(400, "invalid_request_error", "max_tokens: Field required")
        }
        guard let messages = request["messages"] as? [[String: Any]], !messages.isEmpty else {
            return error(400, "invalid_request_error", "messages: Field required")
        }
        if let problem = Self.conversationProblem(messages) { return error(400, "invalid_request_error", problem) }
        let streaming = request["stream"] as? Bool ?? false
        let next: Reply? = state.withLock { state in
            state.served += 1
            return state.queue.isEmpty ? nil : state.queue.removeFirst()
        }
        guard var reply = next else {
            return error(500, "api_error", "the scripted Anthropic server has no reply left in its script")
        }
        reply.toolCalls = reply.toolCalls.map { call in
            var call = call
            if call.id == nil {
                call.id = state.withLock { state in
                    state.calls += 1
                    return "toolu_moat\(state.calls)"
                }
            }
            return call
        }
        let usage =
            reply.usage
            ?? Usage(
                prompt: messages.reduce(0) { $0 + ScriptedModelServer.words(Self.text(of: $1)) },
                completion: ScriptedModelServer.words(reply.text)
                    + reply.toolCalls.reduce(0) { $0 + ScriptedModelServer.words($1.arguments) })
        let id = "msg_moat\(state.withLock { $0.served })"
        switch reply.fault {
        case .status(let status, let type, let extra):
            var answer = error(status, type, "scripted \(type)")
            answer.headers += extra
            return answer
        case .silence:
            return ScriptedAnswer(respond: false)
        default:
            break
        }
        if streaming { return streamed(reply, id: id, model: model, usage: usage) }
        let json = Array(whole(reply, id: id, model: model, usage: usage).utf8)
        var answer = ScriptedAnswer(
            headers: [("Content-Type", "application/json"), ("Content-Length", String(json.count)), requestID])
        answer.pieces = ScriptedAnswer.split(json, size: options.writeSize)
        if case .cutAfterEvents = reply.fault {
            answer.pieces = [Array(json.prefix(json.count / 2))]
            answer.end = .cut
        }
        return answer
    }

    var requestID: (String, String) { ("request-id", "req_moat\(state.withLock { $0.served })") }

    func error(_ status: Int, _ type: String, _ message: String) -> ScriptedAnswer {
        let body =
            "{\"type\":\"error\",\"error\":{\"type\":\(quote(type)),\"message\":\(quote(message))},"
            + "\"request_id\":\"req_moat\(state.withLock { $0.served })\"}"
        return ScriptedAnswer(
            status: status,
            headers: [("Content-Type", "application/json"), ("Content-Length", String(body.utf8.count)), requestID],
            pieces: [Array(body.utf8)])
    }

    /// Why the API would refuse these messages, or nil.
    static func conversationProblem(_ messages: [[String: Any]]) -> String? {
        var previousToolUses: Set<String> = []
        for (position, message) in messages.enumerated() {
            let role = message["role"] as? String ?? ""
            let expected = position % 2 == 0 ? "user" : "assistant"
            guard role == expected else {
                return "messages.\(position).role: roles must alternate between \"user\" and \"assistant\", "
                    + "starting with \"user\""
            }
            let blocks: [[String: Any]]
            if let text = message["content"] as? String {
                blocks = [["type": "text", "text": text]]
            } else if let list = message["content"] as? [[String: Any]], !list.isEmpty {
                blocks = list
            } else {
                return "messages.\(position).content: must be a string or a non-empty list of blocks"
            }
            var toolUses: Set<String> = []
            for (index, block) in blocks.enumerated() {
                let at = "messages.\(position).content.\(index)"
                switch block["type"] as? String {
                case "text":
                    guard let text = block["text"] as? String, !text.isEmpty else {
                        return "\(at): text content blocks must be non-empty"
                    }
                case "tool_use" where role == "assistant":
                    guard let id = block["id"] as? String, !id.isEmpty, block["name"] is String,
                        block["input"] is [String: Any]
                    else { return "\(at): tool_use needs id, name and an object input" }
                    toolUses.insert(id)
                case "tool_result" where role == "user":
                    guard let id = block["tool_use_id"] as? String, previousToolUses.contains(id) else {
                        return "\(at): unexpected tool_use_id found in tool_result blocks: each tool_result block "
                            + "must have a corresponding tool_use block in the previous message"
                    }
                default:
                    return "\(at): unsupported content block for role \(role)"
                }
            }
            previousToolUses = toolUses
        }
        return nil
    }

    /// A message's text blocks, joined.
    static func text(of message: [String: Any]) -> String {
        if let text = message["content"] as? String { return text }
        return (message["content"] as? [[String: Any]] ?? []).compactMap {
            $0["text"] as? String ?? $0["content"] as? String
        }
        .joined(separator: "\n")
    }

    func stopReason(_ reply: Reply) -> String {
        reply.stopReason ?? (reply.toolCalls.isEmpty ? "end_turn" : "tool_use")
    }

    /// A `message`, as the API answers a request without `stream`.
    func whole(_ reply: Reply, id: String, model: String, usage: Usage) -> String {
        var blocks: [String] = []
        if !reply.text.isEmpty { blocks.append("{\"type\":\"text\",\"text\":\(quote(reply.text))}") }
        for call in reply.toolCalls {
            blocks.append(
                "{\"type\":\"tool_use\",\"id\":\(quote(call.id ?? "")),\"name\":\(quote(call.name)),\"input\":\(call.arguments)}"
            )
        }
        return "{\"id\":\"\(id)\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\(quote(model)),"
            + "\"content\":[\(blocks.joined(separator: ","))],\"stop_reason\":\(quote(stopReason(reply))),"
            + "\"stop_sequence\":null,\"usage\":{\"input_tokens\":\(usage.prompt),\"cache_creation_input_tokens\":0,"
            + "\"cache_read_input_tokens\":0,\"output_tokens\":\(usage.completion)}}"
    }

    /// The events of a streamed answer, in the API's order.
    func streamed(_ reply: Reply, id: String, model: String, usage: Usage) -> ScriptedAnswer {
        var events: [(type: String, data: String)] = []
        events.append(
            (
                "message_start",
                "{\"type\":\"message_start\",\"message\":{\"id\":\"\(id)\",\"type\":\"message\",\"role\":\"assistant\","
                    + "\"model\":\(quote(model)),\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                    + "\"usage\":{\"input_tokens\":\(usage.prompt),\"cache_creation_input_tokens\":0,"
                    + "\"cache_read_input_tokens\":0,\"output_tokens\":1}}}"
            ))
        if case .unknownEvents = reply.fault {
            events.append(
                ("moat_future_event", "{\"type\":\"moat_future_event\",\"detail\":{\"index\":0,\"x\":[1,2]}}"))
        }
        events.append(("ping", "{\"type\": \"ping\"}"))
        var index = 0
        if !reply.text.isEmpty {
            events.append(
                (
                    "content_block_start",
                    "{\"type\":\"content_block_start\",\"index\":\(index),\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"
                ))
            for piece in ScriptedModelServer.pieces(reply.text, options.textPieceLength) {
                events.append(
                    (
                        "content_block_delta",
                        "{\"type\":\"content_block_delta\",\"index\":\(index),\"delta\":{\"type\":\"text_delta\",\"text\":\(quote(piece))}}"
                    ))
            }
            if case .unknownEvents = reply.fault {
                events.append(
                    (
                        "content_block_delta",
                        "{\"type\":\"content_block_delta\",\"index\":\(index),\"delta\":{\"type\":\"moat_future_delta\",\"x\":1}}"
                    ))
            }
            events.append(("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":\(index)}"))
            index += 1
        }
        for call in reply.toolCalls {
            events.append(
                (
                    "content_block_start",
                    "{\"type\":\"content_block_start\",\"index\":\(index),\"content_block\":{\"type\":\"tool_use\","
                        + "\"id\":\(quote(call.id ?? "")),\"name\":\(quote(call.name)),\"input\":{}}}"
                ))
            for piece in [""] + ScriptedModelServer.pieces(call.arguments, options.argumentPieceLength) {
                events.append(
                    (
                        "content_block_delta",
                        "{\"type\":\"content_block_delta\",\"index\":\(index),\"delta\":{\"type\":\"input_json_delta\","
                            + "\"partial_json\":\(quote(piece))}}"
                    ))
            }
            events.append(("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":\(index)}"))
            index += 1
        }
        events.append(
            (
                "message_delta",
                "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\(quote(stopReason(reply))),\"stop_sequence\":null},"
                    + "\"usage\":{\"output_tokens\":\(usage.completion)}}"
            ))
        events.append(("message_stop", "{\"type\":\"message_stop\"}"))
        var answer = ScriptedAnswer(headers: [
            ("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"), requestID,
        ])
        switch reply.fault {
        case .cutAfterEvents(let count):
            events = Array(events.prefix(count))
            answer.end = .cut
        case .errorEvent(let type, let after):
            events = Array(events.prefix(after))
            events.append(
                ("error", "{\"type\":\"error\",\"error\":{\"type\":\(quote(type)),\"message\":\"scripted \(type)\"}}"))
        case .malformedToolDelta:
            if let first = events.firstIndex(where: { $0.data.contains("\"input_json_delta\"") }) {
                let data = events[first].data
                events[first].data = String(data.prefix(data.count - 12))
            }
        default:
            break
        }
        let newline = options.lineEnding
        let text = events.map { "event: \($0.type)\(newline)data: \($0.data)\(newline)\(newline)" }.joined()
        answer.pieces = ScriptedAnswer.split(Array(text.utf8), size: options.writeSize)
        return answer
    }

    func quote(_ text: String) -> String { ScriptedModelServer.quote(text) }
}
