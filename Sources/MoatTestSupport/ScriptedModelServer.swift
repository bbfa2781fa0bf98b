import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A model server for tests: a real HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI
/// chat-completions wire format byte for byte (`POST …/chat/completions`, JSON or server-sent events),
/// answering from a script, and that can play a hijacked model.
///
/// **Script.** ``enqueue(_:)`` (or `replies:` at start) queues ``Reply`` values; each request takes the
/// next one. A reply has text, tool calls (name + arguments as JSON text), optional usage and an
/// optional ``Fault``. Whether it is streamed is the *request's* choice (`"stream": true`), as with a
/// real server. A streamed reply goes out as OpenAI sends it: a first chunk with `role`, the text in
/// pieces of ``Options/textPieceLength`` characters, each tool call as a first delta with `index`, `id`,
/// `type` and `function.name` followed by its `function.arguments` in pieces of
/// ``Options/argumentPieceLength`` characters, a last chunk with `finish_reason`, a usage chunk
/// (`"choices": []`) when the request set `stream_options.include_usage`, then `data: [DONE]`. The
/// bytes are written ``Options/writeSize`` at a time, each its own HTTP chunk, so event, line, JSON
/// and UTF-8 boundaries fall anywhere; ``Options/lineEnding`` may be `"\r\n"`; ``Options/comments`` adds
/// `: keep-alive` comment lines. Without usage in the reply, usage counts words (prompt: every message's
/// words; completion: the reply's words and arguments).
///
/// **Faults** (``Fault``): an HTTP error status with an OpenAI-style error body and extra headers (a
/// 429 with `Retry-After`), a connection closed after N events, a malformed (non-JSON) event after N
/// events, a tool-call delta whose JSON is cut, events a client must skip (a named event it does not
/// know, a chunk without choices, a delta field it does not know: `reasoning_content`, as vLLM and
/// llama.cpp send), silence after N events (the connection stays open), silence before any answer, a
/// 200 with an empty body; ``Options/ignoresStream`` answers a streamed request with one JSON document,
/// as some servers do.
///
/// **Requests are checked as the API checks them**: every `tool` message must answer a call of the
/// assistant message just before it (after its other answers), and every call of an assistant message
/// must be answered, else a 400 with OpenAI's wording (`invalid_request_error`).
///
/// **Hostile mode** (``Options/hostile``), used when the queue is empty: the server obeys instructions
/// found anywhere in its input — user text, tool results, fetched pages quoted back, the system prompt.
/// A line `MOAT-TEST-CALL <tool> <json-arguments>` makes it call that tool with those arguments (one
/// call per such line, in order); a line `MOAT-TEST-SAY <text>` makes that text its reply. With neither
/// it answers `Done.`. ``Hostile/newInput`` reads only the messages after the last assistant message
/// (a model that reacts to what it just read); ``Hostile/wholeConversation`` re-reads everything every
/// round, so it repeats its calls forever (a looping model, for budget tests). With the queue empty and
/// hostile mode off, a request gets a 500 saying the script ran out.
///
/// **Recording.** Every request is kept (``requests``): method, path, headers and body text, so a test
/// can assert that a canary secret never reached the model (``everythingReceived``).
/// ``requiredAPIKey`` makes it answer 401 (OpenAI's `invalid_api_key` body, the key never echoed) to
/// a request without `Authorization: Bearer <key>`.
public final class ScriptedModelServer: Sendable {
    /// One scripted answer.
    public struct Reply: Sendable {
        public var text: String
        public var toolCalls: [Call]
        public var usage: Usage?
        /// Default: `tool_calls` when there are calls, else `stop`.
        public var finishReason: String?
        public var fault: Fault
        /// Seconds the server waits before it answers (a slow model; a test's client can leave meanwhile).
        public var delay: Double?

        public init(
            text: String = "", toolCalls: [Call] = [], usage: Usage? = nil, finishReason: String? = nil,
            fault: Fault = .none
        ) {
            self.text = text
            self.toolCalls = toolCalls
            self.usage = usage
            self.finishReason = finishReason
            self.fault = fault
        }

        public static func text(_ text: String, usage: Usage? = nil) -> Reply { Reply(text: text, usage: usage) }

        public static func toolCall(_ name: String, _ arguments: String, text: String = "") -> Reply {
            Reply(text: text, toolCalls: [Call(name, arguments)])
        }

        public static func fault(_ fault: Fault, text: String = "") -> Reply { Reply(text: text, fault: fault) }
    }

    public struct Call: Sendable {
        public var name: String
        public var arguments: String
        /// Default: `call_<n>`, numbered across the server's life.
        public var id: String?

        public init(_ name: String, _ arguments: String, id: String? = nil) {
            self.name = name
            self.arguments = arguments
            self.id = id
        }
    }

    public struct Usage: Sendable, Equatable {
        public var prompt: Int
        public var completion: Int

        public init(prompt: Int, completion: Int) {
            self.prompt = prompt
            self.completion = completion
        }
    }

    public enum Fault: Sendable {
        case none
        /// This status with this body (JSON), like `404` with `{"error": …}`, and these extra headers.
        case status(Int, body: String, headers: [(String, String)] = [])
        /// Closes the connection after this many events (or, not streaming, after half the body).
        case cutAfterEvents(Int)
        /// Sends `data: {"choices": [` (cut JSON) after this many events, then the rest.
        case malformedEvent(after: Int)
        /// Sends this many events, then nothing; the connection stays open until the client leaves.
        case silenceAfterEvents(Int)
        /// Reads the request and never answers.
        case silence
        /// Reads the request and closes the connection without a byte of answer.
        case closeUnanswered
        /// `200 OK` with `Content-Length: 0` (llama-cpp-python's answer to some streamed requests).
        case emptyBody
        /// The first `tool_calls` delta that carries arguments is cut in the middle of its JSON.
        case malformedToolDelta
        /// Events a client must skip: a named event of an unknown type, a chunk without `choices`, and a
        /// delta with only `reasoning_content`.
        case unknownEvents

        /// 429 with OpenAI's `rate_limit_exceeded` body and `retry-after: SECONDS`.
        public static func rateLimited(retryAfter: String) -> Fault {
            .status(
                429,
                body: #"{"error":{"message":"Rate limit reached. Please try again later.","type":"requests","#
                    + #""param":null,"code":"rate_limit_exceeded"}}"#,
                headers: [("retry-after", retryAfter)])
        }
    }

    public enum Hostile: Sendable {
        case off, newInput, wholeConversation
    }

    public struct Options: Sendable {
        public var textPieceLength = 3
        public var argumentPieceLength = 4
        /// Bytes per write (each its own HTTP chunk); nil: one write per event.
        public var writeSize: Int? = ScriptedAnswer.defaultWriteSize
        public var lineEnding = "\n"
        public var comments = false
        public var hostile = Hostile.off
        public var requiredAPIKey: String?
        /// Answer `"stream": true` with one JSON document, as some servers do.
        public var ignoresStream = false

        public init() {}
    }

    /// One request as it arrived.
    public struct Recorded: Sendable {
        public let method: String
        public let path: String
        public let headers: [(name: String, value: String)]
        public let body: String

        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        /// The body parsed as a JSON object (empty when it is not one).
        public var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
    }

    public let port: Int
    public let options: Options
    /// `http://127.0.0.1:PORT/v1`, a provider's base URL.
    public var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    /// The TCP connections accepted (keep-alive: one for several requests).
    public let connections: ScriptedConnections
    private let channel: any Channel
    private let state: Mutex<State>

    struct State {
        var queue: [Reply]
        var requests: [Recorded] = []
        var served = 0
        var calls = 0
        /// The delay of the reply being answered.
        var nextDelay: Double?
    }

    /// Starts on `host` (127.0.0.1; another loopback address such as 127.0.0.2 for a second server on
    /// the same port), on `port` (0: a free one; a test that brings a server "back" names the port the
    /// stopped one had).
    public static func start(
        replies: [Reply] = [], options: Options = Options(), port: Int = 0, host: String = "127.0.0.1"
    ) async throws -> ScriptedModelServer {
        let connections = ScriptedConnections()
        return try await startScriptedServer(port: port, host: host, connections: connections) {
            ScriptedModelServer(channel: $0, replies: replies, options: options, connections: connections)
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
    public var requests: [Recorded] { state.withLock { $0.requests } }

    /// Every header and body the server received, as one text (for "this never reached the model").
    public var everythingReceived: String {
        requests.map { request in
            request.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n") + "\n\n" + request.body
        }.joined(separator: "\n")
    }

    // MARK: Answering

    typealias Answer = ScriptedAnswer

    func answer(method: String, path: String, headers: HTTPHeaders, body: [UInt8]) -> Answer {
        state.withLock { $0.nextDelay = nil }
        var answer = scriptedAnswer(method: method, path: path, headers: headers, body: body)
        answer.delay = state.withLock { $0.nextDelay }
        return answer
    }

    func scriptedAnswer(method: String, path: String, headers: HTTPHeaders, body: [UInt8]) -> Answer {
        let text = String(decoding: body, as: UTF8.self)
        let recorded = Recorded(
            method: method, path: path, headers: headers.map { ($0.name, $0.value) }, body: text)
        state.withLock { $0.requests.append(recorded) }
        guard method == "POST", path.hasSuffix("/chat/completions") else {
            return error(
                404, "Unknown request URL: \(method) \(path)", type: "invalid_request_error", code: "unknown_url")
        }
        if let key = options.requiredAPIKey, headers["Authorization"].first != "Bearer \(key)" {
            return error(401, "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key")
        }
        let request = recorded.json
        guard let model = request["model"] as? String, let messages = request["messages"] as? [[String: Any]] else {
            return error(400, "'model' and 'messages' are required", type: "invalid_request_error", code: nil)
        }
        if let problem = Self.toolPairingProblem(messages) {
            return error(400, problem, type: "invalid_request_error", code: nil)
        }
        let streaming = !options.ignoresStream && request["stream"] as? Bool ?? false
        let includeUsage = (request["stream_options"] as? [String: Any])?["include_usage"] as? Bool ?? false
        let next: Reply? = state.withLock { state in
            state.served += 1
            let reply = state.queue.isEmpty ? nil : state.queue.removeFirst()
            state.nextDelay = reply?.delay
            return reply
        }
        guard var reply = next ?? hostileReply(messages) else {
            return error(
                500, "the scripted model server has no reply left in its script", type: "server_error", code: nil)
        }
        reply.toolCalls = reply.toolCalls.map { call in
            var call = call
            if call.id == nil {
                call.id = state.withLock { state in
                    state.calls += 1
                    return "call_\(state.calls)"
                }
            }
            return call
        }
        let usage =
            reply.usage
            ?? Usage(
                prompt: messages.reduce(0) { $0 + Self.words(Self.content($1)) },
                completion: Self.words(reply.text) + reply.toolCalls.reduce(0) { $0 + Self.words($1.arguments) })
        let id = "chatcmpl-moat\(state.withLock { $0.served })"
        switch reply.fault {
        case .status(let status, let body, let extra):
            return Answer(
                status: status, headers: [("Content-Type", "application/json")] + extra, pieces: [Array(body.utf8)])
        case .silence:
            return Answer(respond: false)
        case .closeUnanswered:
            return Answer(end: .drop)
        case .emptyBody:
            return Answer(headers: [("Content-Type", "application/json"), ("Content-Length", "0")])
        default:
            break
        }
        if streaming {
            return streamed(reply, id: id, model: model, usage: includeUsage ? usage : nil)
        }
        let json = Array(whole(reply, id: id, model: model, usage: usage).utf8)
        var answer = Answer(headers: [("Content-Type", "application/json"), ("Content-Length", String(json.count))])
        answer.pieces = split(json)
        if case .cutAfterEvents = reply.fault {
            answer.pieces = [Array(json.prefix(json.count / 2))]
            answer.end = .cut
        }
        return answer
    }

    func error(_ status: Int, _ message: String, type: String, code: String?) -> Answer {
        let body =
            "{\"error\":{\"message\":\(Self.quote(message)),\"type\":\(Self.quote(type)),\"param\":null,"
            + "\"code\":\(code.map(Self.quote) ?? "null")}}"
        return Answer(
            status: status,
            headers: [("Content-Type", "application/json"), ("Content-Length", String(body.utf8.count))],
            pieces: [Array(body.utf8)])
    }

    /// `chat.completion`, as OpenAI writes it.
    func whole(_ reply: Reply, id: String, model: String, usage: Usage) -> String {
        var message = "{\"role\":\"assistant\",\"content\":"
        message += reply.text.isEmpty && !reply.toolCalls.isEmpty ? "null" : Self.quote(reply.text)
        if !reply.toolCalls.isEmpty {
            message += ",\"tool_calls\":["
            message += reply.toolCalls.map { call in
                "{\"id\":\(Self.quote(call.id ?? "")),\"type\":\"function\",\"function\":{\"name\":"
                    + "\(Self.quote(call.name)),\"arguments\":\(Self.quote(call.arguments))}}"
            }.joined(separator: ",")
            message += "]"
        }
        message += ",\"refusal\":null}"
        return "{\"id\":\"\(id)\",\"object\":\"chat.completion\",\"created\":1765000000,\"model\":\(Self.quote(model)),"
            + "\"choices\":[{\"index\":0,\"message\":\(message),\"logprobs\":null,"
            + "\"finish_reason\":\(Self.quote(finishReason(reply)))}],\(usageJSON(usage)),"
            + "\"system_fingerprint\":\"fp_moat\"}"
    }

    func finishReason(_ reply: Reply) -> String {
        reply.finishReason ?? (reply.toolCalls.isEmpty ? "stop" : "tool_calls")
    }

    func usageJSON(_ usage: Usage) -> String {
        "\"usage\":{\"prompt_tokens\":\(usage.prompt),\"completion_tokens\":\(usage.completion),"
            + "\"total_tokens\":\(usage.prompt + usage.completion)}"
    }

    /// `chat.completion.chunk` events, as OpenAI streams them.
    func streamed(_ reply: Reply, id: String, model: String, usage: Usage?) -> Answer {
        let head =
            "{\"id\":\"\(id)\",\"object\":\"chat.completion.chunk\",\"created\":1765000000,\"model\":\(Self.quote(model)),"
            + "\"system_fingerprint\":\"fp_moat\","
        let usageNull = usage == nil ? "" : ",\"usage\":null"
        func chunk(_ delta: String, finish: String? = nil) -> String {
            head + "\"choices\":[{\"index\":0,\"delta\":\(delta),\"logprobs\":null,\"finish_reason\":"
                + "\(finish.map(Self.quote) ?? "null")}]\(usageNull)}"
        }
        var events = [chunk("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}")]
        if case .unknownEvents = reply.fault {
            events.append(chunk("{\"reasoning_content\":\"thinking about it\"}"))
            events.append(head + "\"choices\":[],\"moat_future_field\":{\"x\":[1,2]}}")
        }
        for piece in Self.pieces(reply.text, options.textPieceLength) {
            events.append(chunk("{\"content\":\(Self.quote(piece))}"))
        }
        for (index, call) in reply.toolCalls.enumerated() {
            events.append(
                chunk(
                    "{\"tool_calls\":[{\"index\":\(index),\"id\":\(Self.quote(call.id ?? "")),\"type\":\"function\","
                        + "\"function\":{\"name\":\(Self.quote(call.name)),\"arguments\":\"\"}}]}"))
            for piece in Self.pieces(call.arguments, options.argumentPieceLength) {
                events.append(
                    chunk("{\"tool_calls\":[{\"index\":\(index),\"function\":{\"arguments\":\(Self.quote(piece))}}]}"))
            }
        }
        events.append(chunk("{}", finish: finishReason(reply)))
        if let usage { events.append(head + "\"choices\":[],\(usageJSON(usage))}") }
        events.append("[DONE]")
        var answer = Answer(headers: [
            ("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"),
        ])
        let newline = options.lineEnding
        var text = events.map { "data: \($0)\(newline)\(newline)" }
        if options.comments { text = text.map { ": keep-alive\(newline)" + $0 } }
        switch reply.fault {
        case .cutAfterEvents(let count):
            text = Array(text.prefix(count))
            answer.end = .cut
        case .silenceAfterEvents(let count):
            text = Array(text.prefix(count))
            answer.end = .hang
        case .malformedEvent(let after):
            text.insert("data: {\"choices\": [\(newline)\(newline)", at: min(after, text.count))
        case .malformedToolDelta:
            if let first = text.firstIndex(where: {
                $0.contains("\"arguments\":\"") && !$0.contains("\"arguments\":\"\"")
            }) {
                let event = text[first].dropLast(2 * newline.count)
                text[first] = String(event.prefix(event.count - 12)) + newline + newline
            }
        case .unknownEvents:
            text.insert(
                "event: moat_future_event\(newline)data: {\"type\":\"moat_future_event\"}\(newline)\(newline)", at: 1)
        default:
            break
        }
        answer.pieces = text.flatMap { split(Array($0.utf8)) }
        return answer
    }

    func split(_ bytes: [UInt8]) -> [[UInt8]] { ScriptedAnswer.split(bytes, size: options.writeSize) }

    // MARK: Hostile mode

    func hostileReply(_ messages: [[String: Any]]) -> Reply? {
        guard options.hostile != .off else { return nil }
        var read = messages
        if options.hostile == .newInput, let last = messages.lastIndex(where: { $0["role"] as? String == "assistant" })
        {
            read = Array(messages[(last + 1)...])
        }
        var calls: [Call] = []
        var said: [String] = []
        for message in read {
            for line in Self.content(message).split(whereSeparator: \.isNewline) {
                let words = line.trimmingCharacters(in: .whitespaces)
                if words.hasPrefix("MOAT-TEST-CALL ") {
                    let rest = words.dropFirst("MOAT-TEST-CALL ".count).trimmingCharacters(in: .whitespaces)
                    let parts = rest.split(separator: " ", maxSplits: 1)
                    if let tool = parts.first {
                        calls.append(Call(String(tool), parts.count > 1 ? String(parts[1]) : "{}"))
                    }
                } else if words.hasPrefix("MOAT-TEST-SAY ") {
                    said.append(String(words.dropFirst("MOAT-TEST-SAY ".count)))
                }
            }
        }
        let text = said.isEmpty ? (calls.isEmpty ? "Done." : "") : said.joined(separator: "\n")
        return Reply(text: text, toolCalls: calls)
    }

    /// Why the API would refuse these messages' tool calls and results, or nil.
    static func toolPairingProblem(_ messages: [[String: Any]]) -> String? {
        var unanswered: [String] = []
        var callsOf = -1
        for (position, message) in messages.enumerated() {
            let role = message["role"] as? String
            if role == "tool" {
                guard let id = message["tool_call_id"] as? String, let found = unanswered.firstIndex(of: id) else {
                    return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                        + "with 'tool_calls'."
                }
                unanswered.remove(at: found)
                continue
            }
            guard unanswered.isEmpty else {
                return "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                    + "'tool_call_id'. The following tool_call_ids did not have response messages: "
                    + "\(unanswered.joined(separator: ", ")) (messages.[\(callsOf)])"
            }
            let calls = role == "assistant" ? message["tool_calls"] as? [[String: Any]] ?? [] : []
            unanswered = calls.compactMap { $0["id"] as? String }
            callsOf = position
        }
        guard unanswered.isEmpty else {
            return "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                + "'tool_call_id'. The following tool_call_ids did not have response messages: "
                + unanswered.joined(separator: ", ")
        }
        return nil
    }

    /// A message's text: `content` as a string, or the text parts of a list.
    static func content(_ message: [String: Any]) -> String {
        if let text = message["content"] as? String { return text }
        if let parts = message["content"] as? [[String: Any]] {
            return parts.compactMap { $0["text"] as? String }.joined(separator: "\n")
        }
        return ""
    }

    static func words(_ text: String) -> Int {
        text.split(whereSeparator: { $0.isWhitespace }).count
    }

    static func pieces(_ text: String, _ length: Int) -> [String] {
        var result: [String] = []
        var current = ""
        for character in text {
            current.append(character)
            if current.count >= max(1, length) {
                result.append(current)
                current = ""
            }
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    static func quote(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }
}
