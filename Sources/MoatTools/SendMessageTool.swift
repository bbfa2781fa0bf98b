public import MoatCore

/// Delivers a message to a contact; a channel (webhook, Telegram, …) implements it.
///
/// ``SendMessageTool`` resolves `to` as a contact id and leaves the rest to the sender: which channel the
/// contact is on, and how to reach them there.
public protocol MessageSender: Sendable {
    /// Whether `contactID` names a contact this sender can reach.
    func knows(contact contactID: String) async -> Bool
    /// Sends `text` to the contact; throws ``ToolError`` `.failed` when delivery fails.
    func send(_ text: String, to contactID: String) async throws(ToolError)
}

/// `send_message {to, text}` [messaging]: a message to one of the owner's contacts, by contact id.
public struct SendMessageTool: BuiltinTool {
    public let name = "send_message"
    public let domain = TrustDomain.messaging
    public let description =
        "Send a text message to one of the owner's contacts, named by contact id (the messages' senders)."
    let parameterList: [ToolParameter] = [
        .string("to", "The contact id, as the owner added it (like webhook:sms:alice)."),
        .string("text", "The message text."),
    ]
    /// The longest message (32 KiB).
    public static let maximumTextBytes = 32 << 10
    let sender: any MessageSender

    public init(sender: any MessageSender) {
        self.sender = sender
    }

    public func prepare(_ arguments: String) throws(ToolError) -> PreparedCall {
        let checked = try checkedArguments(arguments)
        let contact = checked.string("to")
        guard !contact.isEmpty, contact.utf8.count <= 256, PrintableText.isPrintable(contact) else {
            throw ToolError(
                .invalidArguments, "send_message: \"to\" must be a contact id (printable, at most 256 bytes)")
        }
        let size = checked.string("text").utf8.count
        guard (1...Self.maximumTextBytes).contains(size) else {
            throw ToolError(
                .invalidArguments, "send_message: \"text\" must hold 1 to \(Self.maximumTextBytes) bytes")
        }
        return prepared(checked, destination: contact, summary: "send a \(size)-byte message to \(contact)")
    }

    public func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        let checked = try checkedArguments(of: call)
        let contact = checked.string("to")
        guard await sender.knows(contact: contact) else {
            throw ToolError(
                .refused, "send_message: there is no contact '\(PrintableText.excerpt(contact, limit: 64))'")
        }
        try await sender.send(checked.string("text"), to: contact)
        return ToolOutput(text: "message sent to \(contact)", external: false)
    }
}
