import HTTPTypes
public import Hummingbird
import Logging
public import MoatChannels
import MoatCore
public import MoatHTTP
public import MoatVault
import NIOCore

/// Where a Telegram update that passed the webhook's check goes (the channel framework's Telegram adapter).
public protocol TelegramUpdateReceiver: Sendable {
    /// Takes one update; returns once it is safely taken (Telegram is then answered 200 and does not send
    /// it again). Throwing makes Telegram deliver it again later.
    func receive(_ inbound: TelegramInbound) async throws
}

/// `POST /hooks/telegram/updates`: Telegram's webhook mode (Docs/Channels.md, "Telegram"). Outside `/api/`,
/// with no owner identity: the `X-Telegram-Bot-Api-Secret-Token` header is the credential, checked by
/// ``TelegramWebhook`` before the body is read. A missing or wrong header, and a webhook secret the owner
/// has not stored (the reason goes to the log), answer the same 401, and nothing reaches the receiver.
public struct TelegramWebhookRoutes: Sendable {
    let settings: TelegramSettings
    let vault: UnlockedVault
    let receiver: any TelegramUpdateReceiver

    public init(settings: TelegramSettings, vault: UnlockedVault, receiver: any TelegramUpdateReceiver) {
        self.settings = settings
        self.vault = vault
        self.receiver = receiver
    }

    func register(on router: Router<GatewayRequestContext>) {
        router.post(RouterPath(TelegramWebhook.path)) { request, context -> Response in
            do {
                return try await handle(request, context: context)
            } catch let error as any ClassifiedError {
                return APIError.response(error)
            }
        }
    }

    func handle(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let header = request.headers[HTTPField.Name(TelegramWebhook.secretHeader)!]
        let secret: SecretBytes
        do {
            secret = try TelegramWebhook.secretToken(settings, vault: vault)
        } catch {
            context.logger.error("the Telegram webhook refused an update: \(error.message)")
            throw TelegramWebhook.refused
        }
        try TelegramWebhook.authenticate(header: header, secret: secret)
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: TelegramWebhook.maximumBodyBytes)
        } catch {
            throw ChannelError(.invalidInput, "the update is larger than \(TelegramWebhook.maximumBodyBytes >> 20) MiB")
        }
        let update = try TelegramWebhook.update(Array(buffer.readableBytesView))
        try await receiver.receive(TelegramInbound.classify(update))
        return Response(status: .ok)
    }
}
