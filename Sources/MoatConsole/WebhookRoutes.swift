public import Foundation
import HTTPTypes
public import Hummingbird
import Logging
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

    /// The shortest key accepted: 32 bytes, so one captured request cannot be brute-forced offline.
    public static let minimumKeyBytes = 32

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
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: SignedWebhook.maximumBodyBytes)
        } catch {
            throw ChannelError(.invalidInput, "the body is larger than \(SignedWebhook.maximumBodyBytes / 1024) KiB")
        }
        let body = Array(buffer.readableBytesView)
        let timestamp = request.headers[HTTPField.Name(SignedWebhook.timestampHeader)!]
        let signature = request.headers[HTTPField.Name(SignedWebhook.signatureHeader)!]
        guard let webhook = settings.webhooks[name], let key = usableKey(webhook, name: name, context: context) else {
            // An unknown name and a webhook the owner has not finished setting up answer exactly as a bad
            // signature does (after the same work): a sender learns neither which names exist nor a
            // secret's name. The owner reads the reason in the log.
            _ = try SignedWebhook.verify(
                webhook: name, timestamp: timestamp, signature: signature, body: body, key: Self.dummyKey, now: now())
            throw SignedWebhook.badSignature  // not reached: nobody holds the dummy key
        }
        let message = try SignedWebhook.verify(
            webhook: name, timestamp: timestamp, signature: signature, body: body, key: key, now: now())
        let reply = try await receiver.receive(message)
        return APIError.json(status: .ok, encoding: WebhookReply(reply: reply))
    }
}

extension WebhookRoutes {
    /// A random key nobody holds, for the checks an unknown or unfinished webhook answers with.
    static let dummyKey: SecretBytes = {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return SecretBytes(wiping: &bytes)
    }()

    /// The webhook's key when it is usable: present, at least ``minimumKeyBytes`` long, and a key no tool
    /// can use (a secret a tool may send somewhere could be used to sign deliveries as any sender).
    func usableKey(_ webhook: ChannelsSettings.Webhook, name: String, context: GatewayRequestContext) -> SecretBytes? {
        let problem: String
        if let key = try? vault.value(named: webhook.keySecret), key.count >= Self.minimumKeyBytes {
            guard let summary = try? vault.secrets().first(where: { $0.name == webhook.keySecret }),
                !summary.policy.tools.isEmpty || !summary.policy.hosts.isEmpty
            else { return key }
            problem =
                "its key \(webhook.keySecret) may be used by tools (--allow-tool/--allow-host); store the key "
                + "again without a policy"
        } else {
            problem =
                "store a key of at least \(Self.minimumKeyBytes) random bytes as \(webhook.keySecret) "
                + "(`moat vault add \(webhook.keySecret)`)"
        }
        context.logger.error("webhook \(name) refused a delivery: \(problem)")
        return nil
    }
}

/// The answer to a delivery: the agent's reply.
struct WebhookReply: Encodable {
    let reply: String
}
