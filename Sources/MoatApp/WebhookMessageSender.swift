import MoatChannels
import MoatCore
import MoatPolicy
import MoatTools

/// `send_message` through the signed webhook channel: `to` is a contact `webhook:NAME:SENDER` the owner
/// added, and the message goes to webhook NAME's callback URL, signed, with SENDER as its recipient.
struct WebhookMessageSender: MessageSender {
    let callbacks: SignedCallback
    let engine: PolicyEngine

    func knows(contact contactID: String) async -> Bool {
        guard let (webhook, sender) = Self.address(contactID),
            let found = try? await engine.principal(channel: SignedWebhook.channel(webhook), senderID: sender)
        else { return false }
        return found != nil
    }

    func send(_ text: String, to contactID: String) async throws(ToolError) {
        guard let (webhook, sender) = Self.address(contactID) else {
            throw ToolError(.refused, "send_message: \(Self.usage)")
        }
        guard callbacks.hasCallback(webhook) else {
            throw ToolError(
                .refused,
                "send_message: webhook \(webhook) has no callback_url, so its contacts cannot be written to; "
                    + "only replies to their own messages reach them")
        }
        do {
            try await callbacks.deliver(.message(webhook: webhook, recipient: sender, text: text))
        } catch {
            // The receiver's address and answer are the owner's business (the audit log has each attempt).
            throw ToolError(
                .failed,
                error.code == .configuration
                    ? "send_message: webhook \(webhook)'s callback is not set up; the owner must fix it"
                    : "send_message: the message to \(contactID) was not delivered (the receiver refused it or "
                        + "could not be reached); try later")
        }
    }

    static let usage = "\"to\" must be a webhook contact, webhook:NAME:SENDER (as `moat contact list` shows)"

    /// `webhook:NAME:SENDER` → (NAME, SENDER).
    static func address(_ contactID: String) -> (webhook: String, sender: String)? {
        let parts = contactID.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "webhook", ChannelsSettings.isValidWebhookName(String(parts[1])),
            !parts[2].isEmpty
        else { return nil }
        return (String(parts[1]), String(parts[2]))
    }
}
