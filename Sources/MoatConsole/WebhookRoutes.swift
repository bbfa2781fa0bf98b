public import Foundation
import HTTPTypes
public import Hummingbird
public import MoatChannels
import MoatCore
public import MoatHTTP
public import MoatVault
import NIOCore

/// Where a checked webhook message goes: the agent pipeline (bound by the composition root). It answers
/// with the reply text for the response, or throws a ``ClassifiedError`` the route maps to a status.
public protocol WebhookReceiver: Sendable {
    func receive(_ message: WebhookMessage) async throws -> String
}

/// `POST /hooks/NAME`: the signed webhook channel (Docs/Channels.md). Outside `/api/`, with no owner
/// identity: the signature is the credential. Every check is ``SignedWebhook``'s; this route only reads
/// the body (at most 64 KiB), finds the webhook's key in the vault and answers `{"reply": …}`.
public struct WebhookRoutes: Sendable {
    let settings: ChannelsSettings
    let vault: UnlockedVault
    let receiver: any WebhookReceiver
    let now: @Sendable () -> Date

    public init(
        settings: ChannelsSettings, vault: UnlockedVault, receiver: any WebhookReceiver,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.settings = settings
        self.vault = vault
        self.receiver = receiver
        self.now = now
    }

    /// The answer to a webhook that is not configured: the same for every unknown name.
    static let unknown = ChannelError(.notFound, "no such webhook")

    func register(on router: Router<GatewayRequestContext>) {
        router.post("/hooks/:name") { request, context -> Response in
            do {
                return try await handle(request, name: context.parameters.get("name") ?? "")
            } catch let error as any ClassifiedError {
                return APIError.response(error)
            }
        }
    }

    func handle(_ request: Request, name: String) async throws -> Response {
        guard let webhook = settings.webhooks[name] else { throw Self.unknown }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: SignedWebhook.maximumBodyBytes)
        } catch {
            throw ChannelError(.invalidInput, "the body is larger than \(SignedWebhook.maximumBodyBytes / 1024) KiB")
        }
        guard let key = try? vault.value(named: webhook.keySecret), key.count >= 16 else {
            // The owner's mistake, not the sender's: the name of the missing secret is in the owner's
            // config already, so saying it tells a sender nothing new.
            throw ChannelError(
                .configuration,
                "this webhook has no usable key: the owner must store at least 16 bytes under "
                    + "\(webhook.keySecret) (`moat vault add \(webhook.keySecret)`)")
        }
        let message = try SignedWebhook.verify(
            webhook: name, timestamp: request.headers[HTTPField.Name(SignedWebhook.timestampHeader)!],
            signature: request.headers[HTTPField.Name(SignedWebhook.signatureHeader)!],
            body: Array(buffer.readableBytesView), key: key, now: now())
        let reply = try await receiver.receive(message)
        return APIError.json(status: .ok, encoding: WebhookReply(reply: reply))
    }
}

/// The answer to a delivery: the agent's reply.
struct WebhookReply: Encodable {
    let reply: String
}
