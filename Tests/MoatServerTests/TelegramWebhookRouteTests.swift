import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MoatChannels
import MoatConsole
import MoatCore
import MoatHTTP
import MoatTestSupport
import MoatVault
import NIOCore
import Synchronization
import Testing

/// `POST /hooks/telegram/updates` through the real router: only a request with the webhook secret in
/// `X-Telegram-Bot-Api-Secret-Token` reaches the receiver; every other one is refused before its body is read.
@Suite struct TelegramWebhookRouteTests {
    final class Recorder: TelegramUpdateReceiver {
        let received = Mutex<[TelegramInbound]>([])
        func receive(_ inbound: TelegramInbound) async throws { received.withLock { $0.append(inbound) } }
    }

    static let secret = "S3cr3t_webhook-token_0123456789abcdef"
    static let update = Array(
        (#"{"update_id":872000001,"message":{"message_id":1,"date":1780000000,"text":"hello","#
            + #""from":{"id":4242,"is_bot":false,"first_name":"Ada"},"chat":{"id":4242,"type":"private"}}}"#).utf8)

    /// A router whose Telegram webhook secret is `storedSecret` (nil: the owner has not stored it).
    static func app(_ recorder: Recorder, directory: TemporaryDirectory, storedSecret: String? = secret) throws
        -> some ApplicationProtocol
    {
        let vault = try PreparedVault.copy(to: VaultPaths(stateDirectory: directory.path))
        if let storedSecret {
            var bytes = Array(storedSecret.utf8)
            try vault.add("TELEGRAM_WEBHOOK_SECRET", value: SecretBytes(wiping: &bytes), policy: .none)
        }
        let settings = TelegramSettings(
            tokenSecret: "TELEGRAM_BOT_TOKEN", mode: .webhook, webhookSecret: "TELEGRAM_WEBHOOK_SECRET",
            webhookURL: "https://moat.example.ts.net/hooks/telegram/updates")
        let hostGuard = HostGuard(boundAddress: IPAddress("127.0.0.1")!, port: 80, tls: false, allowedHosts: [])
        let routes = TelegramWebhookRoutes(settings: settings, vault: vault, receiver: recorder)
        return Application(router: GatewayApplication.makeRouter(hostGuard: hostGuard, telegram: routes))
    }

    static func headers(_ secret: String?) -> HTTPFields {
        var fields = HTTPFields()
        if let secret { fields[HTTPField.Name(TelegramWebhook.secretHeader)!] = secret }
        fields[.contentType] = "application/json"
        return fields
    }

    @Test(
        "an update with the right secret reaches the receiver; a missing, wrong, flipped, cut or longer one reaches nothing"
    )
    func secretHeader() async throws {
        let directory = TemporaryDirectory("moat-telegram-hook")
        let recorder = Recorder()
        let app = try Self.app(recorder, directory: directory)
        var flippedBytes = Array(Self.secret.utf8)
        flippedBytes[5] ^= 0x01
        let flipped = String(decoding: flippedBytes, as: UTF8.self)
        try await app.test(.router) { client in
            for wrong in [
                nil, "", "wrong", flipped, String(Self.secret.dropLast()),
                Self.secret + "x", Self.secret.uppercased(), String(Self.secret.dropFirst()),
            ] as [String?] {
                try await client.execute(
                    uri: TelegramWebhook.path, method: .post, headers: Self.headers(wrong),
                    body: ByteBuffer(bytes: Self.update)
                ) { response in
                    #expect(response.status == .unauthorized, "\(wrong ?? "no header")")
                    #expect(!String(buffer: response.body).contains(Self.secret))
                }
            }
            #expect(recorder.received.withLock { $0.isEmpty })
            try await client.execute(
                uri: TelegramWebhook.path, method: .post, headers: Self.headers(Self.secret),
                body: ByteBuffer(bytes: Self.update)
            ) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(
                uri: TelegramWebhook.path, method: .post, headers: Self.headers(Self.secret),
                body: ByteBuffer(bytes: Array("not json".utf8))
            ) { response in
                #expect(response.status == .badRequest)
            }
        }
        let received = recorder.received.withLock { $0 }
        #expect(received.count == 1)
        guard case .message(let message)? = received.first else {
            Issue.record("the update was not read as a message")
            return
        }
        #expect(message.text == "hello" && message.chatID == 4242 && message.updateID == 872_000_001)
    }

    @Test("without a usable secret in the vault, every update is refused as a wrong header is")
    func unfinishedSetup() async throws {
        for stored in [nil, "short", "has spaces but is long enough for the length check!!"] as [String?] {
            let directory = TemporaryDirectory("moat-telegram-hook")
            let recorder = Recorder()
            let app = try Self.app(recorder, directory: directory, storedSecret: stored)
            try await app.test(.router) { client in
                try await client.execute(
                    uri: TelegramWebhook.path, method: .post, headers: Self.headers(stored ?? Self.secret),
                    body: ByteBuffer(bytes: Self.update)
                ) { response in
                    #expect(response.status == .unauthorized)
                    #expect(!String(buffer: response.body).contains("TELEGRAM_WEBHOOK_SECRET"))
                }
            }
            #expect(recorder.received.withLock { $0.isEmpty })
        }
    }
}
