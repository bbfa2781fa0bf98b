import MoatCore

/// One message of a conversation, as a model sees it.
public struct ChatMessage: Sendable, Hashable, Codable {
    public enum Role: String, Sendable, Hashable, Codable {
        case system, user, assistant, tool
    }

    public var role: Role
    /// The text; empty for an assistant message that only calls tools.
    public var content: String
    /// The tool calls an assistant message asked for, in order.
    public var toolCalls: [ToolCall]
    /// For a `tool` message: the id of the call it answers.
    public var toolCallID: String?

    public init(role: Role, content: String, toolCalls: [ToolCall] = [], toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }
}

/// A tool call as the model wrote it. Everything in it is model output: untrusted input that may not
/// even be valid JSON; the tool that receives it checks it.
public struct ToolCall: Sendable, Hashable, Codable {
    /// The provider's id for the call (`call_…`), echoed back in the `tool` message that answers it.
    public var id: String
    public var name: String
    /// The arguments as JSON text, exactly as the model produced them.
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// A tool offered to the model: its name, what it does, and the JSON Schema of its arguments.
public struct ToolSchema: Sendable, Hashable {
    public var name: String
    public var description: String
    /// The JSON Schema (an `object` schema) of the arguments, as JSON text.
    public var parameters: String

    public init(name: String, description: String, parameters: String) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

/// One model round: the conversation so far and the tools the model may call.
public struct ModelRequest: Sendable, Hashable {
    public var messages: [ChatMessage]
    public var tools: [ToolSchema]
    /// The most output tokens this round may produce (nil: the provider's setting).
    public var maximumOutputTokens: Int?

    public init(messages: [ChatMessage], tools: [ToolSchema] = [], maximumOutputTokens: Int? = nil) {
        self.messages = messages
        self.tools = tools
        self.maximumOutputTokens = maximumOutputTokens
    }
}

/// Tokens one round consumed, as the server reported them.
public struct TokenUsage: Sendable, Hashable, Codable {
    public var input: Int
    public var output: Int

    public init(input: Int, output: Int) {
        self.input = input
        self.output = output
    }
}

/// What the model answered in one round: text, tool calls, or both.
public struct ModelReply: Sendable, Hashable {
    public var text: String
    public var toolCalls: [ToolCall]
    /// The server's `finish_reason` (`stop`, `tool_calls`, `length`, …), when it sent one.
    public var finishReason: String?
    /// Nil when the server did not report usage.
    public var usage: TokenUsage?

    public init(text: String, toolCalls: [ToolCall] = [], finishReason: String? = nil, usage: TokenUsage? = nil) {
        self.text = text
        self.toolCalls = toolCalls
        self.finishReason = finishReason
        self.usage = usage
    }
}

/// A model behind one wire format (OpenAI-compatible chat completions first).
///
/// The pipeline (MoatAgent) calls ``complete(_:onText:)`` once per model round and decides what happens
/// with every tool call itself; a provider never runs a tool and never sees a secret value (an API key is
/// taken from the vault at egress, inside the provider, and never reaches a message or an error).
public protocol ModelProvider: Sendable {
    /// The provider's name in `config.yaml` (`providers.NAME`), for audit entries and messages.
    var name: String { get }

    /// Runs one round. `onText` receives the reply's text as it arrives when the provider streams
    /// (never tool-call arguments); the returned reply holds the whole text and every assembled call.
    func complete(
        _ request: ModelRequest, onText: @escaping @Sendable (String) async -> Void
    ) async throws(ProviderError) -> ModelReply

    /// The most tokens a round to this provider may send (`providers.NAME.context_tokens`); nil: the
    /// agent's `agent.context_tokens` applies.
    var contextTokens: Int? { get }
}

extension ModelProvider {
    public var contextTokens: Int? { nil }
}
