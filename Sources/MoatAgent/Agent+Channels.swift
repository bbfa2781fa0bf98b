public import MoatChannels
public import MoatCore

/// The agent behind the channel framework (``ChannelRouter``): a known sender's message becomes one
/// turn, and the owner's `approve ID` / `deny ID` from their bound account resumes the held call.
///
/// The agent decides the sender's principal again itself (`PolicyEngine.principal(channel:senderID:)`,
/// the same decision the router made): nothing a channel passes in can raise it. Conversations and
/// idempotency keys are scoped to the channel (`CHANNEL:ID`), so one platform cannot name another's.
public struct AgentChannelTurns: ChannelTurns {
    let agent: Agent

    public init(agent: Agent) {
        self.agent = agent
    }

    public func runTurn(
        _ message: ChannelMessage, principal: Principal, accepted: @escaping @Sendable () async -> Void
    ) async throws -> String {
        do {
            return try await agent.handle(Self.inbound(message), onAccepted: accepted).reply
        } catch {
            throw Self.refusal(error) ?? error
        }
    }

    public func decide(approvalID: String, approve: Bool, actor: String) async throws -> ApprovalDecided {
        do {
            let outcome =
                approve
                ? try await agent.approve(approvalID, actor: actor)
                : try await agent.deny(approvalID, reason: "denied from the owner's chat", actor: actor)
            return ApprovalDecided(
                ownerText: "\(approve ? "Approved" : "Denied") \(PrintableText.excerpt(approvalID, limit: 64)).",
                conversation: outcome.conversationID, reply: outcome.reply)
        } catch {
            switch error.code {
            case .notFound, .refused, .busy, .invalidInput: throw ChannelRefusal("Not done: \(error.message)")
            default: throw error
            }
        }
    }

    /// The pipeline's form of a channel message; attachments are named in the text as references.
    static func inbound(_ message: ChannelMessage) -> InboundMessage {
        var text = message.text
        for attachment in message.attachments {
            text += "\n[attachment \(PrintableText.excerpt(attachment.name ?? attachment.id, limit: 80))"
            if let type = attachment.mediaType { text += ", \(PrintableText.excerpt(type, limit: 60))" }
            text += "]"
        }
        return InboundMessage(
            channel: message.channel, senderID: message.senderID,
            conversation: message.channel + ":" + message.conversation, text: text,
            idempotencyKey: message.channel + ":" + message.idempotencyKey, receivedAt: message.receivedAt)
    }

    /// A refusal before the message was accepted, told to the sender (a duplicate is told nothing).
    static func refusal(_ error: AgentError) -> ChannelRefusal? {
        switch error.code {
        case .duplicate: ChannelRefusal(nil)
        case .rateLimited, .busy, .invalidInput, .unknownSender: ChannelRefusal(error.message)
        default: nil
        }
    }
}
