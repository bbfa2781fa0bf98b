import Foundation

// Anthropic's Messages API wire format (`POST /v1/messages`, `anthropic-version: 2023-06-01`): what Moat
// sends and the parts of the answers it reads. Unknown fields, content block types and stream event
// types are ignored, as the API's versioning policy asks of clients.

/// The body of `POST {base_url}/v1/messages`.
struct MessagesRequest: Encodable {
    let model: String
    let maxTokens: Int
    /// Every `system` message of the conversation, joined: the API takes the system prompt apart.
    let system: String?
    let messages: [MessagesTurn]
    let tools: [MessagesTool]?
    let stream: Bool

    enum CodingKeys: String, CodingKey {
        case model, system, messages, tools, stream
        case maxTokens = "max_tokens"
    }

    init(model: String, request: ModelRequest, maxTokens: Int, stream: Bool) throws(ToolParametersError) {
        self.model = model
        self.maxTokens = maxTokens
        self.stream = stream
        let systemText = request.messages.filter { $0.role == .system }.map(\.content).filter { !$0.isEmpty }
        system = systemText.isEmpty ? nil : systemText.joined(separator: "\n\n")
        messages = MessagesTurn.turns(request.messages)
        tools = request.tools.isEmpty ? nil : try request.tools.map(MessagesTool.init)
    }
}

/// One `user` or `assistant` turn. The API wants the roles to alternate, so consecutive messages of
/// one role (a tool result is a `user` turn) are merged into one turn of several content blocks.
struct MessagesTurn: Encodable {
    let role: String
    var content: [Block]

    enum Block: Encodable {
        case text(String)
        case toolUse(id: String, name: String, input: JSONValue)
        case toolResult(id: String, content: String)

        enum CodingKeys: String, CodingKey {
            case type, text, id, name, input, content
            case toolUseID = "tool_use_id"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .text(let text):
                try container.encode("text", forKey: .type)
                try container.encode(text, forKey: .text)
            case .toolUse(let id, let name, let input):
                try container.encode("tool_use", forKey: .type)
                try container.encode(id, forKey: .id)
                try container.encode(name, forKey: .name)
                try container.encode(input, forKey: .input)
            case .toolResult(let id, let content):
                try container.encode("tool_result", forKey: .type)
                try container.encode(id, forKey: .toolUseID)
                try container.encode(content, forKey: .content)
            }
        }
    }

    /// The conversation without its system messages, as alternating turns. Empty text is left out (the
    /// API refuses empty text blocks); a tool call's arguments that are not a JSON object (model output
    /// that was never valid) are sent as `{}`, since `input` must be an object.
    static func turns(_ messages: [ChatMessage]) -> [MessagesTurn] {
        var turns: [MessagesTurn] = []
        for message in messages where message.role != .system {
            var blocks: [Block] = []
            switch message.role {
            case .tool:
                blocks.append(.toolResult(id: message.toolCallID ?? "", content: message.content))
            case .assistant:
                if !message.content.isEmpty { blocks.append(.text(message.content)) }
                for call in message.toolCalls {
                    let parsed = try? JSONDecoder().decode(JSONValue.self, from: Data(call.arguments.utf8))
                    let input: JSONValue = if case .object = parsed { parsed! } else { .object([:]) }
                    blocks.append(.toolUse(id: call.id, name: call.name, input: input))
                }
            default:
                if !message.content.isEmpty { blocks.append(.text(message.content)) }
            }
            guard !blocks.isEmpty else { continue }
            let role = message.role == .assistant ? "assistant" : "user"
            if turns.last?.role == role {
                turns[turns.count - 1].content += blocks
            } else {
                turns.append(MessagesTurn(role: role, content: blocks))
            }
        }
        return turns
    }
}

struct MessagesTool: Encodable {
    let name: String
    let description: String
    let inputSchema: JSONValue

    enum CodingKeys: String, CodingKey {
        case name, description
        case inputSchema = "input_schema"
    }

    init(_ schema: ToolSchema) throws(ToolParametersError) {
        guard let parameters = try? JSONDecoder().decode(JSONValue.self, from: Data(schema.parameters.utf8)),
            case .object = parameters
        else { throw ToolParametersError(tool: schema.name) }
        name = schema.name
        description = schema.description
        inputSchema = parameters
    }
}

/// A whole answer (`"type": "message"`), or the `message` of a `message_start` event.
struct MessagesResponse: Decodable {
    let type: String?
    let content: [ContentBlock]?
    let stopReason: String?
    let usage: MessagesUsage?

    enum CodingKeys: String, CodingKey {
        case type, content, usage
        case stopReason = "stop_reason"
    }
}

/// A content block: `text` and `tool_use` are read; other types (`thinking`, …) are skipped.
struct ContentBlock: Decodable {
    let type: String
    let text: String?
    let id: String?
    let name: String?
    let input: JSONValue?
}

struct MessagesUsage: Decodable {
    let inputTokens: Int?
    let outputTokens: Int?

    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
    }
}

/// One server-sent event of a streamed answer; which fields are set depends on `type`.
struct MessagesStreamEvent: Decodable {
    let type: String
    let message: MessagesResponse?
    let index: Int?
    let contentBlock: ContentBlock?
    let delta: Delta?
    let usage: MessagesUsage?
    let error: ErrorDetail?

    struct Delta: Decodable {
        let type: String?
        let text: String?
        let partialJSON: String?
        let stopReason: String?

        enum CodingKeys: String, CodingKey {
            case type, text
            case partialJSON = "partial_json"
            case stopReason = "stop_reason"
        }
    }

    struct ErrorDetail: Decodable {
        let type: String?
    }

    enum CodingKeys: String, CodingKey {
        case type, message, index, delta, usage, error
        case contentBlock = "content_block"
    }
}
