import MoatAgent
import MoatChannels
import MoatConsole

/// Binds the signed webhook channel to the agent: each checked delivery is one inbound message from
/// its sender on `webhook:NAME`, and the turn's reply is the response.
struct AgentWebhookReceiver: WebhookReceiver {
    let agent: Agent

    func receive(_ message: WebhookMessage) async throws -> String {
        // Conversations and idempotency keys are the channel's own: a bridge cannot name an owner
        // conversation or reuse another webhook's ids.
        let inbound = InboundMessage(
            channel: message.channel, senderID: message.sender,
            conversation: message.channel + ":" + message.conversation, text: message.text,
            idempotencyKey: message.channel + ":" + message.id, receivedAt: message.sentAt)
        return try await agent.handle(inbound).reply
    }
}
