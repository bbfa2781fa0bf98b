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

/// `POST /hooks/NAME` through the real router: only a correctly signed, fresh delivery reaches the receiver.
@Suite struct WebhookRouteTests {
    /// Records what reached it and answers with a fixed reply.
    final class Recorder: WebhookReceiver {
        let received = Mutex<[WebhookMessage]>([])
        func receive(_ message: WebhookMessage) async throws -> String {
            received.withLock { $0.append(message) }
            return "the garage door is closed"
        }
    }

    static let now = Date(timeIntervalSince1970: 1_780_000_000)
    static let body = Array(#"{"id":"msg-0001","sender":"+15551234567","text":"Is the garage door closed?"}"#.utf8)

    /// A router with webhook `sms` (its key stored) and webhook `nokey` (its key missing).
    static func app(_ recorder: Recorder, directory: TemporaryDirectory) throws -> (
        Application<RouterResponder<GatewayRequestContext>>, SecretBytes
    ) {
        var password = Array("correct horse battery staple".utf8)
        let vault = try UnlockedVault.create(
            paths: VaultPaths(stateDirectory: directory.path), password: SecretBytes(wiping: &password),
            parameters: try Argon2Parameters(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1))
        var keyBytes = Array("0123456789abcdef0123456789abcdef".utf8)
        let key = SecretBytes(wiping: &keyBytes)
        try vault.add("SMS_HOOK_KEY", value: key, policy: try SecretPolicy(tools: [], hosts: []))
        let settings = ChannelsSettings(webhooks: [
            "sms": .init(keySecret: "SMS_HOOK_KEY"), "nokey": .init(keySecret: "MISSING_KEY"),
        ])
        let hostGuard = HostGuard(boundAddress: IPAddress("127.0.0.1")!, port: 80, tls: false, allowedHosts: [])
        let routes = WebhookRoutes(settings: settings, vault: vault, receiver: recorder, now: { Self.now })
        return (Application(router: GatewayApplication.makeRouter(hostGuard: hostGuard, webhooks: routes)), key)
    }

    static func headers(_ timestamp: String, _ signature: String) -> HTTPFields {
        var fields = HTTPFields()
        fields[HTTPField.Name("X-Moat-Timestamp")!] = timestamp
        fields[HTTPField.Name("X-Moat-Signature")!] = signature
        fields[.contentType] = "application/json"
        return fields
    }

    @Test("a signed delivery reaches the receiver once and its reply comes back; forged ones reach nothing")
    func signedAndForged() async throws {
        let directory = TemporaryDirectory("moat-webhook")
        let recorder = Recorder()
        let (app, key) = try Self.app(recorder, directory: directory)
        let signature = SignedWebhook.signature(key: key, timestamp: "1780000000", body: Self.body)
        try await app.test(.router) { client in
            try await client.execute(
                uri: "/hooks/sms", method: .post, headers: Self.headers("1780000000", signature),
                body: ByteBuffer(bytes: Self.body)
            ) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"reply":"the garage door is closed"}"#)
            }
            var flipped = Self.body
            flipped[30] ^= 0x01
            for (headers, body, status) in [
                (Self.headers("1780000000", signature), flipped, HTTPResponse.Status.unauthorized),
                (Self.headers("1780000400", signature), Self.body, .unauthorized),
                (HTTPFields(), Self.body, .unauthorized),
                (Self.headers("1780000000", signature), [UInt8](repeating: 0x20, count: 70_000), .badRequest),
            ] {
                try await client.execute(
                    uri: "/hooks/sms", method: .post, headers: headers, body: ByteBuffer(bytes: body)
                ) { response in
                    #expect(response.status == status)
                    #expect(!String(buffer: response.body).contains("the garage door"))
                }
            }
            // Unknown webhooks all answer the same; a configured one without its key says what the owner must do.
            try await client.execute(
                uri: "/hooks/other", method: .post, headers: Self.headers("1780000000", signature),
                body: ByteBuffer(bytes: Self.body)
            ) { response in
                #expect(
                    response.status == .notFound && String(buffer: response.body) == #"{"error":"no such webhook"}"#)
            }
            try await client.execute(
                uri: "/hooks/nokey", method: .post, headers: Self.headers("1780000000", signature),
                body: ByteBuffer(bytes: Self.body)
            ) { response in
                #expect(response.status == .internalServerError)
                #expect(String(buffer: response.body).contains("moat vault add MISSING_KEY"))
            }
            try await client.execute(uri: "/hooks/sms", method: .get) { response in
                #expect(response.status == .methodNotAllowed)
            }
        }
        let received = recorder.received.withLock { $0 }
        #expect(received.count == 1)
        #expect(received.first?.channel == "webhook:sms" && received.first?.id == "msg-0001")
    }
}
