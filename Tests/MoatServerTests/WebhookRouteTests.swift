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
        let accepted = Mutex<[WebhookMessage]>([])
        func receive(_ message: WebhookMessage) async throws -> String {
            received.withLock { $0.append(message) }
            return "the garage door is closed"
        }
        func accept(_ message: WebhookMessage) async throws {
            accepted.withLock { $0.append(message) }
        }
    }

    static let now = Date(timeIntervalSince1970: 1_780_000_000)
    static let body = Array(#"{"id":"msg-0001","sender":"+15551234567","text":"Is the garage door closed?"}"#.utf8)

    /// A router with webhook `sms` (its key stored) and webhooks the owner did not finish: `nokey` (its key
    /// missing), `short` (a 16-byte key), `tooluse` (a key a tool may send), `nocallbackkey` (its callback's
    /// key missing); `callme` has a callback.
    static func app(_ recorder: Recorder, directory: TemporaryDirectory) throws -> (
        Application<RouterResponder<GatewayRequestContext>>, SecretBytes
    ) {
        let vault = try PreparedVault.copy(to: VaultPaths(stateDirectory: directory.path))
        var keyBytes = Array("0123456789abcdef0123456789abcdef".utf8)
        let key = SecretBytes(wiping: &keyBytes)
        try vault.add("SMS_HOOK_KEY", value: key, policy: try SecretPolicy(tools: [], hosts: []))
        var shortBytes = Array("0123456789abcdef".utf8)
        try vault.add(
            "SHORT_KEY", value: SecretBytes(wiping: &shortBytes), policy: try SecretPolicy(tools: [], hosts: []))
        var toolBytes = Array("0123456789abcdef0123456789abcdef".utf8)
        try vault.add(
            "TOOL_KEY", value: SecretBytes(wiping: &toolBytes),
            policy: try SecretPolicy(tools: ["http_request"], hosts: ["api.example.com"]))
        var callbackBytes = Array("fedcba9876543210fedcba9876543210".utf8)
        try vault.add(
            "SMS_CALLBACK_KEY", value: SecretBytes(wiping: &callbackBytes),
            policy: try SecretPolicy(tools: [], hosts: []))
        let settings = ChannelsSettings(webhooks: [
            "sms": .init(keySecret: "SMS_HOOK_KEY"), "nokey": .init(keySecret: "MISSING_KEY"),
            "short": .init(keySecret: "SHORT_KEY"), "tooluse": .init(keySecret: "TOOL_KEY"),
            "callme": .init(
                keySecret: "SMS_HOOK_KEY", callbackURL: "http://127.0.0.1:9/moat", callbackKeySecret: "SMS_CALLBACK_KEY"
            ),
            "nocallbackkey": .init(
                keySecret: "SMS_HOOK_KEY", callbackURL: "http://127.0.0.1:9/moat", callbackKeySecret: "MISSING_KEY"),
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
            // An unknown name and the unfinished webhooks answer exactly as a wrong signature on a known one:
            // a sender learns neither which names exist nor a secret's name (the owner reads it in the log).
            var answers: [String] = []
            for path in [
                "/hooks/sms", "/hooks/other", "/hooks/nokey", "/hooks/short", "/hooks/tooluse", "/hooks/nocallbackkey",
            ] {
                let wrong = path == "/hooks/sms" ? "sha256=" + String(repeating: "0", count: 64) : signature
                try await client.execute(
                    uri: path, method: .post, headers: Self.headers("1780000000", wrong),
                    body: ByteBuffer(bytes: Self.body)
                ) { response in
                    #expect(response.status == .unauthorized, "\(path)")
                    answers.append(String(buffer: response.body))
                }
            }
            #expect(Set(answers).count == 1)
            #expect(!answers[0].contains("KEY"))
            // Unsigned, an unknown name answers as a known one does.
            for path in ["/hooks/sms", "/hooks/other"] {
                try await client.execute(uri: path, method: .post, body: ByteBuffer(bytes: Self.body)) { response in
                    #expect(response.status == .unauthorized)
                    #expect(String(buffer: response.body).contains("sign the request"))
                }
            }
            try await client.execute(uri: "/hooks/sms", method: .get) { response in
                #expect(response.status == .methodNotAllowed)
            }
        }
        let received = recorder.received.withLock { $0 }
        #expect(received.count == 1)
        #expect(received.first?.channel == "webhook:sms" && received.first?.id == "msg-0001")
        #expect(recorder.accepted.withLock { $0 }.isEmpty)
    }

    @Test("a webhook with a callback answers 202 with the delivery's id once the receiver accepted it")
    func callbackAnswersAccepted() async throws {
        let directory = TemporaryDirectory("moat-webhook")
        let recorder = Recorder()
        let (app, key) = try Self.app(recorder, directory: directory)
        let signature = SignedWebhook.signature(key: key, timestamp: "1780000000", body: Self.body)
        try await app.test(.router) { client in
            try await client.execute(
                uri: "/hooks/callme", method: .post, headers: Self.headers("1780000000", signature),
                body: ByteBuffer(bytes: Self.body)
            ) { response in
                #expect(response.status == .accepted)
                #expect(String(buffer: response.body) == #"{"accepted":"msg-0001"}"#)
            }
        }
        #expect(recorder.accepted.withLock { $0 }.map(\.id) == ["msg-0001"])
        #expect(recorder.received.withLock { $0 }.isEmpty)
    }
}
