import Foundation
import MoatChannels
import MoatCore
import MoatTestSupport
import Testing

/// The signed webhook through `moat serve`: a contact's signed delivery reaches the model and its reply
/// comes back; a replay, an unknown sender and a forged signature reach no model.
@Suite(.serialized) struct WebhookServeTests {
    static let key = "0123456789abcdef0123456789abcdef0123456789abcdef"

    static func delivery(_ body: String, port: Int, key: String = key, timestamp: String? = nil) -> String {
        let stamp = timestamp ?? String(Int(Date().timeIntervalSince1970))
        var bytes = Array(key.utf8)
        let signature = SignedWebhook.signature(
            key: SecretBytes(wiping: &bytes), timestamp: stamp, body: Array(body.utf8))
        return RawHTTP.request(
            "POST", "/hooks/sms",
            headers: [
                ("Host", "127.0.0.1:\(port)"), ("X-Moat-Timestamp", stamp), ("X-Moat-Signature", signature),
            ], body: body)
    }

    @Test("a contact's signed delivery gets the model's reply; a replay, a stranger and a forgery reach no model")
    func endToEnd() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("The garage door is closed.")])
        defer { Task { await model.stop() } }
        let home = try await ServedHome.copy()
        let config = """
            providers:
              local:
                base_url: \(model.baseURL)
                model: scripted
            channels:
              webhooks:
                sms:
                  key_secret: SMS_HOOK_KEY
            """
        try config.write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        chmod(home.file("config.yaml"), 0o600)
        try Self.key.write(toFile: home.file("hook.key"), atomically: true, encoding: .utf8)
        chmod(home.file("hook.key"), 0o600)
        let added = try await MoatBinary.run(
            ["vault", "add", "SMS_HOOK_KEY", "--from-file", home.file("hook.key")], home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(try await MoatBinary.run(["contact", "add", "webhook:sms:+15551234567"], home: home.path).status == 0)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        let body = #"{"id":"msg-1","sender":"+15551234567","text":"Is the garage door closed?"}"#
        let request = Self.delivery(body, port: port)
        let answer = try await RawHTTP.sendOffPool(request, port: port)
        #expect(answer.status == 200, "\(answer.body)")
        #expect(answer.body == #"{"reply":"The garage door is closed."}"#)
        // The same delivery again (within the clock window): refused by the pipeline, no model round.
        let replay = try await RawHTTP.sendOffPool(request, port: port)
        #expect(replay.status == 409, "\(replay.body)")
        // A signed delivery from someone who is not a contact.
        let stranger = try await RawHTTP.sendOffPool(
            Self.delivery(#"{"id":"msg-2","sender":"+15550000000","text":"hi"}"#, port: port), port: port)
        #expect(stranger.status == 403, "\(stranger.body)")
        // A forgery with another key.
        let forged = try await RawHTTP.sendOffPool(
            Self.delivery(
                #"{"id":"msg-3","sender":"+15551234567","text":"hi"}"#, port: port, key: String(Self.key.reversed())),
            port: port)
        #expect(forged.status == 401)
        #expect(model.requests.count == 1)
        // No webhook has a callback: no channel can send, so send_message is not offered.
        #expect(model.requests.first?.body.contains("send_message") == false)
        let (status, _) = await server.stop()
        #expect(status == 0)
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
