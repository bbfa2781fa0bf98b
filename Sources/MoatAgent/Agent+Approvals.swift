import Foundation
import MoatAudit
import MoatCore
import MoatPolicy
import MoatProviders
import MoatTools

extension Agent {
    /// The owner approves the call held under `approvalID`: exactly the stored call runs (its request is
    /// rebuilt from the verified tool-call row and must hash to the approved one), once, and the
    /// conversation continues with another model round.
    ///
    /// An approval already decided with `moat approvals approve` is used as it is.
    /// - Throws: ``AgentError`` `.notFound` (no verified held call), `.refused` (already used, expired,
    ///   denied, a changed request, or the audit log could not record a step), `.busy`, `.provider`.
    ///
    /// - Parameter events: the continued turn, live (as ``handle(_:events:)`` shows a turn).
    public func approve(
        _ approvalID: String, actor: String = "owner", events: (@Sendable (TurnEvent) async -> Void)? = nil
    ) async throws(AgentError) -> TurnOutcome {
        try await resume(approvalID, approve: true, reason: "", actor: actor, events: events)
    }

    /// The owner denies the call held under `approvalID`; the model is told and answers the user.
    public func deny(
        _ approvalID: String, reason: String = "", actor: String = "owner",
        events: (@Sendable (TurnEvent) async -> Void)? = nil
    ) async throws(AgentError) -> TurnOutcome {
        try await resume(approvalID, approve: false, reason: reason, actor: actor, events: events)
    }

    /// Why the call held under `approvalID` waits, for the owner's view of the approval: what set its
    /// level (the domain's trust, the principal's ceiling, the taint cap) and, when the taint did, its
    /// causes. Nil when no verified agent call holds it.
    public nonisolated func holdReason(approvalID: String) async -> String? {
        guard case .held(let call, _)? = try? await store.call(approvalID: approvalID) else { return nil }
        let limits = call.limitedBy.split(separator: ",").map { limit in
            switch limit {
            case "domain": "the \(call.domain) trust level"
            case "principal": "the sender's ceiling"
            case "taint": "the taint cap"
            default: String(limit)
            }
        }
        var text = "level \(call.level), set by "
        text += limits.isEmpty ? "the \(call.domain) trust level" : limits.joined(separator: " and ")
        if call.limitedBy.split(separator: ",").contains("taint") && !call.taint.isEmpty {
            text += "; tainted: " + call.taint
        }
        return PrintableText.excerpt(text, limit: 1000)
    }

    private func resume(
        _ approvalID: String, approve: Bool, reason: String, actor: String,
        events: (@Sendable (TurnEvent) async -> Void)?
    ) async throws(AgentError) -> TurnOutcome {
        let id = Self.printable(approvalID)
        let call: ToolCallRow
        let outcome: String
        switch try await mapped({ try await self.store.call(approvalID: approvalID) }) {
        case .held(let row, let current):
            (call, outcome) = (row, current)
        case .none:
            throw AgentError(
                .notFound, "no tool call is held under approval \(id); moat approvals list shows the pending ones")
        case .tampered:
            // Refused, not "not found": the caller would otherwise decide the approval without the agent
            // and tell the owner it was approved, while the changed call can never run.
            _ = try? await audit.append(
                AuditEvent(
                    actor: actor, action: "agent.approval.refused", target: approvalID, outcome: "denied",
                    metadata: ["approval": .string(approvalID), "code": "tamper"]))
            throw AgentError(
                .refused,
                "the tool call held under approval \(id) failed its integrity check (its row in moat.db was changed "
                    + "outside Moat); nothing was run and the approval was left as it was. Run moat doctor")
        }
        guard outcome == "pending" else {
            throw AgentError(
                .refused, "the call held under approval \(id) was already \(outcome); an approval runs one call once")
        }
        guard busy.insert(call.conversation).inserted else {
            throw AgentError(
                .busy, "a turn is still running in that conversation; decide the approval again when it ends")
        }
        defer { busy.remove(call.conversation) }
        let observer = events.map { TurnObserver(vault: vault, sink: $0) }
        return try await mapped {
            try await self.continueAfterDecision(
                call, approvalID: approvalID, approve: approve, reason: reason, actor: actor, observer: observer)
        }
    }

    private nonisolated func continueAfterDecision(
        _ call: ToolCallRow, approvalID: String, approve: Bool, reason: String, actor: String,
        observer: TurnObserver?
    ) async throws -> TurnOutcome {
        let id = Self.printable(approvalID)
        guard let conversation = try await store.conversation(call.conversation) else {
            throw AgentError(
                .refused,
                "the conversation of approval \(id) failed its integrity check in moat.db; nothing was run (run moat doctor)"
            )
        }
        let principal = try await principal(of: conversation)
        let record = try await policy.approval(approvalID)
        var state = try await newTurn(
            conversation: call.conversation, turn: Self.newID(), principal: principal, started: now())
        // The approved call runs before the first round (a network call can take long): its budget check
        // reads the tokens then, not as they were now.
        state.tokensRead = nil
        state.observer = observer
        // The model sees its call again under a new id, answered with the result or the denial.
        let again = ToolCall(id: "approved-\(approvalID)", name: call.tool, arguments: call.arguments)
        let asked = ChatMessage(role: .assistant, content: "", toolCalls: [again])
        let answer: String
        if approve {
            guard let tool = tools[call.tool] else {
                throw AgentError(
                    .refused, "the tool \(Self.printable(call.tool)) is no longer offered; nothing was run")
            }
            // The tool checks the stored arguments again; its canonical form must be the stored one.
            let prepared = try tool.prepare(call.arguments)
            guard prepared.tool == call.tool, prepared.arguments == call.arguments,
                prepared.destination == call.destination
            else {
                throw AgentError(
                    .refused, "the call held under approval \(id) no longer reads the same; it was not run")
            }
            if record.status == .pending { try await policy.approve(approvalID, actor: actor) }
            let request = ActionRequest(tool: call.tool, arguments: call.arguments, destination: call.destination)
            do {
                _ = try await policy.consume(approvalID, request: request)
            } catch let error as PolicyError {
                try? await self.record(
                    "agent.approval.refused", principal, call.id, "denied",
                    ["approval": .string(approvalID), "code": .string(error.code.description)])
                throw AgentError(.refused, error.message)
            }
            guard
                try await store.finish(
                    call.id, outcome: "running", resultBytes: nil, now: Self.millis(now()), expected: "pending")
            else {
                throw AgentError(.refused, "the call held under approval \(id) was already run")
            }
            state.messages.append(asked)
            state.toolCalls += 1
            answer = try await execute(
                tool, prepared, call, report: .ran, explanation: "approved by \(Self.printable(actor))", &state)
            if let report = state.calls.last {
                await observer?.emit(.toolFinished(FinishedCall(index: state.toolCalls, report: report)))
            }
        } else {
            switch record.status {
            case .pending: try await policy.deny(approvalID, reason: reason, actor: actor)
            case .denied: break
            default:
                throw AgentError(.refused, "approval \(id) is \(record.status); only a pending approval can be denied")
            }
            try await store.finish(
                call.id, outcome: "denied", resultBytes: nil, now: Self.millis(now()), expected: "pending")
            state.messages.append(asked)
            let why = reason.isEmpty ? "" : " (\(PrintableText.excerpt(reason, limit: 200)))"
            answer =
                "The owner denied this call\(why); it was not run. Do not try it again or another way; tell the user."
        }
        let answered = ChatMessage(role: .tool, content: answer, toolCallID: again.id)
        state.messages.append(answered)
        try await store.append(
            [StoredMessage(turn: state.turn, message: asked), StoredMessage(turn: state.turn, message: answered)],
            conversation: call.conversation, now: Self.millis(now()))
        return try await runRounds(&state)
    }

    /// The principal a stored conversation belongs to, with its current verified ceilings.
    private nonisolated func principal(of conversation: ConversationRow) async throws -> Principal {
        if conversation.principal == Principal.owner.description { return .owner }
        let contact = try await policy.contacts().first { $0.principal.description == conversation.principal }
        guard let contact else {
            throw AgentError(.refused, "the contact of this conversation was removed; nothing was run")
        }
        return contact.principal
    }
}
