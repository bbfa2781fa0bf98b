import Crypto
public import Foundation
public import MoatCore
import MoatVault

/// A message a signed webhook delivered, after its signature, clock window and body were checked.
public struct WebhookMessage: Sendable, Hashable {
    /// The webhook's name (`/hooks/NAME`).
    public let webhook: String
    /// The sender the body names; a principal of its own (`moat contact add webhook:NAME:SENDER`).
    public let sender: String
    /// The conversation the bridge names, or the sender's own one.
    public let conversation: String
    public let text: String
    /// The body's `id`, covered by the signature: a second delivery with the same id is refused.
    public let id: String
    /// The signed timestamp.
    public let sentAt: Date

    /// The channel name the pipeline and the contacts table use: `webhook:NAME`.
    public var channel: String { SignedWebhook.channel(webhook) }
}

/// The signed webhook channel's checks (Docs/Channels.md, "Signed webhooks"), without HTTP.
///
/// A request carries `X-Moat-Timestamp: <unix seconds>` and
/// `X-Moat-Signature: sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>`, the key being the vault
/// secret the webhook's configuration names. The timestamp must be within ``window`` of this machine's
/// clock; the body is a JSON object `{"id", "sender", "text"[, "conversation"]}` with nothing else. The id
/// is inside the signed body, so a replayed request cannot be given a new one; the pipeline answers each
/// `webhook:NAME` id once.
public enum SignedWebhook {
    /// How far the signed timestamp may be from this machine's clock, either way.
    public static let window: TimeInterval = 300
    /// The largest body accepted.
    public static let maximumBodyBytes = 64 * 1024
    /// Limits of the body's fields (UTF-8 bytes).
    public static let maximumIDBytes = 128
    public static let maximumSenderBytes = 256
    public static let maximumTextBytes = 32 * 1024

    public static let timestampHeader = "X-Moat-Timestamp"
    public static let signatureHeader = "X-Moat-Signature"

    /// The refusal of a wrong signature — also the answer for an unknown webhook, so names stay private.
    public static let badSignature = ChannelError(
        .unauthorized,
        "the signature does not match: \(signatureHeader) must be sha256= and the hex HMAC-SHA256 of "
            + "timestamp + \".\" + body with the webhook's key")

    /// `webhook:NAME`.
    public static func channel(_ webhook: String) -> String { "webhook:" + webhook }

    /// The signature header's value for `body` sent at `timestamp` (what a bridge computes).
    public static func signature(key: SecretBytes, timestamp: String, body: [UInt8]) -> String {
        "sha256=" + Hex.encode(mac(key: key, timestamp: timestamp, body: body))
    }

    /// Checks one delivery to webhook `name` and returns its message.
    ///
    /// - Throws: ``ChannelError`` `.unauthorized` for a missing or wrong signature or a timestamp outside
    ///   the window (the message says which, never the expected value), `.invalidInput` for a body that is
    ///   not the format.
    public static func verify(
        webhook name: String, timestamp: String?, signature: String?, body: [UInt8], key: SecretBytes, now: Date
    ) throws(ChannelError) -> WebhookMessage {
        guard body.count <= maximumBodyBytes else {
            throw ChannelError(.invalidInput, "the body is larger than \(maximumBodyBytes / 1024) KiB")
        }
        guard let timestamp, let signature else {
            throw ChannelError(
                .unauthorized, "sign the request: send \(timestampHeader) and \(signatureHeader) (Docs/Channels.md)")
        }
        guard timestamp.utf8.count <= 12, !timestamp.isEmpty, timestamp.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let seconds = Double(timestamp)
        else {
            throw ChannelError(.unauthorized, "\(timestampHeader) must be the time in whole seconds since 1970")
        }
        // The signature first: an unsigned request learns nothing about the clock check.
        guard signature.hasPrefix("sha256="),
            let presented = Hex.decode(String(signature.dropFirst("sha256=".count))), presented.count == 32,
            constantTimeEquals(presented, mac(key: key, timestamp: timestamp, body: body))
        else { throw badSignature }
        let sentAt = Date(timeIntervalSince1970: seconds)
        guard abs(sentAt.timeIntervalSince(now)) <= window else {
            throw ChannelError(
                .unauthorized,
                "the signed timestamp is more than \(Int(window / 60)) minutes from this machine's clock: "
                    + "check the sender's clock (a replayed request is refused the same way)")
        }
        let fields = try parse(body)
        return WebhookMessage(
            webhook: name, sender: fields.sender, conversation: fields.conversation ?? fields.sender,
            text: fields.text, id: fields.id, sentAt: sentAt)
    }

    static func mac(key: SecretBytes, timestamp: String, body: [UInt8]) -> [UInt8] {
        key.withSymmetricKey { key in
            var hmac = HMAC<SHA256>(key: key)
            hmac.update(data: Array(timestamp.utf8) + [UInt8(ascii: ".")])
            hmac.update(data: body)
            return Array(hmac.finalize())
        }
    }

    static func constantTimeEquals(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// The body's fields: a JSON object with exactly `id`, `sender`, `text` and optionally `conversation`,
    /// each a non-empty string of printable text within its limit.
    static func parse(_ body: [UInt8]) throws(ChannelError) -> (
        id: String, sender: String, text: String, conversation: String?
    ) {
        let format = "the body must be a JSON object {\"id\", \"sender\", \"text\"[, \"conversation\"]}"
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw ChannelError(.invalidInput, format)
        }
        if let duplicate = duplicateTopLevelKey(body) {
            // A parser keeps one of two values silently (which one differs between parsers): a bridge and
            // Moat could read different senders from one signed body.
            throw ChannelError(
                .invalidInput,
                "the field \"\(PrintableText.excerpt(duplicate, limit: 40))\" appears twice; send each field once")
        }
        if let unknown = object.keys.sorted().first(where: { !["id", "sender", "text", "conversation"].contains($0) }) {
            throw ChannelError(
                .invalidInput, "unknown field \"\(PrintableText.excerpt(unknown, limit: 40))\": " + format)
        }
        func field(_ name: String, limit: Int, required: Bool = true) throws(ChannelError) -> String? {
            guard let value = object[name] else {
                if required { throw ChannelError(.invalidInput, "\"\(name)\" is missing: " + format) }
                return nil
            }
            guard let text = value as? String, !text.isEmpty, text.utf8.count <= limit else {
                throw ChannelError(
                    .invalidInput, "\"\(name)\" must be a non-empty string of at most \(limit) bytes")
            }
            // Ids and names end up in audit entries and the dashboard: no control characters.
            if name != "text", !PrintableText.isPrintable(text) {
                throw ChannelError(.invalidInput, "\"\(name)\" must not contain control characters")
            }
            return text
        }
        guard let id = try field("id", limit: maximumIDBytes),
            let sender = try field("sender", limit: maximumSenderBytes),
            let text = try field("text", limit: maximumTextBytes)
        else { throw ChannelError(.invalidInput, format) }
        return (id, sender, text, try field("conversation", limit: maximumSenderBytes, required: false))
    }

    /// The first key that appears twice in the top-level object of `body`, which must be valid JSON
    /// (escapes are decoded first: `"sender"` and `"\u0073ender"` are one key).
    static func duplicateTopLevelKey(_ body: [UInt8]) -> String? {
        let quote = UInt8(ascii: "\"")
        let backslash = UInt8(ascii: "\\")
        var seen = Set<String>()
        var depth = 0
        var expectingKey = false
        var index = 0
        while index < body.count {
            let byte = body[index]
            if byte == quote {
                var end = index + 1
                while end < body.count, body[end] != quote { end += body[end] == backslash ? 2 : 1 }
                if depth == 1, expectingKey {
                    let token = Data(body[index...min(end, body.count - 1)])
                    let decoded = try? JSONSerialization.jsonObject(with: token, options: .fragmentsAllowed)
                    guard let key = decoded as? String else { return "" }
                    guard seen.insert(key).inserted else { return key }
                    expectingKey = false
                }
                index = end + 1
                continue
            }
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                expectingKey = depth == 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                expectingKey = depth == 1
            default:
                break
            }
            index += 1
        }
        return nil
    }
}
