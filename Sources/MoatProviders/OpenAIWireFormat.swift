import Foundation
import MoatCore

// The OpenAI chat-completions wire format (also served by Ollama, llama.cpp server, vLLM and LM Studio):
// what Moat sends and the parts of the answers it reads. Unknown fields are ignored, as the API's
// clients are expected to; a known field of an unexpected type is tolerated where servers differ.

/// The body of `POST {base_url}/chat/completions`.
struct ChatCompletionRequest: Encodable {
    let model: String
    let messages: [WireMessage]
    let tools: [WireTool]?
    /// `"auto"` whenever tools are offered. The API's default is the same, but llama.cpp's Python server
    /// (`chatml-function-calling`) treats a missing `tool_choice` as `"none"` and never calls a tool.
    let toolChoice: String?
    let stream: Bool
    let streamOptions: StreamOptions?
    let maxTokens: Int?

    struct StreamOptions: Encodable {
        let includeUsage: Bool
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    enum CodingKeys: String, CodingKey {
        case model, messages, tools, stream
        case toolChoice = "tool_choice"
        case streamOptions = "stream_options"
        case maxTokens = "max_tokens"
    }

    init(model: String, request: ModelRequest, stream: Bool, maxTokens: Int?) throws(ToolParametersError) {
        self.model = model
        self.messages = request.messages.map(WireMessage.init)
        self.tools = request.tools.isEmpty ? nil : try request.tools.map(WireTool.init)
        self.toolChoice = request.tools.isEmpty ? nil : "auto"
        self.stream = stream
        self.streamOptions = stream ? StreamOptions(includeUsage: true) : nil
        self.maxTokens = maxTokens
    }
}

extension ChatCompletionRequest: WrittenJSON {
    /// The members `encode(to:)` writes, in a fixed order (model, messages, tools, tool_choice, stream,
    /// stream_options, max_tokens), written straight to bytes: a round carries the conversation's whole
    /// window, and `JSONEncoder`'s tree of boxes for it was one of the gateway's largest costs per
    /// message. Strings are escaped as `JSONEncoder` with `.withoutEscapingSlashes` escapes them
    /// (``JSONText/appendQuoted(_:to:)``); the tool schemas still go through `JSONEncoder`.
    func json() throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(messages.reduce(256) { $0 + $1.message.content.utf8.count + 64 })
        out += Array(#"{"model":"#.utf8)
        JSONText.appendQuoted(model, to: &out)
        out += Array(#","messages":["#.utf8)
        for (index, message) in messages.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            message.write(to: &out)
        }
        out.append(UInt8(ascii: "]"))
        if let tools {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            out += Array(#","tools":"#.utf8)
            out += try encoder.encode(tools)
        }
        if let toolChoice {
            out += Array(#","tool_choice":"#.utf8)
            JSONText.appendQuoted(toolChoice, to: &out)
        }
        out += Array((stream ? #","stream":true"# : #","stream":false"#).utf8)
        if let streamOptions {
            out += Array(
                (#","stream_options":{"include_usage":"# + (streamOptions.includeUsage ? "true}" : "false}")).utf8)
        }
        if let maxTokens { out += Array(#","max_tokens":\#(maxTokens)"#.utf8) }
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// A request body that writes its own JSON (the same document `JSONEncoder` would make of it).
protocol WrittenJSON {
    func json() throws -> [UInt8]
}

/// A tool whose `parameters` are not a JSON object (a programming error in the tool, not model input).
struct ToolParametersError: Error {
    let tool: String
}

struct WireMessage: Encodable {
    let message: ChatMessage

    init(_ message: ChatMessage) { self.message = message }

    enum CodingKeys: String, CodingKey {
        case role, content
        case toolCalls = "tool_calls"
        case toolCallID = "tool_call_id"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message.role.rawValue, forKey: .role)
        // An assistant turn that only called tools is sent with `content: ""`, not the `null` the API
        // answers with: OpenAI, Ollama and vLLM take both, llama.cpp's Python server refuses `null` (500).
        try container.encode(message.content, forKey: .content)
        if !message.toolCalls.isEmpty {
            try container.encode(message.toolCalls.map(WireOutgoingCall.init), forKey: .toolCalls)
        }
        if let id = message.toolCallID { try container.encode(id, forKey: .toolCallID) }
    }

    /// What ``encode(to:)`` writes, as bytes (``ChatCompletionRequest/json()``).
    func write(to out: inout [UInt8]) {
        out += Array(#"{"role":"#.utf8)
        JSONText.appendQuoted(message.role.rawValue, to: &out)
        out += Array(#","content":"#.utf8)
        JSONText.appendQuoted(message.content, to: &out)
        if !message.toolCalls.isEmpty {
            out += Array(#","tool_calls":["#.utf8)
            for (index, call) in message.toolCalls.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out += Array(#"{"id":"#.utf8)
                JSONText.appendQuoted(call.id, to: &out)
                out += Array(#","type":"function","function":{"name":"#.utf8)
                JSONText.appendQuoted(call.name, to: &out)
                out += Array(#","arguments":"#.utf8)
                JSONText.appendQuoted(call.arguments, to: &out)
                out += Array("}}".utf8)
            }
            out.append(UInt8(ascii: "]"))
        }
        if let id = message.toolCallID {
            out += Array(#","tool_call_id":"#.utf8)
            JSONText.appendQuoted(id, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

struct WireOutgoingCall: Encodable {
    let id: String
    let type = "function"
    let function: Function

    struct Function: Encodable {
        let name: String
        let arguments: String
    }

    init(_ call: ToolCall) {
        id = call.id
        function = Function(name: call.name, arguments: call.arguments)
    }
}

struct WireTool: Encodable {
    let type = "function"
    let function: Function

    struct Function: Encodable {
        let name: String
        let description: String
        let parameters: JSONValue
    }

    init(_ schema: ToolSchema) throws(ToolParametersError) {
        guard let parameters = try? JSONDecoder().decode(JSONValue.self, from: Data(schema.parameters.utf8)),
            case .object = parameters
        else { throw ToolParametersError(tool: schema.name) }
        function = Function(name: schema.name, description: schema.description, parameters: parameters)
    }
}

/// Any JSON value, to carry a tool's parameter schema (and odd `arguments` objects) through unchanged.
enum JSONValue: Codable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// A whole answer (`chat.completion`) or one streamed chunk (`chat.completion.chunk`): the same shape,
/// with `message` in the first and `delta` in the second.
struct WireCompletion: Decodable {
    let choices: [Choice]?
    let usage: Usage?
    /// Set when a server reports a failure inside a 200 answer or a stream (its text is not shown:
    /// it may quote the request).
    let error: JSONValue?

    struct Choice: Decodable {
        let index: Int?
        let message: Delta?
        let delta: Delta?
        let finishReason: String?

        enum CodingKeys: String, CodingKey {
            case index, message, delta
            case finishReason = "finish_reason"
        }
    }

    struct Delta: Decodable {
        let content: String?
        let toolCalls: [CallDelta]?

        enum CodingKeys: String, CodingKey {
            case content
            case toolCalls = "tool_calls"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            // Some servers send content parts (a list) or null; only text is read.
            content = try? container.decodeIfPresent(String.self, forKey: .content)
            toolCalls = try container.decodeIfPresent([CallDelta].self, forKey: .toolCalls)
        }
    }

    struct CallDelta: Decodable {
        let index: Int?
        let id: String?
        let function: Function?

        struct Function: Decodable {
            let name: String?
            let arguments: String?

            enum CodingKeys: String, CodingKey { case name, arguments }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                name = try container.decodeIfPresent(String.self, forKey: .name)
                if let text = try? container.decodeIfPresent(String.self, forKey: .arguments) {
                    arguments = text
                } else if let object = try container.decodeIfPresent(JSONValue.self, forKey: .arguments),
                    object != .null
                {
                    // Ollama's native format sends an object; the chat-completions format a string.
                    arguments = String(decoding: try JSONEncoder().encode(object), as: UTF8.self)
                } else {
                    arguments = nil
                }
            }
        }
    }

    struct Usage: Decodable {
        let promptTokens: Int?
        let completionTokens: Int?

        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
        }
    }
}

/// Builds the answer's tool calls from pieces: whole calls (non-streaming) or deltas (streaming),
/// matched by `index`; `id` and `function.name` come in a call's first delta (some servers repeat
/// them: the first is kept), `function.arguments` in any number of pieces.
struct ToolCallAssembler {
    static let maximumCalls = 64

    private var calls: [(index: Int, id: String?, name: String, arguments: String)] = []

    /// Adds one piece; `position` is its place in its list (the index when the server sent none).
    /// Returns a problem in words, or nil.
    mutating func add(_ delta: WireCompletion.CallDelta, position: Int, streaming: Bool) -> String? {
        let slot: Int
        if let index = delta.index ?? (streaming ? nil : position),
            let found = calls.firstIndex(where: { $0.index == index })
        {
            slot = found
        } else if delta.index == nil, streaming, let last = calls.indices.last,
            delta.id == nil || delta.id == calls[last].id
        {
            slot = last  // an index-less continuation of the call in progress
        } else {
            guard calls.count < Self.maximumCalls else {
                return "more than \(Self.maximumCalls) tool calls in one answer"
            }
            calls.append((delta.index ?? calls.count, nil, "", ""))
            slot = calls.count - 1
        }
        if calls[slot].id == nil, let id = delta.id, !id.isEmpty { calls[slot].id = id }
        if calls[slot].name.isEmpty, let name = delta.function?.name { calls[slot].name = name }
        calls[slot].arguments += delta.function?.arguments ?? ""
        return nil
    }

    /// The calls in index order; a call without an id gets `call_N`.
    /// - Throws: ``WireProblem`` for a call without a function name.
    func finish() throws(WireProblem) -> [ToolCall] {
        var result: [ToolCall] = []
        for (position, call) in calls.sorted(by: { $0.index < $1.index }).enumerated() {
            guard !call.name.isEmpty else { throw WireProblem(text: "tool call \(position + 1) has no function name") }
            result.append(ToolCall(id: call.id ?? "call_\(position + 1)", name: call.name, arguments: call.arguments))
        }
        return result
    }
}

/// An answer that broke the wire format, in words (never its content).
struct WireProblem: Error {
    let text: String
}

/// Splits a `text/event-stream` body into the data of its events (the WHATWG server-sent events rules):
/// lines end in LF, CR or CRLF, even when a chunk boundary falls between CR and LF; `data:` lines of
/// one event are joined with LF; a blank line ends an event; comments (`:`) and other fields are
/// skipped.
struct ServerSentEventParser {
    let maximumEventBytes: Int
    private var line: [UInt8] = []
    private var data: [UInt8]?
    private var afterCR = false
    private var started = false

    init(maximumEventBytes: Int = 1 << 20) {
        self.maximumEventBytes = maximumEventBytes
    }

    /// The events completed by `bytes`, or nil when one grew larger than the limit.
    mutating func feed(_ bytes: [UInt8]) -> [String]? {
        var events: [String] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == 0x0A { continue }
            }
            if byte == 0x0A || byte == 0x0D {
                afterCR = byte == 0x0D
                endLine(into: &events)
                continue
            }
            line.append(byte)
            guard line.count + (data?.count ?? 0) <= maximumEventBytes else { return nil }
        }
        return events
    }

    /// The event left open when the stream ended without a blank line, if any.
    mutating func finish() -> [String] {
        var events: [String] = []
        if !line.isEmpty { endLine(into: &events) }
        endLine(into: &events)
        return events
    }

    private mutating func endLine(into events: inout [String]) {
        defer { line.removeAll(keepingCapacity: true) }
        if !started {
            started = true
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }  // a byte order mark
        }
        guard !line.isEmpty else {
            if let data { events.append(String(decoding: data, as: UTF8.self)) }
            data = nil
            return
        }
        guard line[0] != UInt8(ascii: ":") else { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        guard line[..<colon].elementsEqual("data".utf8) else { return }
        var value = line[colon...].dropFirst()
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        if data == nil {
            data = Array(value)
        } else {
            data! += [0x0A] + value
        }
    }
}
