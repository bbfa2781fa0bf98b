import MoatProviders

/// What one model round sends: the system prompt, then as much of the conversation as fits the context
/// budget (`agent.context_tokens`, or the provider's `context_tokens`). A pure decision: no I/O.
///
/// The rules, in order:
/// - The system prompt is always sent first and whole; a budget never displaces it. When older messages
///   are left out, a note saying so is appended after it (inside the same system message, as some chat
///   templates refuse a second system message).
/// - Messages go in *units* that are sent whole or not at all: an assistant message that called tools
///   together with the `tool` messages answering every one of its calls; any other message alone. Both
///   wire formats refuse a tool result without its call and a call without its result, so a `tool`
///   message that answers no call just before it, and a call whose answers are missing (a turn that
///   died half way), are never sent.
/// - The current user message (the last one) and the newest unit (the round the model must answer: its
///   tool results) are always kept. When they alone do not fit, the round is refused with the numbers
///   and the fix, rather than sending something the server would cut or refuse.
/// - Otherwise the oldest units are left out first: the kept units are the newest ones that fit, without
///   gaps, and the window starts at a user message (Anthropic's API wants the first turn to be `user`).
///
/// Tokens are estimated, not counted (Moat has no tokenizer of the model): see ``TokenEstimate``.
struct ContextWindow: Sendable, Equatable {
    /// The system message first, then the kept messages in order.
    let messages: [ChatMessage]
    /// Messages of the conversation left out to fit the budget (the note tells the model how many).
    let leftOut: Int
    /// Messages never sent because they break the tool-call pairing.
    let unpaired: Int
    /// The estimated size of the request: system prompt (and note), tool schemas and messages.
    let estimatedTokens: Int

    /// Why a round cannot fit: what must be sent is larger than the budget.
    struct Overflow: Error, Equatable {
        /// Estimated tokens of what must be sent.
        let needed: Int
        let budget: Int
        /// The part that weighs most, in words ("the latest tool results").
        let largest: String

        /// What the owner reads: the numbers, and what to change.
        var explanation: String {
            "this round needs about \(needed) tokens (the system prompt, the tool schemas, the current message "
                + "and the latest tool results; \(largest) weighs most), more than the context budget of \(budget) "
                + "tokens: raise agent.context_tokens (or providers.NAME.context_tokens) if the model has room, or "
                + "lower agent.tool_output_bytes, or send a shorter message"
        }
    }

    /// The note appended to the system prompt when `count` messages were left out.
    static func note(leftOut count: Int) -> String {
        "[Moat: the \(count) oldest messages of this conversation were left out to fit the model's context "
            + "budget. Do not guess what they said; ask the user when you need it.]"
    }

    /// The window for one round.
    /// - Parameters:
    ///   - systemPrompt: sent first, whole, every round.
    ///   - history: the conversation, oldest first, without system messages (any found are not sent).
    ///   - tools: the schemas offered this round (they count toward the budget).
    ///   - budget: the most tokens the request may hold.
    static func fit(
        systemPrompt: String, history: [ChatMessage], tools: [ToolSchema], budget: Int
    ) -> Result<ContextWindow, Overflow> {
        let (units, unpaired) = Self.units(history)
        let fixed =
            TokenEstimate.message(ChatMessage(role: .system, content: systemPrompt)) + TokenEstimate.tools(tools)
        let all = units.reduce(0) { $0 + $1.tokens }
        if fixed + all <= budget {
            let kept = units.flatMap { unit in history[unit.range] }
            return .success(
                ContextWindow(
                    messages: [ChatMessage(role: .system, content: systemPrompt)] + kept, leftOut: 0,
                    unpaired: unpaired, estimatedTokens: fixed + all))
        }
        // Some unit is left out: room for the note, sized for the largest count it could say.
        let noteTokens = TokenEstimate.text("\n\n" + note(leftOut: history.count))
        var pinned = Set<Int>()
        if let user = units.lastIndex(where: \.isUser) { pinned.insert(user) }
        if !units.isEmpty { pinned.insert(units.count - 1) }
        let pinnedTokens = pinned.reduce(0) { $0 + units[$1].tokens }
        let needed = fixed + noteTokens + pinnedTokens
        guard needed <= budget else {
            let parts = [
                ("the system prompt", TokenEstimate.text(systemPrompt)),
                ("the tool schemas", TokenEstimate.tools(tools)),
                ("the current message", units.last(where: \.isUser)?.tokens ?? 0),
                ("the latest tool results", units.last.flatMap { $0.isUser ? nil : $0.tokens } ?? 0),
            ]
            let largest = parts.max { $0.1 < $1.1 }?.0 ?? "the system prompt"
            return .failure(Overflow(needed: needed, budget: budget, largest: largest))
        }
        // The newest units that fit, without gaps; the pinned ones whatever their place.
        var room = budget - needed
        var kept = pinned
        for index in units.indices.reversed() where !pinned.contains(index) {
            guard units[index].tokens <= room else { break }
            room -= units[index].tokens
            kept.insert(index)
        }
        // The window starts at a user message; a pinned unit is never dropped.
        var order = kept.sorted()
        while let first = order.first, !units[first].isUser, !pinned.contains(first) { order.removeFirst() }
        let sent = order.flatMap { history[units[$0].range] }
        let leftOut = units.reduce(0) { $0 + $1.range.count } - sent.count
        var system = systemPrompt
        if leftOut > 0 { system += "\n\n" + note(leftOut: leftOut) }
        let tokens =
            TokenEstimate.message(ChatMessage(role: .system, content: system)) + TokenEstimate.tools(tools)
            + order.reduce(0) { $0 + units[$1].tokens }
        return .success(
            ContextWindow(
                messages: [ChatMessage(role: .system, content: system)] + sent, leftOut: leftOut, unpaired: unpaired,
                estimatedTokens: tokens))
    }

    /// A run of messages sent whole or not at all.
    struct Unit: Equatable {
        let range: Range<Int>
        let tokens: Int
        let isUser: Bool
    }

    /// The history in units; `unpaired` counts the messages that fit in no well-formed unit.
    static func units(_ history: [ChatMessage]) -> (units: [Unit], unpaired: Int) {
        var units: [Unit] = []
        var unpaired = 0
        var index = 0
        while index < history.count {
            let message = history[index]
            var end = index + 1
            switch message.role {
            case .assistant where !message.toolCalls.isEmpty:
                var unanswered = Set(message.toolCalls.map(\.id))
                while end < history.count, history[end].role == .tool, let id = history[end].toolCallID,
                    unanswered.remove(id) != nil
                {
                    end += 1
                }
                guard unanswered.isEmpty else {
                    unpaired += end - index
                    index = end
                    continue
                }
            case .tool, .system:
                unpaired += 1
                index = end
                continue
            default:
                break
            }
            let tokens = history[index..<end].reduce(0) { $0 + TokenEstimate.message($1) }
            units.append(Unit(range: index..<end, tokens: tokens, isUser: message.role == .user))
            index = end
        }
        return (units, unpaired)
    }
}

/// Moat's token estimate: about four bytes of UTF-8 per token, rounded up, plus a few tokens of framing
/// per message and per tool. Moat has no tokenizer of the model; four bytes per token is close for
/// English prose and code with the common BPE tokenizers, and under-counts text in scripts that take
/// several bytes per character but often a token each (CJK): leave a margin below the model's window.
enum TokenEstimate {
    /// Tokens a chat template adds around one message (role markers, separators) or one tool.
    static let framing = 4

    /// `text` at four bytes a token, rounded up.
    static func text(_ text: String) -> Int { (text.utf8.count + 3) / 4 }

    /// One message: its text, its tool calls (id, name, arguments), the id it answers, and framing.
    static func message(_ message: ChatMessage) -> Int {
        var bytes = message.content.utf8.count + (message.toolCallID?.utf8.count ?? 0)
        for call in message.toolCalls { bytes += call.id.utf8.count + call.name.utf8.count + call.arguments.utf8.count }
        return (bytes + 3) / 4 + framing
    }

    /// The tool schemas of a request: name, description and parameter schema of each, and framing.
    static func tools(_ tools: [ToolSchema]) -> Int {
        tools.reduce(0) { total, tool in
            total + text(tool.name + tool.description + tool.parameters) + framing
        }
    }
}
