import Foundation
import MoatCore
import MoatVault
import Testing

@testable import MoatChannels

/// The signed webhook's checks: the HMAC over timestamp + "." + body, the ±5-minute window, the body format.
@Suite struct SignedWebhookTests {
    static let key: SecretBytes = {
        var bytes = Array("0123456789abcdef0123456789abcdef".utf8)
        return SecretBytes(wiping: &bytes)
    }()
    static let body = Array(#"{"id":"msg-0001","sender":"+15551234567","text":"Is the garage door closed?"}"#.utf8)
    static let timestamp = "1780000000"
    static let now = Date(timeIntervalSince1970: 1_780_000_000)
    /// Computed independently (Python's hmac module), as in Docs/Channels.md's worked example.
    static let expected = "sha256=156f443567ca38e05b91ec2c6f6b7121aaff2c41c4803158dfe9e7db0aae9630"

    static func verify(
        timestamp: String? = timestamp, signature: String? = expected, body: [UInt8] = body, now: Date = now,
        key: SecretBytes = key
    ) throws(ChannelError) -> WebhookMessage {
        try SignedWebhook.verify(
            webhook: "sms", timestamp: timestamp, signature: signature, body: body, key: key, now: now)
    }

    static func failure(_ body: () throws(ChannelError) -> WebhookMessage) -> ChannelError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }

    @Test("the documented example verifies, and the signature Moat computes is the one Python computes")
    func workedExample() throws {
        #expect(SignedWebhook.signature(key: Self.key, timestamp: Self.timestamp, body: Self.body) == Self.expected)
        let message = try Self.verify()
        #expect(message.channel == "webhook:sms")
        #expect(message.sender == "+15551234567" && message.conversation == "+15551234567")
        #expect(message.id == "msg-0001" && message.text == "Is the garage door closed?")
    }

    @Test("a flipped byte of the body, the timestamp or the signature, and a wrong key, are refused")
    func tampering() {
        var flipped = Self.body
        flipped[20] ^= 0x01
        var wrongKeyBytes = Array("0123456789abcdef0123456789abcdeF".utf8)
        let wrongKey = SecretBytes(wiping: &wrongKeyBytes)
        var signature = Array(Self.expected)
        signature[signature.count - 1] = signature.last == "0" ? "1" : "0"
        for refused in [
            Self.failure { () throws(ChannelError) in try Self.verify(body: flipped) },
            Self.failure { () throws(ChannelError) in try Self.verify(timestamp: "1780000001") },
            Self.failure { () throws(ChannelError) in try Self.verify(signature: String(signature)) },
            Self.failure { () throws(ChannelError) in try Self.verify(key: wrongKey) },
            Self.failure { () throws(ChannelError) in try Self.verify(signature: Self.expected.uppercased()) },
            Self.failure { () throws(ChannelError) in try Self.verify(signature: String(Self.expected.dropFirst(7))) },
        ] {
            #expect(refused?.code == .unauthorized)
            #expect(refused?.message.hasPrefix("the signature does not match") == true)
            // The expected value is never told.
            #expect(refused?.message.contains("156f4435") == false)
        }
    }

    @Test("a missing header or a timestamp that is not whole seconds is refused before the signature is checked")
    func missingOrMalformedHeaders() {
        #expect(
            Self.failure { () throws(ChannelError) in try Self.verify(timestamp: nil) }?.message.hasPrefix(
                "sign the request") == true)
        #expect(Self.failure { () throws(ChannelError) in try Self.verify(signature: nil) }?.code == .unauthorized)
        for bad in ["", "-1780000000", "1780000000.5", "17800000000000", " 1780000000"] {
            #expect(
                Self.failure { () throws(ChannelError) in try Self.verify(timestamp: bad) }?.message.contains(
                    "whole seconds") == true)
        }
    }

    @Test("a genuine request outside ±5 minutes (a replay or a wrong clock) is refused; inside it is accepted")
    func clockWindow() throws {
        _ = try Self.verify(now: Self.now.addingTimeInterval(300))
        _ = try Self.verify(now: Self.now.addingTimeInterval(-300))
        for skew in [301.0, -301.0, 86_400] {
            let refused = Self.failure { () throws(ChannelError) in
                try Self.verify(now: Self.now.addingTimeInterval(skew))
            }
            #expect(refused?.code == .unauthorized)
            #expect(refused?.message.contains("more than 5 minutes") == true)
        }
    }

    @Test(
        "a signed body that is not the format is refused with what is wrong",
        arguments: [
            (#"{"id":"1","sender":"s"}"#, "\"text\" is missing"),
            (#"{"id":"1","sender":"s","text":"t","admin":true}"#, "unknown field \"admin\""),
            (#"{"id":1,"sender":"s","text":"t"}"#, "\"id\" must be a non-empty string"),
            (#"{"id":"","sender":"s","text":"t"}"#, "\"id\" must be a non-empty string"),
            (#"{"id":"a\u0007b","sender":"s","text":"t"}"#, "\"id\" must not contain control characters"),
            (#"["id","sender","text"]"#, "must be a JSON object"),
            ("not json", "must be a JSON object"),
        ])
    func badBodies(body: String, message: String) {
        let bytes = Array(body.utf8)
        let signature = SignedWebhook.signature(key: Self.key, timestamp: Self.timestamp, body: bytes)
        let refused = Self.failure { () throws(ChannelError) in try Self.verify(signature: signature, body: bytes) }
        #expect(refused?.code == .invalidInput)
        #expect(refused?.message.contains(message) == true, "\(refused?.message ?? "accepted")")
    }

    @Test("a body over 64 KiB is refused before anything else")
    func oversized() {
        let big = [UInt8](repeating: 0x20, count: SignedWebhook.maximumBodyBytes + 1)
        #expect(Self.failure { () throws(ChannelError) in try Self.verify(body: big) }?.code == .invalidInput)
    }

    @Test("channels.webhooks: names and key secrets are checked, with the line of the mistake")
    func settings() throws {
        func read(_ entries: [(String, [(String, String)])]) throws(ConfigError) -> ChannelsSettings {
            let hooks = entries.map { name, fields in
                (
                    ConfigNode(.scalar(name, plain: true), line: 2),
                    ConfigNode(
                        .mapping(
                            fields.map {
                                (
                                    ConfigNode(.scalar($0.0, plain: true), line: 3),
                                    ConfigNode(.scalar($0.1, plain: true), line: 3)
                                )
                            }), line: 3)
                )
            }
            let node = ConfigNode(
                .mapping([(ConfigNode(.scalar("webhooks", plain: true), line: 1), ConfigNode(.mapping(hooks), line: 2))]
                ),
                line: 1)
            var settings = ChannelsSettings()
            try settings.read(node, path: "channels")
            return settings
        }
        #expect(try read([("sms", [("key_secret", "SMS_HOOK_KEY")])]).webhooks["sms"]?.keySecret == "SMS_HOOK_KEY")
        let badName = #expect(throws: ConfigError.self) { try read([("SMS", [("key_secret", "K")])]) }
        #expect(badName?.line == 2 && badName?.path == "channels.webhooks.SMS")
        #expect(throws: ConfigError.self) { try read([("sms", [("key_secret", "lower")])]) }
        // Moat's own keys (row MACs, the audit key) are never a webhook's.
        #expect(throws: ConfigError.self) { try read([("sms", [("key_secret", "MOAT_AUTH_MAC_KEY")])]) }
        #expect(throws: ConfigError.self) { try read([("sms", [("secret", "K")])]) }
        #expect(throws: ConfigError.self) { try read([("sms", [])]) }
        // A callback needs its URL and its own key, never the delivery key.
        let callback = try read([
            (
                "sms",
                [
                    ("key_secret", "SMS_HOOK_KEY"), ("callback_url", "http://127.0.0.1:8025/moat"),
                    ("callback_key_secret", "SMS_CALLBACK_KEY"),
                ]
            )
        ]).webhooks["sms"]
        #expect(callback?.callback?.url == "http://127.0.0.1:8025/moat")
        #expect(callback?.callback?.keySecret == "SMS_CALLBACK_KEY")
        for fields in [
            [("key_secret", "K"), ("callback_url", "http://127.0.0.1:8025/")],
            [("key_secret", "K"), ("callback_key_secret", "C")],
            [("key_secret", "K"), ("callback_url", "http://127.0.0.1:8025/"), ("callback_key_secret", "K")],
            [("key_secret", "K"), ("callback_url", "ftp://127.0.0.1/"), ("callback_key_secret", "C")],
            [("key_secret", "K"), ("callback_url", "http://user:pw@127.0.0.1/"), ("callback_key_secret", "C")],
            [("key_secret", "K"), ("callback_url", "http://127.0.0.1/"), ("callback_key_secret", "lower")],
        ] {
            #expect(throws: ConfigError.self, "\(fields)") { try read([("sms", fields)]) }
        }
    }

    @Test(
        "a signed body naming a field twice is refused, whichever way the key is spelled, and nothing is read from it",
        arguments: [
            #"{"id":"1","sender":"alice","text":"t","sender":"owner"}"#,
            #"{"id":"1","sender":"alice","text":"t","\u0073ender":"owner"}"#,
            #"{"id":"1","id":"2","sender":"alice","text":"t"}"#,
            #"{ "text" : "t" , "sender":"a", "id":"1" ,"text":"u"}"#,
        ])
    func duplicateKeys(body: String) {
        let bytes = Array(body.utf8)
        let signature = SignedWebhook.signature(key: Self.key, timestamp: Self.timestamp, body: bytes)
        let refused = Self.failure { () throws(ChannelError) in try Self.verify(signature: signature, body: bytes) }
        #expect(refused?.code == .invalidInput)
        #expect(refused?.message.contains("appears twice") == true, "\(refused?.message ?? "accepted")")
    }

    @Test("the same key in a nested value, in a string or in another field's text is not a duplicate")
    func nestedKeysAreNotDuplicates() throws {
        // Keys inside strings, escaped quotes, and text that looks like JSON stay one field each.
        let body = #"{"id":"1","sender":"alice","text":"{\"sender\":\"owner\"}, \"sender\": x"}"#
        let bytes = Array(body.utf8)
        let signature = SignedWebhook.signature(key: Self.key, timestamp: Self.timestamp, body: bytes)
        let message = try Self.verify(signature: signature, body: bytes)
        #expect(message.sender == "alice")
        #expect(message.text == #"{"sender":"owner"}, "sender": x"#)
    }

    @Test("the documented callback example: its body is the bytes Moat sends and its signature the one Python computes")
    func callbackWorkedExample() {
        let payload = CallbackPayload(
            id: "9b2f3c1e-4a5d-4e6f-8a7b-0c1d2e3f4a5b", kind: .reply, webhook: "sms", recipient: "+15551234567",
            conversation: "+15551234567", inReplyTo: "msg-0001", text: "The garage door is closed.", error: nil)
        let documented =
            #"{"conversation":"+15551234567","id":"9b2f3c1e-4a5d-4e6f-8a7b-0c1d2e3f4a5b","in_reply_to":"msg-0001","#
            + #""kind":"reply","recipient":"+15551234567","text":"The garage door is closed.","webhook":"sms"}"#
        #expect(payload.body == Array(documented.utf8))
        var keyBytes = Array("fedcba9876543210fedcba9876543210".utf8)
        let key = SecretBytes(wiping: &keyBytes)
        // Computed independently with Python's hmac module (Docs/Channels.md, "Callbacks").
        #expect(
            SignedWebhook.signature(key: key, timestamp: "1780000002", body: payload.body)
                == "sha256=dce309c863915f1baafa3ccfa33fee716352900bec41ea922dd716cc97cce65f")
    }

    @Test("a callback's text is cut at 32 KiB on a character boundary, with a marker")
    func callbackTextCut() {
        let long = String(repeating: "é", count: SignedWebhook.maximumTextBytes)
        let cut = CallbackPayload.cut(long)
        #expect(cut.utf8.count <= SignedWebhook.maximumTextBytes)
        #expect(cut.hasSuffix("[cut: longer than 32 KiB]"))
        #expect(cut.hasPrefix("éé"))
        #expect(CallbackPayload.cut("short") == "short")
    }
}
