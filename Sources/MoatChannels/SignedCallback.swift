import Foundation
public import MoatAudit
import MoatCore
public import MoatNet
public import MoatVault
import NIOCore

/// What Moat POSTs to a webhook's callback URL (Docs/Channels.md, "Callbacks"): a reply to a delivery,
/// a message the agent sends (`send_message`), or the error a delivery's turn ended with.
public struct CallbackPayload: Sendable, Hashable, Encodable {
    public enum Kind: String, Sendable, Hashable, Encodable {
        case reply, message, error
    }

    /// The idempotency key, also sent as ``SignedCallback/idempotencyHeader``: the same on every retry.
    public let id: String
    public let kind: Kind
    /// The webhook's name.
    public let webhook: String
    /// The sender the reply or message is for.
    public let recipient: String
    /// The delivery's conversation (replies and errors).
    public let conversation: String?
    /// The delivery's `id` (replies and errors).
    public let inReplyTo: String?
    /// The reply or message (at most ``SignedWebhook/maximumTextBytes``, cut with a marker).
    public let text: String?
    /// What ended the turn (errors).
    public let error: String?

    enum CodingKeys: String, CodingKey {
        case id, kind, webhook, recipient, conversation
        case inReplyTo = "in_reply_to"
        case text, error
    }

    /// The reply to a delivery.
    public static func reply(to message: WebhookMessage, text: String) -> CallbackPayload {
        CallbackPayload(
            id: newID(), kind: .reply, webhook: message.webhook, recipient: message.sender,
            conversation: message.conversation, inReplyTo: message.id, text: cut(text), error: nil)
    }

    /// The error that ended a delivery's turn after it was accepted.
    public static func error(for message: WebhookMessage, _ error: String) -> CallbackPayload {
        CallbackPayload(
            id: newID(), kind: .error, webhook: message.webhook, recipient: message.sender,
            conversation: message.conversation, inReplyTo: message.id, text: nil,
            error: PrintableText.excerpt(error, limit: 1000))
    }

    /// A message to `recipient` on `webhook` (`send_message`).
    public static func message(webhook: String, recipient: String, text: String) -> CallbackPayload {
        CallbackPayload(
            id: newID(), kind: .message, webhook: webhook, recipient: recipient, conversation: nil, inReplyTo: nil,
            text: cut(text), error: nil)
    }

    static func newID() -> String { UUID().uuidString.lowercased() }

    /// `text` within ``SignedWebhook/maximumTextBytes``, cut at a character with a marker.
    static func cut(_ text: String) -> String {
        let marker = "\n[cut: longer than \(SignedWebhook.maximumTextBytes / 1024) KiB]"
        guard text.utf8.count > SignedWebhook.maximumTextBytes else { return text }
        var kept = ""
        var bytes = marker.utf8.count
        for character in text {
            bytes += character.utf8.count
            if bytes > SignedWebhook.maximumTextBytes { break }
            kept.append(character)
        }
        return kept + marker
    }

    /// The body as sent: JSON with sorted keys.
    public var body: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(self))) ?? []
    }
}

/// Delivers ``CallbackPayload``s to the webhook's callback URL, signed like deliveries are.
///
/// Each attempt is a `POST` with `X-Moat-Timestamp` (this attempt's time), `X-Moat-Signature:
/// sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>` with the webhook's `callback_key_secret`, and
/// `X-Moat-Idempotency-Key` (the body's `id`, the same on every attempt). The URL is the owner's
/// (``CheckedURL/ownerConfigured(_:resolver:)``: loopback and LAN allowed, metadata addresses and
/// credentials refused), resolved and pinned per attempt; nothing the model or a sender writes chooses it.
/// A 2xx answer delivers; a 5xx answer or a connection failure is retried after a doubling delay, up to
/// ``Limits/attempts``; any other answer fails at once. Each attempt is one audit entry (`webhook.callback`:
/// attempt, status, id, size — never the body or the key).
public struct SignedCallback: Sendable {
    public static let idempotencyHeader = "X-Moat-Idempotency-Key"

    /// Bounds of one delivery.
    public struct Limits: Sendable {
        /// Attempts in all (the first and the retries).
        public var attempts = 4
        /// The wait before the first retry; each further retry waits twice as long.
        public var firstRetryDelay: Duration = .milliseconds(500)
        /// Per attempt: connecting, and the whole exchange.
        public var connectTimeout: Duration = .seconds(5)
        public var attemptTimeout: Duration = .seconds(15)
        /// The largest answer read from the receiver.
        public var maximumResponseBytes = 1 << 20

        public init() {}
    }

    let settings: ChannelsSettings
    let vault: UnlockedVault
    let audit: AuditLog
    let transport: any PinnedTransport
    let resolver: AddressResolver
    let limits: Limits

    /// - Parameter transport: nil for the real pinned transport with ``Limits``' time and size limits.
    public init(
        settings: ChannelsSettings, vault: UnlockedVault, audit: AuditLog, transport: (any PinnedTransport)? = nil,
        resolver: AddressResolver = .system, limits: Limits = Limits()
    ) throws(ChannelError) {
        if let transport {
            self.transport = transport
        } else {
            var transportLimits = PinnedHTTPTransport.Limits()
            transportLimits.connectTimeout = Self.timeAmount(limits.connectTimeout)
            transportLimits.totalTimeout = Self.timeAmount(limits.attemptTimeout)
            transportLimits.maximumBodyBytes = limits.maximumResponseBytes
            do {
                self.transport = try PinnedHTTPTransport(
                    limits: transportLimits, userAgent: "Moat/\(MoatVersion.current)")
            } catch {
                throw ChannelError(.configuration, "the TLS client for webhook callbacks cannot be set up")
            }
        }
        self.settings = settings
        self.vault = vault
        self.audit = audit
        self.resolver = resolver
        self.limits = limits
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Whether webhook `name` has a callback URL.
    public func hasCallback(_ name: String) -> Bool { settings.webhooks[name]?.callback != nil }

    /// Delivers `payload` to its webhook's callback URL, retrying as the type says.
    ///
    /// - Throws: ``ChannelError`` `.configuration` (no callback, an unusable key or URL: nothing is sent),
    ///   `.deliveryFailed` (the receiver refused or could not be reached on any attempt).
    public func deliver(_ payload: CallbackPayload) async throws(ChannelError) {
        guard let callback = settings.webhooks[payload.webhook]?.callback else {
            throw ChannelError(
                .configuration,
                "webhook \(payload.webhook) has no callback_url: set channels.webhooks.\(payload.webhook)."
                    + "callback_url and callback_key_secret in config.yaml")
        }
        guard case .success(let url) = FetchURL.parse(callback.url) else {
            throw ChannelError(.configuration, "channels.webhooks.\(payload.webhook).callback_url is not a usable URL")
        }
        let body = payload.body
        guard !body.isEmpty, body.count <= SignedWebhook.maximumBodyBytes else {
            throw ChannelError(.invalidInput, "the callback body is larger than the webhook's limit")
        }
        var delay = limits.firstRetryDelay
        var last = ""
        for attempt in 1...max(1, limits.attempts) {
            let result = await attemptOnce(url: url, keySecret: callback.keySecret, payload: payload, body: body)
            let retry = result.retryable && attempt < limits.attempts
            do {
                try await record(payload, url: url, attempt: attempt, body: body, result: result, retrying: retry)
            } catch {
                throw ChannelError(
                    .deliveryFailed, "the callback of webhook \(payload.webhook) stopped: the audit log failed")
            }
            switch result.outcome {
            case .delivered: return
            case .refused(let reason):
                if case .configuration = result.kind { throw ChannelError(.configuration, reason) }
                last = reason
            }
            guard retry else { break }
            do {
                try await Task.sleep(for: delay)
            } catch {
                break
            }
            delay *= 2
        }
        throw ChannelError(.deliveryFailed, "the callback of webhook \(payload.webhook) was not delivered: \(last)")
    }

    struct AttemptResult {
        enum Outcome {
            case delivered
            case refused(String)
        }
        enum Kind { case answer, network, configuration }
        var outcome: Outcome
        var kind: Kind
        var status = 0
        /// A 5xx answer or a connection failure.
        var retryable: Bool { kind == .network || (500...599).contains(status) }
    }

    func attemptOnce(url: FetchURL, keySecret: String, payload: CallbackPayload, body: [UInt8]) async -> AttemptResult {
        let key: SecretBytes
        switch WebhookKey.usable(keySecret, in: vault) {
        case .success(let found): key = found
        case .failure(let error):
            return AttemptResult(
                outcome: .refused("webhook \(payload.webhook)'s callback key: \(error.message)"), kind: .configuration)
        }
        let target: CheckedURL
        do {
            target = try await CheckedURL.ownerConfigured(url, resolver: resolver)
        } catch {
            return AttemptResult(
                outcome: .refused(error.message), kind: error.code == .urlRefused ? .configuration : .network)
        }
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"),
            (SignedWebhook.timestampHeader, timestamp),
            (SignedWebhook.signatureHeader, SignedWebhook.signature(key: key, timestamp: timestamp, body: body)),
            (Self.idempotencyHeader, payload.id),
        ]
        let response: FetchResponse
        do {
            response = try await transport.send(target, method: "POST", headers: headers, body: body)
        } catch let error as NetError {
            return AttemptResult(outcome: .refused(error.message), kind: .network)
        } catch {
            return AttemptResult(outcome: .refused("the exchange with \(url.origin) failed"), kind: .network)
        }
        guard (200...299).contains(response.status) else {
            return AttemptResult(
                outcome: .refused("\(url.origin) answered \(response.status)"), kind: .answer, status: response.status)
        }
        return AttemptResult(outcome: .delivered, kind: .answer, status: response.status)
    }

    func record(
        _ payload: CallbackPayload, url: FetchURL, attempt: Int, body: [UInt8], result: AttemptResult, retrying: Bool
    ) async throws {
        var metadata: [String: AuditValue] = [
            "id": .string(payload.id), "kind": .string(payload.kind.rawValue), "attempt": .int(Int64(attempt)),
            "status": .int(Int64(result.status)), "bytes": .int(Int64(body.count)), "destination": .string(url.origin),
        ]
        if case .refused(let reason) = result.outcome {
            metadata["error"] = .string(PrintableText.excerpt(reason, limit: 200))
            metadata["retrying"] = .bool(retrying)
        }
        let delivered = if case .delivered = result.outcome { true } else { false }
        _ = try await audit.append(
            AuditEvent(
                actor: "system", action: "webhook.callback", target: SignedWebhook.channel(payload.webhook),
                outcome: delivered ? "success" : "failure", metadata: metadata))
    }
}
