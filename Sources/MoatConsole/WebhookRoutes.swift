public import Foundation
import HTTPTypes
public import Hummingbird
import Logging
public import MoatChannels
import MoatCore
public import MoatHTTP
public import MoatVault
import NIOCore
import Synchronization

/// Where a checked webhook message goes: the agent pipeline (bound by the composition root).
public protocol WebhookReceiver: Sendable {
    /// Runs the message's turn and answers with the reply text for the response, or throws a
    /// ``ClassifiedError`` the route maps to a status.
    func receive(_ message: WebhookMessage) async throws -> String
    /// For a webhook with a callback: returns once the pipeline has accepted the message (or throws its
    /// refusal, as ``receive(_:)`` does); the turn goes on, and its reply is POSTed to the callback.
    func accept(_ message: WebhookMessage) async throws
}

/// `POST /hooks/NAME`: the signed webhook channel (Docs/Channels.md). Outside `/api/`, with no owner
/// identity: the signature is the credential. Every check is ``SignedWebhook``'s; this route only reads
/// the body (at most 64 KiB), finds the webhook's key in the vault and answers `{"reply": …}` — or, for a
/// webhook with a callback URL, `202 {"accepted": ID}` once the pipeline took the message.
///
/// The webhooks come from a ``WebhookTable`` a config reload replaces: a webhook added answers from the
/// next delivery on, and with none left the route answers 404, as a server started without one does.
public struct WebhookRoutes: Sendable {
    let table: WebhookTable
    let vault: UnlockedVault
    let receiver: any WebhookReceiver
    let now: @Sendable () -> Date

    public init(
        settings: ChannelsSettings, vault: UnlockedVault, receiver: any WebhookReceiver,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.init(table: WebhookTable(settings.webhooks), vault: vault, receiver: receiver, now: now)
    }

    public init(
        table: WebhookTable, vault: UnlockedVault, receiver: any WebhookReceiver,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.table = table
        self.vault = vault
        self.receiver = receiver
        self.now = now
    }

    func register(on router: Router<GatewayRequestContext>) {
        router.post("/hooks/:name") { request, context -> Response in
            do {
                return try await handle(request, name: context.parameters.get("name") ?? "", context: context)
            } catch let error as any ClassifiedError {
                return APIError.response(error)
            }
        }
    }

    func handle(_ request: Request, name: String, context: GatewayRequestContext) async throws -> Response {
        let webhooks = table.webhooks
        guard !webhooks.isEmpty else { return Response(status: .notFound) }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: SignedWebhook.maximumBodyBytes)
        } catch {
            throw ChannelError(.invalidInput, "the body is larger than \(SignedWebhook.maximumBodyBytes / 1024) KiB")
        }
        let body = Array(buffer.readableBytesView)
        let timestamp = request.headers[HTTPField.Name(SignedWebhook.timestampHeader)!]
        let signature = request.headers[HTTPField.Name(SignedWebhook.signatureHeader)!]
        guard let webhook = webhooks[name], let key = usableKey(webhook, name: name, context: context) else {
            // An unknown name and a webhook the owner has not finished setting up answer exactly as a bad
            // signature does (after the same work): a sender learns neither which names exist nor a
            // secret's name. The owner reads the reason in the log.
            _ = try SignedWebhook.verify(
                webhook: name, timestamp: timestamp, signature: signature, body: body, key: Self.dummyKey, now: now())
            throw SignedWebhook.badSignature  // not reached: nobody holds the dummy key
        }
        let message = try SignedWebhook.verify(
            webhook: name, timestamp: timestamp, signature: signature, body: body, key: key, now: now())
        if webhook.callback != nil {
            try await receiver.accept(message)
            return APIError.json(status: .accepted, encoding: WebhookAccepted(accepted: message.id))
        }
        let reply = try await receiver.receive(message)
        return APIError.json(status: .ok, encoding: WebhookReply(reply: reply))
    }
}

/// The signed webhooks in force (`channels.webhooks`), by name; a config reload replaces them.
public final class WebhookTable: Sendable {
    private let entries: Mutex<[String: ChannelsSettings.Webhook]>

    public init(_ webhooks: [String: ChannelsSettings.Webhook]) { entries = Mutex(webhooks) }

    public var webhooks: [String: ChannelsSettings.Webhook] { entries.withLock { $0 } }

    /// Puts `webhooks` in force from the next delivery on (one already being checked keeps the old entry).
    public func replace(_ webhooks: [String: ChannelsSettings.Webhook]) { entries.withLock { $0 = webhooks } }
}

extension WebhookRoutes {
    /// A random key nobody holds, for the checks an unknown or unfinished webhook answers with.
    static let dummyKey: SecretBytes = {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return SecretBytes(wiping: &bytes)
    }()

    /// The webhook's key when it and its callback's key (if any) are usable (``WebhookKey/usable(_:in:)``);
    /// otherwise nil, with the reason in the log. A webhook whose callback cannot be signed takes nothing
    /// in: its replies could not go out.
    func usableKey(_ webhook: ChannelsSettings.Webhook, name: String, context: GatewayRequestContext) -> SecretBytes? {
        let key = WebhookKey.usable(webhook.keySecret, in: vault)
        let problem: MoatChannels.ChannelError
        switch (key, webhook.callback.map { WebhookKey.usable($0.keySecret, in: vault) }) {
        case (.success(let key), .none), (.success(let key), .success?): return key
        case (.failure(let error), _), (.success, .failure(let error)?): problem = error
        }
        context.logger.error("webhook \(name) refused a delivery: \(problem.message)")
        return nil
    }
}

/// The answer to a delivery: the agent's reply.
struct WebhookReply: Encodable {
    let reply: String
}

/// The answer to a delivery whose reply goes to the callback: the delivery's id.
struct WebhookAccepted: Encodable {
    let accepted: String
}
