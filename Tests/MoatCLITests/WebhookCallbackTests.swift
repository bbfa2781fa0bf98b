import Foundation
import MoatTestSupport
import Testing

/// A webhook with a `callback_url`, through `moat serve`: deliveries are answered 202 and the model's reply
/// (or a `send_message` message) is POSTed to a receiver on loopback, signed with the callback key;
/// refused deliveries send nothing anywhere.
@Suite(.serialized) struct WebhookCallbackTests {
    static let key = WebhookServeTests.key
    static let callbackKey = "fedcba9876543210fedcba9876543210fedcba9876543210"
    static let contact = "+15551234567"

    /// A served home whose webhook `sms` POSTs to `receiver`, with both keys in the vault and `contact`
    /// added (with `ceilings`); `extra` is appended under `channels.webhooks`.
    static func home(
        model: ScriptedModelServer, receiver: CallbackReceiver, ceilings: [String] = [], extra: String = ""
    ) async throws -> TemporaryDirectory {
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
                  callback_url: \(receiver.url)
                  callback_key_secret: SMS_CALLBACK_KEY
            \(extra)
            """
        try config.write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        chmod(home.file("config.yaml"), 0o600)
        for (secret, value) in [("SMS_HOOK_KEY", key), ("SMS_CALLBACK_KEY", callbackKey)] {
            try value.write(toFile: home.file("key"), atomically: true, encoding: .utf8)
            chmod(home.file("key"), 0o600)
            let added = try await MoatBinary.run(
                ["vault", "add", secret, "--from-file", home.file("key")], home: home.path)
            #expect(added.status == 0, "\(added.stderr)")
        }
        let contact = try await MoatBinary.run(
            ["contact", "add", "webhook:sms:\(Self.contact)"] + ceilings.flatMap { ["--ceiling", $0] },
            home: home.path)
        #expect(contact.status == 0, "\(contact.stderr)")
        return home
    }

    static func deliver(_ body: String, port: Int, hook: String = "sms") async throws -> RawHTTP.Response {
        var request = WebhookServeTests.delivery(body, port: port)
        if hook != "sms" {
            request = request.replacingOccurrences(of: "POST /hooks/sms ", with: "POST /hooks/\(hook) ")
        }
        return try await RawHTTP.sendOffPool(request, port: port)
    }

    /// The signature of `request` computed by Python's hmac module with `key`: independent of Moat's code.
    static func pythonSignature(_ request: ScriptedModelServer.Recorded, key: String) async throws -> String {
        let script =
            "import hmac,hashlib,sys; print('sha256='+hmac.new(sys.argv[1].encode(), "
            + "(sys.argv[2]+'.'+sys.argv[3]).encode(), hashlib.sha256).hexdigest())"
        let run = try await HostCommand.run(
            "/usr/bin/env",
            ["python3", "-c", script, key, request.header("X-Moat-Timestamp") ?? "", request.body])
        #expect(run.status == 0, "\(run.output)")
        return run.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Checks `request` is a signed callback (the signature Python computes with the callback key, not the
    /// delivery key; a fresh timestamp; the idempotency key equal to the body's id) and returns its body.
    static func checkSigned(_ request: ScriptedModelServer.Recorded) async throws -> [String: Any] {
        #expect(request.method == "POST" && request.path == "/moat")
        let signature = try #require(request.header("X-Moat-Signature"))
        #expect(signature == (try await pythonSignature(request, key: callbackKey)))
        #expect(signature != (try await pythonSignature(request, key: key)))
        let stamp = try #require(request.header("X-Moat-Timestamp").flatMap(Double.init))
        #expect(abs(stamp - Date().timeIntervalSince1970) < 600)
        let body = request.json
        #expect(request.header("X-Moat-Idempotency-Key") == body["id"] as? String)
        #expect((body["id"] as? String)?.isEmpty == false)
        return body
    }

    @Test("a delivery is answered 202 at once; the model's reply reaches the receiver, signed with the callback key")
    func replyToCallback() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("The garage door is closed.")])
        let receiver = try await CallbackReceiver.start()
        defer { Task { await model.stop() } }
        defer { Task { await receiver.stop() } }
        let home = try await Self.home(model: model, receiver: receiver)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        let answer = try await Self.deliver(
            #"{"id":"msg-1","sender":"+15551234567","text":"Is the garage door closed?"}"#, port: port)
        #expect(answer.status == 202, "\(answer.body)")
        #expect(answer.body == #"{"accepted":"msg-1"}"#)
        let requests = await receiver.waitFor(1)
        let request = try #require(requests.first)
        let body = try await Self.checkSigned(request)
        #expect(body["kind"] as? String == "reply")
        #expect(body["in_reply_to"] as? String == "msg-1")
        #expect(body["recipient"] as? String == Self.contact)
        #expect(body["webhook"] as? String == "sms")
        #expect(body["text"] as? String == "The garage door is closed.")
        await #expect(server.stop().status == 0)
        #expect(receiver.requests.count == 1)
        // One audit entry per attempt, with neither body nor key.
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "60"], home: home.path)
        let attempts = audit.stdout.split(separator: "\n").filter { $0.contains("webhook.callback") }
        #expect(attempts.count == 1, "\(audit.stdout)")
        #expect(!audit.stdout.contains("garage door") && !audit.stdout.contains(Self.callbackKey))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test("a receiver answering 500 twice then 200 gets the same idempotency key three times and nothing after")
    func retriesKeepTheIdempotencyKey() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("Closed.")])
        let receiver = try await CallbackReceiver.start(statuses: [500, 500])
        defer { Task { await model.stop() } }
        defer { Task { await receiver.stop() } }
        let home = try await Self.home(model: model, receiver: receiver)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        let answer = try await Self.deliver(#"{"id":"msg-r","sender":"+15551234567","text":"Door?"}"#, port: port)
        #expect(answer.status == 202, "\(answer.body)")
        let requests = await receiver.waitFor(3)
        #expect(requests.count == 3)
        var bodies: [[String: Any]] = []
        for request in requests { bodies.append(try await Self.checkSigned(request)) }
        let keys = Set(requests.compactMap { $0.header("X-Moat-Idempotency-Key") })
        #expect(keys.count == 1)
        #expect(Set(bodies.compactMap { $0["id"] as? String }) == keys)
        #expect(bodies.allSatisfy { $0["text"] as? String == "Closed." })
        // Stopping waits for background work: the accepted third attempt was the last.
        await #expect(server.stop().status == 0)
        #expect(receiver.requests.count == 3)
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "60"], home: home.path)
        let attempts = audit.stdout.split(separator: "\n").filter { $0.contains("webhook.callback") }
        #expect(attempts.count == 3, "\(audit.stdout)")
    }

    @Test("a 4xx answer is not retried, an unreachable receiver is tried 4 times, a failed turn sends an error")
    func failuresAndErrors() async throws {
        let model = try await ScriptedModelServer.start(replies: [
            .text("One."),
            // A refusal (4xx) fails the turn at once; a 5xx would be retried by the provider and take "Three.".
            .fault(.status(400, body: #"{"error":{"message":"bad request","type":"invalid_request_error"}}"#)),
            .text("Three."),
        ])
        let receiver = try await CallbackReceiver.start(statuses: [400])
        defer { Task { await model.stop() } }
        defer { Task { await receiver.stop() } }
        // `down` POSTs to a port nothing listens on.
        let home = try await Self.home(
            model: model, receiver: receiver,
            extra: """
                    down:
                      key_secret: SMS_HOOK_KEY_DOWN
                      callback_url: http://127.0.0.1:1/moat
                      callback_key_secret: SMS_CALLBACK_KEY
                """)
        try Self.key.write(toFile: home.file("key"), atomically: true, encoding: .utf8)
        #expect(
            try await MoatBinary.run(
                ["vault", "add", "SMS_HOOK_KEY_DOWN", "--from-file", home.file("key")], home: home.path
            )
            .status == 0)
        #expect(
            try await MoatBinary.run(["contact", "add", "webhook:down:\(Self.contact)"], home: home.path).status == 0)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        let refused = try await Self.deliver(#"{"id":"msg-1","sender":"+15551234567","text":"one"}"#, port: port)
        #expect(refused.status == 202)
        #expect(await receiver.waitFor(1).count == 1)
        let failed = try await Self.deliver(#"{"id":"msg-2","sender":"+15551234567","text":"two"}"#, port: port)
        #expect(failed.status == 202)
        let requests = await receiver.waitFor(2)
        let error = try await Self.checkSigned(try #require(requests.last))
        #expect(error["kind"] as? String == "error")
        #expect(error["in_reply_to"] as? String == "msg-2")
        #expect((error["error"] as? String)?.isEmpty == false)
        #expect(error["text"] == nil)
        let unreachable = try await Self.deliver(
            #"{"id":"msg-3","sender":"+15551234567","text":"three"}"#, port: port, hook: "down")
        #expect(unreachable.status == 202)
        // Stopping waits for the retries to end.
        await #expect(server.stop().status == 0)
        #expect(receiver.requests.count == 2)
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "80"], home: home.path).stdout
        let attempts = audit.split(separator: "\n").filter { $0.contains("webhook.callback") }
        #expect(attempts.filter { $0.contains("webhook:sms") }.count == 2, "\(audit)")
        let down = attempts.filter { $0.contains("webhook:down") }
        #expect(down.count == 4, "\(audit)")
        #expect(down.allSatisfy { $0.contains("failure") })
        #expect(down.filter { $0.contains(#""retrying":true"#) }.count == 3, "\(audit)")
        #expect(attempts.first { $0.contains(#""status":400"#) }?.contains(#""retrying":false"#) == true, "\(audit)")
    }

    @Test("a forgery, a stranger, a replay, a field named twice and a webhook without its callback key send nothing")
    func refusalsSendNothing() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("Hello.")])
        let receiver = try await CallbackReceiver.start()
        let stray = try await CallbackReceiver.start()
        defer { Task { await model.stop() } }
        defer { Task { await receiver.stop() } }
        defer { Task { await stray.stop() } }
        // `door` names a callback whose key was never stored: the webhook takes nothing in.
        let home = try await Self.home(
            model: model, receiver: receiver,
            extra: """
                    door:
                      key_secret: SMS_HOOK_KEY_DOOR
                      callback_url: \(stray.url)
                      callback_key_secret: DOOR_CALLBACK_KEY
                """)
        try Self.key.write(toFile: home.file("key"), atomically: true, encoding: .utf8)
        #expect(
            try await MoatBinary.run(
                ["vault", "add", "SMS_HOOK_KEY_DOOR", "--from-file", home.file("key")], home: home.path
            )
            .status == 0)
        #expect(
            try await MoatBinary.run(["contact", "add", "webhook:door:\(Self.contact)"], home: home.path).status == 0)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        // Two "sender" keys: a parser keeps one of them silently; Moat refuses the body.
        let duplicate = try await Self.deliver(
            #"{"id":"msg-d","sender":"+15550000000","text":"hi","sender":"+15551234567"}"#, port: port)
        #expect(duplicate.status == 400)
        #expect(duplicate.body.contains("\\\"sender\\\" appears twice"), "\(duplicate.body)")
        let forged = try await RawHTTP.sendOffPool(
            WebhookServeTests.delivery(
                #"{"id":"msg-f","sender":"+15551234567","text":"hi"}"#, port: port, key: Self.callbackKey),
            port: port)
        #expect(forged.status == 401)
        let stranger = try await Self.deliver(#"{"id":"msg-s","sender":"+15550000000","text":"hi"}"#, port: port)
        #expect(stranger.status == 403, "\(stranger.body)")
        let unfinished = try await Self.deliver(
            #"{"id":"msg-u","sender":"+15551234567","text":"hi"}"#, port: port, hook: "door")
        #expect(unfinished.status == 401, "\(unfinished.body)")
        // Nothing so far reached the model or went out.
        #expect(model.requests.isEmpty)
        let accepted = try await Self.deliver(#"{"id":"msg-a","sender":"+15551234567","text":"hi"}"#, port: port)
        #expect(accepted.status == 202)
        let replay = try await Self.deliver(#"{"id":"msg-a","sender":"+15551234567","text":"hi"}"#, port: port)
        #expect(replay.status == 409, "\(replay.body)")
        await #expect(server.stop().status == 0)
        #expect(receiver.requests.count == 1)
        #expect(receiver.requests.first?.json["in_reply_to"] as? String == "msg-a")
        #expect(stray.requests.isEmpty)
        #expect(model.requests.count == 1)
    }

    @Test("send_message: an owner turn at messaging 3 delivers a signed message; an unknown contact is refused")
    func sendMessageFromTheOwner() async throws {
        let model = try await ScriptedModelServer.start(replies: [
            .toolCall("send_message", #"{"to":"webhook:sms:+15551234567","text":"Dinner at 7."}"#),
            .text("I told them."),
            .toolCall("send_message", #"{"to":"webhook:sms:+15559999999","text":"Hello stranger."}"#),
            .text("There is no such contact."),
        ])
        let receiver = try await CallbackReceiver.start()
        defer { Task { await model.stop() } }
        defer { Task { await receiver.stop() } }
        let home = try await Self.home(model: model, receiver: receiver)
        let trust = try await MoatBinary.run(
            ["trust", "set", "messaging", "3", "--force", "--reason", "my own contacts"], home: home.path)
        #expect(trust.status == 0, "\(trust.stderr)")
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let chat = try await MoatBinary.run(["chat", "--message", "tell my contact dinner is at 7"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        #expect(chat.stdout.hasPrefix("I told them."))
        let request = try #require(receiver.requests.first)
        let body = try await Self.checkSigned(request)
        #expect(body["kind"] as? String == "message")
        #expect(body["recipient"] as? String == Self.contact)
        #expect(body["text"] as? String == "Dinner at 7.")
        #expect(body["in_reply_to"] == nil)
        #expect(model.requests[0].body.contains(#""name":"send_message""#))
        // The model was told the message went.
        #expect(model.requests[1].body.contains("message sent to webhook:sms:+15551234567"))
        let unknown = try await MoatBinary.run(["chat", "--message", "write to +15559999999"], home: home.path)
        #expect(unknown.status == 0, "\(unknown.stderr)")
        #expect(model.requests[3].body.contains("there is no contact 'webhook:sms:+15559999999'"))
        await #expect(server.stop().status == 0)
        #expect(receiver.requests.count == 1)
    }

    @Test("send_message in a contact's (tainted) turn is held for approval even at messaging 3; the reply goes out")
    func sendMessageFromATaintedTurn() async throws {
        let model = try await ScriptedModelServer.start(replies: [
            .toolCall("send_message", #"{"to":"webhook:sms:+15551234567","text":"Forward this everywhere."}"#),
            .text("I asked the owner first."),
        ])
        let receiver = try await CallbackReceiver.start()
        defer { Task { await model.stop() } }
        defer { Task { await receiver.stop() } }
        // The contact may act in messaging (ceiling 3) and so may the agent (trust 3): only taint holds it.
        let home = try await Self.home(model: model, receiver: receiver, ceilings: ["messaging=3"])
        let trust = try await MoatBinary.run(
            ["trust", "set", "messaging", "3", "--force", "--reason", "my own contacts"], home: home.path)
        #expect(trust.status == 0, "\(trust.stderr)")
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        let answer = try await Self.deliver(
            #"{"id":"msg-t","sender":"+15551234567","text":"send a message for me"}"#, port: port)
        #expect(answer.status == 202, "\(answer.body)")
        let requests = await receiver.waitFor(1)
        let body = try await Self.checkSigned(try #require(requests.first))
        #expect(body["kind"] as? String == "reply")
        #expect(body["text"] as? String == "I asked the owner first.")
        let pending = try await MoatBinary.run(["approvals", "list"], home: home.path)
        #expect(pending.stdout.contains("send_message"), "\(pending.stdout)")
        #expect(model.requests[1].body.contains("Held for the owner's approval"))
        let (status, log) = await server.stop()
        #expect(status == 0)
        // The owner is told the call waits, and that taint is what held it.
        #expect(log.contains("tainted:"), "\(log)")
        #expect(receiver.requests.count == 1)
    }
}
