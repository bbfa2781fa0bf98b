public import Foundation
public import MoatProviders

/// The agent's settings from `config.yaml` (`agent:`): the model to use, the system prompt and every
/// budget a turn runs under. Defaults are what a fresh install runs with.
public struct AgentSettings: Sendable, Equatable {
    /// The default system prompt: who the model works for and that the gateway decides what runs.
    public static let defaultSystemPrompt =
        "You are a personal assistant running behind Moat, a security gateway. Use the tools when they help. "
        + "Every tool call is checked by the gateway; when it refuses a call or holds it for the owner's "
        + "approval, say so plainly instead of trying another way around it."

    /// `agent.provider`: the name of the provider under `providers:` that answers (`local` by default),
    /// for every principal no route of ``routes`` names.
    public var provider = "local"
    /// `agent.routes`: who is answered by which providers, each an ordered fallback list
    /// (Docs/Providers.md, "Routing"). Empty: everyone gets ``provider``.
    public var routes: [ProviderRoute] = []
    /// `agent.system_prompt`.
    public var systemPrompt = AgentSettings.defaultSystemPrompt
    /// `agent.max_tool_calls_per_turn`: tool calls one turn may make (each counts, whatever its level).
    public var maxToolCallsPerTurn = 16
    /// `agent.max_rounds_per_turn`: model rounds one turn may take.
    public var maxRoundsPerTurn = 8
    /// `agent.turn_seconds`: wall time of one turn, checked before each model round and each tool call.
    public var turnTimeLimit: TimeInterval = 120
    /// `agent.tokens_per_day`: model tokens (input + output) each principal may use per UTC day.
    public var tokensPerDay = 1_000_000
    /// `agent.messages_per_minute`: messages one principal may send on one channel per minute.
    public var messagesPerMinute = 30
    /// `agent.tool_output_bytes`: the most of one tool result the model sees (cut with a marker).
    public var toolOutputBytes = 16 * 1024
    /// `agent.history_messages`: the most earlier messages of a conversation sent with each round.
    public var historyMessages = 60
    /// `agent.message_bytes`: the longest inbound message accepted.
    public var messageBytes = 32 * 1024
    /// `agent.context_tokens`: the most tokens (estimated at four bytes a token) one model round sends:
    /// system prompt, tool schemas and as much of the conversation as fits, oldest messages left out first
    /// (a provider's `context_tokens` overrides it). Leave room for the answer below the model's window.
    public var contextTokens = 16_000

    public init() {}
}

/// One entry of `agent.routes`: the principals it applies to and the providers that answer them, the
/// first that is available first.
public struct ProviderRoute: Sendable, Equatable {
    public var principals: PrincipalPattern
    /// Names under `providers:`, in the order they are tried.
    public var providers: [String]
    /// The line of `config.yaml` it was read from (0: not from a file), for messages.
    public var line: Int

    public init(principals: PrincipalPattern, providers: [String], line: Int = 0) {
        self.principals = principals
        self.providers = providers
        self.line = line
    }
}
