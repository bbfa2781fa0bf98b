import Foundation
import MoatAudit
import MoatCore
import MoatPolicy
import MoatProviders
import MoatTools
import MoatVault

/// What one turn carries from step to step.
struct TurnState: Sendable {
    let conversation: String
    let turn: String
    let principal: Principal
    let started: Date
    /// The conversation's taint plus what this turn read.
    var taint: ConversationTaint
    /// The conversation as the model sees it (without the system prompt).
    var messages: [ChatMessage]
    var rounds = 0
    var toolCalls = 0
    var pending: [PendingAction] = []
    var described: [String] = []
    var calls: [CallReport] = []
    /// Who watches the turn live, if anyone.
    var observer: TurnObserver?
    /// The providers the turn may use and the one that answered (Agent+Routing.swift).
    var route: TurnRoute?
    /// What the route is chosen from, once read (or as the message's commit stored it).
    var routeInputs: ConversationStore.RouteInputs?
    /// The principal's tokens on a day as read with the turn's start: the first round's budget check uses
    /// them instead of reading again (nothing of this turn was counted yet).
    var tokensRead: (day: String, tokens: Int)?

    init(
        conversation: String, turn: String, principal: Principal, started: Date, taint: ConversationTaint,
        messages: [ChatMessage]
    ) {
        self.conversation = conversation
        self.turn = turn
        self.principal = principal
        self.started = started
        self.taint = taint
        self.messages = messages
    }

    func outcome(reply: String, stoppedBy: BudgetStop?) -> TurnOutcome {
        TurnOutcome(
            conversationID: conversation, turnID: turn, reply: reply, stoppedBy: stoppedBy, pending: pending,
            described: described, calls: calls, rounds: rounds, provider: route?.answered,
            fallbacks: route?.fallbacks ?? [])
    }
}

extension Agent {
    // MARK: Rounds

    /// Model rounds until the model answers without tool calls or a budget stops the turn; the
    /// observer's last event is `.finished`.
    nonisolated func runRounds(_ state: inout TurnState) async throws -> TurnOutcome {
        let outcome = try await modelRounds(&state)
        await state.observer?.emit(.finished(outcome))
        return outcome
    }

    private nonisolated func modelRounds(_ state: inout TurnState) async throws -> TurnOutcome {
        let principal = state.principal.description
        while true {
            let day = Self.day(now())
            let tokens: Int
            if let read = state.tokensRead, read.day == day {
                tokens = read.tokens
            } else {
                tokens = try await store.tokensUsed(principal: principal, day: day)
            }
            state.tokensRead = nil
            if let stop = TurnBudget.beforeRound(budgetUsage(state, tokensToday: tokens), settings: settings) {
                return try await stopTurn(state, stop)
            }
            state.rounds += 1
            let window = try await contextWindow(&state)
            let request = ModelRequest(messages: window.messages, tools: schemas)
            let reply: ModelReply
            let provider: String
            let result: RoundResult
            do {
                result = try await routedRound(request, &state, day: day)
            } catch let error as AgentError where error.code == .provider {
                throw AgentError(.provider, Self.keptAfter(error.message, state))
            }
            switch result {
            case .stopped(let outcome): return outcome
            case .answered(let answer, let name): (reply, provider) = (answer, name)
            }
            let usage = reply.usage ?? Self.estimate(request, reply)
            let assistant = ChatMessage(role: .assistant, content: reply.text, toolCalls: reply.toolCalls)
            state.messages.append(assistant)
            // The last round's rows and `agent.reply` are committed together.
            let replied =
                reply.toolCalls.isEmpty
                ? Self.event(
                    "agent.reply", state.principal, state.conversation, "success",
                    [
                        "turn": .string(state.turn), "rounds": .int(Int64(state.rounds)),
                        "tool_calls": .int(Int64(state.toolCalls)), "usage_in": .int(Int64(usage.input)),
                        "usage_out": .int(Int64(usage.output)), "reported_usage": .bool(reply.usage != nil),
                        "provider": .string(provider),
                    ]) : nil
            try await store.recordRound(
                [StoredMessage(turn: state.turn, message: assistant)], conversation: state.conversation,
                principal: principal, day: day, provider: provider, usage: usage, now: Self.millis(now()),
                entry: replied)
            if replied != nil { return state.outcome(reply: vault.scrub(reply.text), stoppedBy: nil) }
            for (index, call) in reply.toolCalls.enumerated() {
                if let stop = TurnBudget.beforeToolCall(budgetUsage(state, tokensToday: 0), settings: settings) {
                    // Every call gets an answer, so the conversation stays well-formed for the next turn.
                    var answers: [StoredMessage] = []
                    for skipped in reply.toolCalls[index...] {
                        let answer = ChatMessage(
                            role: .tool, content: "Not run: \(stop.message)", toolCallID: skipped.id)
                        state.messages.append(answer)
                        answers.append(StoredMessage(turn: state.turn, message: answer))
                        state.calls.append(
                            CallReport(
                                id: "", tool: Self.printable(skipped.name), decision: .skipped, level: nil,
                                explanation: stop.message, outcome: ""))
                        await state.observer?.emit(
                            .toolFinished(
                                FinishedCall(
                                    index: state.toolCalls + answers.count, report: state.calls[state.calls.count - 1]))
                        )
                    }
                    try await store.append(answers, conversation: state.conversation, now: Self.millis(now()))
                    return try await stopTurn(state, stop)
                }
                state.toolCalls += 1
                if let observer = state.observer, observer.watched {
                    await observer.emit(
                        .toolProposed(
                            ProposedCall(
                                index: state.toolCalls, round: state.rounds,
                                tool: observer.excerpt(call.name, limit: 64),
                                domain: tools[call.name]?.domain,
                                arguments: observer.excerpt(call.arguments, limit: 200))))
                }
                let content = try await gate(call, &state)
                if let report = state.calls.last {
                    await state.observer?.emit(.toolFinished(FinishedCall(index: state.toolCalls, report: report)))
                }
                let answer = ChatMessage(role: .tool, content: content, toolCallID: call.id)
                state.messages.append(answer)
                try await store.append(
                    [StoredMessage(turn: state.turn, message: answer)], conversation: state.conversation,
                    now: Self.millis(now()))
            }
        }
    }

    private nonisolated func budgetUsage(_ state: TurnState, tokensToday: Int) -> TurnBudget.Usage {
        TurnBudget.Usage(
            rounds: state.rounds, toolCalls: state.toolCalls, elapsed: now().timeIntervalSince(state.started),
            tokensToday: tokensToday)
    }

    private nonisolated func stopTurn(_ state: TurnState, _ stop: BudgetStop) async throws -> TurnOutcome {
        await state.observer?.emit(.budgetReached(stop))
        try await record(
            "agent.budget", state.principal, state.conversation, "denied",
            [
                "limit": .string(stop.limit.rawValue), "turn": .string(state.turn),
                "rounds": .int(Int64(state.rounds)), "tool_calls": .int(Int64(state.toolCalls)),
            ])
        // The owner hears of it whoever wrote: a contact's runaway turn is otherwise only in the audit log.
        await notifier.notify(
            OwnerNotice(
                kind: .budgetReached, conversationID: state.conversation,
                text: "a turn of \(state.principal) stopped at a budget: \(stop.message)"))
        return state.outcome(reply: stop.message, stoppedBy: stop)
    }

    /// Token use when the server reports none: about four bytes of text per token.
    static func estimate(_ request: ModelRequest, _ reply: ModelReply) -> TokenUsage {
        TokenUsage(
            input: request.messages.reduce(TokenEstimate.tools(request.tools)) { $0 + TokenEstimate.message($1) },
            output: TokenEstimate.message(
                ChatMessage(role: .assistant, content: reply.text, toolCalls: reply.toolCalls)))
    }

    /// A failed round in the owner's words: the provider's message, and that nothing of the conversation
    /// was lost (the message is stored before the first round) with how to go on in it.
    static func keptAfter(_ message: String, _ state: TurnState) -> String {
        let id = state.conversation
        let next =
            state.principal == .owner
            ? "continue it with `moat chat --conversation \(id)` once the model server answers"
            : "the next message in it continues it"
        return "\(message). Nothing was lost: the conversation is kept in moat.db as \(id); \(next)"
    }

    /// The round's messages fitted to the context budget (``ContextWindow``).
    nonisolated func contextWindow(_ state: inout TurnState) async throws -> ContextWindow {
        let budget = try await contextBudget(&state)
        switch ContextWindow.fit(
            systemPrompt: settings.systemPrompt, history: state.messages, tools: schemas, budget: budget)
        {
        case .success(let window): return window
        case .failure(let overflow):
            throw AgentError(.invalidInput, "Moat did not send the model round: " + overflow.explanation)
        }
    }

    /// The budget of a round: the smallest `context_tokens` among the providers that may answer it (the
    /// one that answered the turn, else the turn's route), each provider's own or `agent.context_tokens`.
    /// The same request goes to a fallback, so it must fit every provider it may reach.
    nonisolated func contextBudget(_ state: inout TurnState) async throws -> Int {
        var names = state.route.map { route in route.answered.map { [$0] } ?? route.candidates }
        if names == nil {
            let inputs = try await routeInputs(&state)
            names = routing.route(for: state.principal, channel: inputs.channel, chosen: inputs.chosen).names
        }
        let budgets = (names ?? []).compactMap { name in
            routing.members[name].map {
                $0.settings.contextTokens ?? $0.provider.contextTokens ?? settings.contextTokens
            }
        }
        return budgets.min() ?? settings.contextTokens
    }

    // MARK: One tool call

    /// Decides one call and carries the decision out; returns what the model is told.
    nonisolated func gate(_ call: ToolCall, _ state: inout TurnState) async throws -> String {
        guard let tool = tools[call.name] else {
            return try await invalid(
                call, &state, reason: "unknown_tool",
                tell: "There is no tool named \(Self.printable(call.name)). The tools are: "
                    + "\(tools.keys.sorted().joined(separator: ", ")).")
        }
        let prepared: PreparedCall
        do {
            prepared = try tool.prepare(call.arguments)
        } catch {
            return try await invalid(
                call, &state, reason: "invalid_arguments",
                tell: "The arguments of \(tool.name) were not accepted: \(vault.scrub(error.message)) "
                    + "Correct them and call \(tool.name) again.")
        }
        let trust = try await policy.trust(tool.domain)
        let decision = TrustDecision.evaluate(
            domainLevel: trust.level, principal: state.principal, domain: tool.domain, action: tool.name,
            taint: state.taint)
        let kind = Self.decision(decision.level)
        let summary = vault.scrub(prepared.summary)
        await state.observer?.emit(
            .toolDecided(
                DecidedCall(
                    index: state.toolCalls, tool: tool.name, decision: kind, domainLevel: trust.level,
                    level: decision.level, limitedBy: decision.limitedBy.map(\.rawValue),
                    explanation: decision.explanation,
                    taintReasons: decision.limitedBy.contains(.taint) ? state.taint.reasons : [])))
        var approvalID: String?
        if kind == .pending {
            approvalID =
                try await policy.requestApproval(
                    ActionRequest(
                        tool: prepared.tool, arguments: prepared.arguments, destination: prepared.destination),
                    domain: tool.domain, principal: state.principal
                ).id
        }
        let row = ToolCallRow(
            id: Self.newID(), conversation: state.conversation, turn: state.turn, round: state.rounds,
            callID: call.id, tool: tool.name, domain: tool.domain.rawValue, arguments: prepared.arguments,
            destination: prepared.destination, level: decision.level.rawValue, decision: kind,
            limitedBy: decision.limitedBy.map(\.rawValue).joined(separator: ","),
            taint: state.taint.reasons.joined(separator: "; "), approvalID: approvalID,
            createdAt: Self.millis(now()))
        let runs = kind == .ran || kind == .ranAndReported
        try await store.insert(row, outcome: runs ? "running" : kind == .pending ? "pending" : "")
        if runs {
            return try await execute(tool, prepared, row, report: kind, explanation: decision.explanation, &state)
        }
        try await record(
            "agent.tool.call", state.principal, row.id, kind == .refused ? "denied" : "success", Self.metadata(row))
        state.calls.append(
            CallReport(
                id: row.id, tool: tool.name, decision: kind, level: decision.level, explanation: decision.explanation,
                outcome: ""))
        switch kind {
        case .refused:
            return "Refused by the gateway: \(decision.explanation). Do not try to reach the same result another way."
        case .described:
            state.described.append(summary)
            return "Not run: \(decision.explanation). The user was shown what it would do: \(prepared.summary)"
        default:
            let approval = approvalID ?? ""
            let taintReasons = decision.limitedBy.contains(.taint) ? state.taint.reasons : []
            let action = PendingAction(
                approvalID: approval, tool: tool.name, domain: tool.domain, summary: summary,
                explanation: decision.explanation, taintReasons: taintReasons)
            state.pending.append(action)
            await state.observer?.emit(.approvalPending(action))
            let cause = taintReasons.isEmpty ? "" : " (tainted: \(taintReasons.joined(separator: "; ")))"
            await notifier.notify(
                OwnerNotice(
                    kind: .approvalPending, conversationID: state.conversation, approvalID: approval,
                    text: "\(summary) waits for your approval \(approval): \(decision.explanation)\(cause)"))
            return "Held for the owner's approval (\(approval)): \(decision.explanation). It runs only if the owner "
                + "approves it; tell the user it is waiting for the owner."
        }
    }

    /// Runs a call whose audit entry is appended first; returns what the model is told.
    nonisolated func execute(
        _ tool: any Tool, _ prepared: PreparedCall, _ row: ToolCallRow, report: CallDecision, explanation: String,
        _ state: inout TurnState
    ) async throws -> String {
        let context = ToolContext(
            principal: state.principal, conversationID: state.conversation,
            recordSecretUse: secretUseRecorder(
                state.principal, tool: tool.name, call: row.id, conversation: state.conversation))
        let event = AuditEvent(
            actor: state.principal.description, action: "agent.tool.run", target: row.id, metadata: Self.metadata(row))
        var reportOutcome = "success"
        defer {
            state.calls.append(
                CallReport(
                    id: row.id, tool: tool.name, decision: report, level: TrustLevel(rawValue: row.level),
                    explanation: explanation, outcome: reportOutcome))
        }
        let output: ToolOutput
        do {
            output = try await audit.performAfterAudit(event) { try await tool.run(prepared, context: context) }
        } catch is AuditError {
            reportOutcome = "refused"
            try await store.finish(
                row.id, outcome: "refused", resultBytes: nil, now: Self.millis(now()), expected: "running")
            return "Not run: the gateway's audit log could not record this call, so the gateway refused it. "
                + "Tell the user; do not retry it."
        } catch let error as ToolError {
            reportOutcome = "failed"
            try await store.finish(
                row.id, outcome: "failed", resultBytes: nil, now: Self.millis(now()), expected: "running")
            try await record(
                "agent.tool.result", state.principal, row.id, "failure",
                ["tool": .string(tool.name), "code": .string(error.code.description)])
            return "\(tool.name) failed: \(vault.scrub(error.message))"
        }
        let text = Self.cut(vault.scrub(output.text), bytes: settings.toolOutputBytes)
        let flags = InjectionFlagger.scan(text)
        if output.external || !flags.isEmpty {
            let source: ContentSource = tool.domain == .web ? .web : .toolOutput
            let read = ConversationTaint.clean.reading(from: source, flags: flags).reasons
            for reason in read where !state.taint.reasons.contains(reason) {
                state.taint.reasons.append(reason)
                try await policy.taint(state.conversation, reason: reason)
            }
        }
        try await store.finish(
            row.id, outcome: "success", resultBytes: text.utf8.count, now: Self.millis(now()), expected: "running")
        try await record(
            "agent.tool.result", state.principal, row.id, "success",
            [
                "tool": .string(tool.name), "bytes": .int(Int64(text.utf8.count)), "external": .bool(output.external),
                "truncated": .bool(output.truncated || text.utf8.count < output.text.utf8.count),
                "flags": .array(flags.map { .string($0.kind.rawValue) }),
            ])
        if report == .ranAndReported {
            await notifier.notify(
                OwnerNotice(
                    kind: .actionTaken, conversationID: state.conversation,
                    text: "ran \(tool.name): \(vault.scrub(prepared.summary)) (\(explanation))"))
        }
        return text
    }

    private nonisolated func invalid(_ call: ToolCall, _ state: inout TurnState, reason: String, tell: String)
        async throws
        -> String
    {
        try await record(
            "agent.tool.invalid", state.principal, state.conversation, "denied",
            ["tool": .string(Self.printable(call.name)), "reason": .string(reason), "turn": .string(state.turn)])
        state.calls.append(
            CallReport(
                id: "", tool: Self.printable(call.name), decision: .invalid, level: nil, explanation: tell, outcome: "")
        )
        return tell
    }

    static func decision(_ level: TrustLevel) -> CallDecision {
        switch level {
        case .none: .refused
        case .inform: .described
        case .suggest: .pending
        case .actAndReport: .ranAndReported
        case .fullAutonomy: .ran
        }
    }

    /// Records each vault secret a call is about to send as a `vault.use` entry (target: the secret's name;
    /// the tool, host, call and conversation — never a value), durable before the request leaves.
    nonisolated func secretUseRecorder(_ principal: Principal, tool: String, call: String, conversation: String)
        -> ToolContext.SecretUseRecorder
    {
        let audit = audit
        return { names, host in
            for name in names {
                _ = try await audit.append(
                    AuditEvent(
                        actor: principal.description, action: "vault.use", target: name,
                        metadata: [
                            "tool": .string(tool), "host": .string(host), "call": .string(call),
                            "conversation": .string(conversation),
                        ]))
            }
        }
    }

    /// A call's audit metadata: what, where, at which level and why; never the arguments.
    static func metadata(_ row: ToolCallRow) -> [String: AuditValue] {
        [
            "conversation": .string(row.conversation), "turn": .string(row.turn), "tool": .string(row.tool),
            "domain": .string(row.domain), "destination": .string(PrintableText.excerpt(row.destination, limit: 200)),
            "level": .int(Int64(row.level)), "decision": .string(row.decision.rawValue),
            "limited_by": .string(row.limitedBy), "approval": row.approvalID.map { .string($0) } ?? .null,
        ]
    }

    /// `text` cut to at most `bytes` UTF-8 bytes on a character boundary, with a marker saying so.
    static func cut(_ text: String, bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var kept = 0
        var end = text.startIndex
        for index in text.indices {
            let size = text[index].utf8.count
            if kept + size > bytes { break }
            kept += size
            end = text.index(after: index)
        }
        return String(text[..<end]) + "\n[cut by Moat at \(bytes) bytes]"
    }
}
