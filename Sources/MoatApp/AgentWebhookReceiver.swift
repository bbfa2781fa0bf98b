import Logging
import MoatAgent
import MoatChannels
import MoatConsole
import MoatCore
import Synchronization

/// Binds the signed webhook channel to the agent: each checked delivery is one inbound message from
/// its sender on `webhook:NAME`. Without a callback the turn's reply is the response; with one, the
/// delivery is answered once the agent has accepted it and the turn runs on in ``BackgroundWork``, its
/// reply (or the error that ended it) POSTed to the callback.
struct AgentWebhookReceiver: WebhookReceiver {
    let agent: Agent
    let callbacks: SignedCallback?
    let work: BackgroundWork?
    let logger: Logger

    func receive(_ message: WebhookMessage) async throws -> String {
        try await agent.handle(Self.inbound(message)).reply
    }

    func accept(_ message: WebhookMessage) async throws {
        guard let callbacks, let work else {
            throw ChannelError(.configuration, "webhook \(message.webhook) has a callback but no sender is set up")
        }
        let (signal, answer) = AsyncStream<(any Error)?>.makeStream()
        let accepted = AcceptedFlag()
        let agent = self.agent
        let logger = self.logger
        let queued = work.submit {
            let payload: CallbackPayload
            do {
                let outcome = try await agent.handle(
                    Self.inbound(message),
                    onAccepted: {
                        accepted.set()
                        answer.yield(nil)
                        answer.finish()
                    })
                payload = .reply(to: message, text: outcome.reply)
            } catch {
                // Refused before it was accepted: the delivery's answer says so, nothing goes out.
                guard accepted.isSet else {
                    answer.yield(error)
                    answer.finish()
                    return
                }
                payload = .error(for: message, (error as? any ClassifiedError).map { "\($0)" } ?? "the turn failed")
            }
            do {
                try await callbacks.deliver(payload)
            } catch {
                logger.error(
                    "the callback of a webhook delivery was not delivered",
                    metadata: ["webhook": "\(message.webhook)", "error": "\(error)"])
            }
        }
        guard queued else {
            throw ChannelError(.busy, "too many deliveries are waiting for their replies; try again shortly")
        }
        for await refusal in signal {
            if let refusal { throw refusal }
            return
        }
        throw ChannelError(.deliveryFailed, "the delivery was not taken in; try again")
    }

    /// Conversations and idempotency keys are the channel's own: a bridge cannot name an owner
    /// conversation or reuse another webhook's ids.
    static func inbound(_ message: WebhookMessage) -> InboundMessage {
        InboundMessage(
            channel: message.channel, senderID: message.sender,
            conversation: message.channel + ":" + message.conversation, text: message.text,
            idempotencyKey: message.channel + ":" + message.id, receivedAt: message.sentAt)
    }
}

/// Set once the agent has accepted a delivery.
private final class AcceptedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}
