import Foundation
import MoatCore
import MoatTestSupport
import MoatVault
import Testing

@testable import MoatChannels

/// The Matrix channel's pure parts: reading a `/sync` answer, the settings, the backoff, approval answers.
@Suite struct MatrixWireTests {
    static let bot = "@bot:localhost"

    static func response(_ json: String) throws -> MatrixSyncResponse {
        try JSONDecoder().decode(MatrixSyncResponse.self, from: Data(json.utf8))
    }

    /// A sync answer with `events` in the timeline of room `!r`.
    static func timeline(_ events: [String]) throws -> MatrixSyncResponse {
        try response(
            #"{"next_batch":"s2","rooms":{"join":{"!r":{"timeline":{"events":["# + events.joined(separator: ",")
                + "]}}}}}")
    }

    static func text(_ id: String, from sender: String = "@alice:localhost", _ content: String) -> String {
        #"{"type":"m.room.message","event_id":"\#(id)","sender":"\#(sender)","origin_server_ts":5,"content":\#(content)}"#
    }

    @Test("only other users' m.text messages, annotations and departures are handed over; the rest is dropped")
    func reading() throws {
        let response = try Self.timeline([
            Self.text("$1", #"{"msgtype":"m.text","body":"hello"}"#),
            Self.text("$own", from: Self.bot, #"{"msgtype":"m.text","body":"my own"}"#),
            Self.text(
                "$edit", #"{"msgtype":"m.text","body":"* x","m.relates_to":{"rel_type":"m.replace","event_id":"$1"}}"#),
            Self.text("$notice", #"{"msgtype":"m.notice","body":"a notice"}"#),
            Self.text("$image", #"{"msgtype":"m.image","body":"cat.png"}"#),
            Self.text("$nobody", #"{"msgtype":"m.text"}"#),
            Self.text("$typed", #"{"msgtype":"m.text","body":7}"#),
            #"{"type":"m.room.message","sender":"@alice:localhost","content":{"msgtype":"m.text","body":"no id"}}"#,
            #"{"type":"m.room.message","event_id":"$red","sender":"@alice:localhost","content":{},"unsigned":{"redacted_because":{}}}"#,
            #"{"event_id":"$broken"}"#,
            #"{"type":"m.reaction","event_id":"$2","sender":"@alice:localhost","origin_server_ts":5,"content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$p","key":"👍"}}}"#,
            #"{"type":"m.reaction","event_id":"$3","sender":"@alice:localhost","content":{"m.relates_to":{"rel_type":"m.reference","event_id":"$p","key":"👍"}}}"#,
            #"{"type":"m.room.member","event_id":"$4","sender":"@alice:localhost","origin_server_ts":5,"state_key":"@alice:localhost","content":{"membership":"leave"}}"#,
            #"{"type":"m.room.member","event_id":"$5","sender":"@alice:localhost","state_key":"@alice:localhost","content":{"membership":"join"}}"#,
            Self.text(
                "$6",
                #"{"msgtype":"m.text","body":"> <@bot:localhost> Approve?\n> more\n\napprove","m.relates_to":{"m.in_reply_to":{"event_id":"$p"}}}"#
            ),
        ])
        let (invites, events) = MatrixSyncReading.read(response, ownUserID: Self.bot, backlog: false)
        #expect(invites.isEmpty)
        #expect(
            events == [
                .message(
                    MatrixMessage(
                        roomID: "!r", eventID: "$1", sender: "@alice:localhost", text: "hello", inReplyTo: nil,
                        sentAt: 5)),
                .reaction(
                    MatrixReaction(roomID: "!r", eventID: "$2", sender: "@alice:localhost", relatesTo: "$p", key: "👍")),
                .left(roomID: "!r", userID: "@alice:localhost"),
                .message(
                    MatrixMessage(
                        roomID: "!r", eventID: "$6", sender: "@alice:localhost", text: "approve", inReplyTo: "$p",
                        sentAt: 5)),
            ])
        // The first sync of a fresh start: the same timeline is history, and none of it is handed over.
        #expect(MatrixSyncReading.read(response, ownUserID: Self.bot, backlog: true).events.isEmpty)
        // After a fresh start, what the homeserver stamped before it is history too (a cached first answer).
        #expect(MatrixSyncReading.read(response, ownUserID: Self.bot, backlog: false, notBefore: 6).events.isEmpty)
        #expect(MatrixSyncReading.read(response, ownUserID: Self.bot, backlog: false, notBefore: 5).events.count == 4)
    }

    @Test("invites are read from the bot's own member event: direct chats are accepted, other rooms are not")
    func invites() throws {
        func invite(_ room: String, _ content: String, stateKey: String = MatrixWireTests.bot) -> String {
            #""\#(room)":{"invite_state":{"events":[{"type":"m.room.create","sender":"@alice:localhost","state_key":"","content":{}},"#
                + #"{"type":"m.room.member","sender":"@alice:localhost","state_key":"\#(stateKey)","content":\#(content)}]}}"#
        }
        let response = try Self.response(
            #"{"next_batch":"s1","rooms":{"invite":{"#
                + [
                    invite("!a", #"{"membership":"invite","is_direct":true}"#),
                    invite("!b", #"{"membership":"invite"}"#),
                    invite("!c", #"{"membership":"invite","is_direct":"yes"}"#),
                    invite("!d", #"{"membership":"invite","is_direct":true}"#, stateKey: "@someone:localhost"),
                ].joined(separator: ",") + "}}}")
        let invites = MatrixSyncReading.read(response, ownUserID: Self.bot, backlog: true).invites
        #expect(invites.map(\.roomID) == ["!a", "!b", "!c"])
        #expect(invites.map(\.accepted) == [true, false, false])
        #expect(invites.allSatisfy { $0.inviter == "@alice:localhost" })
    }

    @Test("a reaction or a reply counts as an answer only when it is unambiguous")
    func approvalAnswers() {
        #expect(MatrixApprovalAnswer(reactionKey: "👍") == .approve)
        #expect(MatrixApprovalAnswer(reactionKey: "👍️") == .approve)
        #expect(MatrixApprovalAnswer(reactionKey: "👍🏽") == .approve)
        #expect(MatrixApprovalAnswer(reactionKey: "👎") == .deny)
        #expect(MatrixApprovalAnswer(reactionKey: "✅") == .approve)
        #expect(MatrixApprovalAnswer(reactionKey: "❌️") == .deny)
        for key in ["", "✅✅", "👍👍", "+1", "👍 ", "👌", "✔️", "❎"] {
            #expect(MatrixApprovalAnswer(reactionKey: key) == nil)
        }
        #expect(MatrixApprovalAnswer(replyText: " Approve.\n") == .approve)
        #expect(MatrixApprovalAnswer(replyText: "DENY") == .deny)
        for text in ["", "yes", "approve it", "don't approve", "approve deny", "approve?"] {
            #expect(MatrixApprovalAnswer(replyText: text) == nil)
        }
        #expect(MatrixApprovalAnswer.instructions.contains("✅") && MatrixApprovalAnswer.instructions.contains("❌"))
    }

    @Test("the backoff doubles up to its cap, keeps to the upper half of each step, and obeys retry_after_ms")
    func backoff() {
        let backoff = MatrixSyncLoop.Backoff()
        #expect(backoff.delay(afterFailures: 1, retryAfter: nil, unit: 0) == .milliseconds(500))
        #expect(backoff.delay(afterFailures: 1, retryAfter: nil, unit: 0.999_999) <= .seconds(1))
        #expect(backoff.delay(afterFailures: 3, retryAfter: nil, unit: 1) == .seconds(4))
        #expect(backoff.delay(afterFailures: 50, retryAfter: nil, unit: 1) == .seconds(60))
        #expect(backoff.delay(afterFailures: 50, retryAfter: nil, unit: 0) == .seconds(30))
        #expect(backoff.delay(afterFailures: 9, retryAfter: .milliseconds(1234), unit: 0.5) == .milliseconds(1234))
    }

    @Test("M_LIMIT_EXCEEDED is retried after retry_after_ms; a refused token is final and its value never shown")
    func failures() throws {
        let client = try MatrixClient(
            settings: MatrixSettings(
                homeserverURL: "http://127.0.0.1:8008", userID: Self.bot,
                credential: .accessToken(secret: "MATRIX_TOKEN")),
            vault: try Self.vault())
        let limited = client.failure(
            status: 429,
            body: Array(#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":2500}"#.utf8),
            retryAfterHeader: nil, token: "syt_secret")
        #expect(limited.transient && limited.retryAfter == .milliseconds(2500) && limited.error.code == .busy)
        let header = client.failure(status: 429, body: [], retryAfterHeader: "7", token: "syt_secret")
        #expect(header.retryAfter == .seconds(7))
        let refused = client.failure(
            status: 401, body: Array(#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid token syt_secret"}"#.utf8),
            retryAfterHeader: nil, token: "syt_secret")
        #expect(!refused.transient && refused.error.code == .unauthorized)
        #expect(refused.error.message.contains("MATRIX_TOKEN") && !refused.error.message.contains("syt_secret"))
        // The server's free text is never repeated, and a code of another shape is not either.
        let odd = client.failure(
            status: 400, body: Array(#"{"errcode":"<b>syt_secret</b>","error":"syt_secret"}"#.utf8),
            retryAfterHeader: nil, token: "syt_secret")
        #expect(!odd.transient && !odd.error.message.contains("syt_secret"))
        let overloaded = client.failure(status: 502, body: Array("<html>".utf8), retryAfterHeader: nil, token: "t")
        #expect(overloaded.transient && overloaded.retryAfter == nil)
    }

    @Test("transaction ids are stable per outbound message, distinct between messages, and safe in a path")
    func transactionIDs() {
        let one = MatrixClient.transactionID(for: "reply-0001")
        #expect(one == MatrixClient.transactionID(for: "reply-0001"))
        #expect(one != MatrixClient.transactionID(for: "reply-0002"))
        #expect(
            MatrixClient.transactionID(for: "a/b?c#d ü").allSatisfy {
                $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-")
            })
        #expect(MatrixClient.segment("!opaque:example.org/../x") == "%21opaque%3Aexample.org%2F..%2Fx")
    }

    @Test("channels.matrix: the URL, the user id and exactly one credential secret are checked")
    func settings() throws {
        func read(_ fields: [(String, String)]) -> Result<MatrixSettings, ConfigError> {
            let node = ConfigNode(
                .mapping(
                    fields.map {
                        (
                            ConfigNode(.scalar($0.0, plain: true), line: 2),
                            ConfigNode(.scalar($0.1, plain: true), line: 2)
                        )
                    }),
                line: 1)
            return Result { () throws(ConfigError) in try MatrixSettings.read(node, path: "channels.matrix") }
        }
        let url = ("homeserver_url", "http://127.0.0.1:8008")
        let user = ("user_id", "@moat:example.org")
        let good = try read([url, user, ("access_token_secret", "MATRIX_TOKEN")]).get()
        #expect(good.credential == .accessToken(secret: "MATRIX_TOKEN") && good.deviceID == "MOAT")
        // Through the channels: section, as config.yaml is read.
        var channels = ChannelsSettings()
        let section = ConfigNode(
            .mapping([
                (
                    ConfigNode(.scalar("matrix", plain: true), line: 1),
                    ConfigNode(
                        .mapping(
                            [url, user, ("access_token_secret", "MATRIX_TOKEN")].map {
                                (
                                    ConfigNode(.scalar($0.0, plain: true), line: 2),
                                    ConfigNode(.scalar($0.1, plain: true), line: 2)
                                )
                            }), line: 2)
                )
            ]), line: 1)
        try channels.read(section, path: "channels")
        #expect(channels.matrix == good && channels.webhooks.isEmpty)
        let login = try read([url, user, ("password_secret", "MATRIX_PASSWORD"), ("device_id", "BOT1")]).get()
        #expect(login.credential == .password(secret: "MATRIX_PASSWORD") && login.deviceID == "BOT1")
        let bad: [([(String, String)], String)] = [
            ([url, user], "exactly one"),
            ([url, user, ("access_token_secret", "A"), ("password_secret", "B")], "exactly one"),
            ([("homeserver_url", "http://me:pw@127.0.0.1:8008"), user, ("access_token_secret", "A")], "credentials"),
            ([("homeserver_url", "file:///etc/passwd"), user, ("access_token_secret", "A")], "http or https"),
            ([url, ("user_id", "moat"), ("access_token_secret", "A")], "@moat:example.org"),
            ([url, user, ("access_token_secret", "MOAT_VAULT_KEY")], "of your own"),
            ([url, user, ("access_token_secret", "lower")], "of your own"),
            ([url, user, ("access_token_secret", "A"), ("device_id", "two words")], "device_id"),
            ([url, user, ("access_token_secret", "A"), ("room", "!x")], "room"),
            ([user, ("access_token_secret", "A")], "homeserver_url is missing"),
        ]
        for (fields, expected) in bad {
            guard case .failure(let error) = read(fields) else {
                Issue.record("accepted \(fields)")
                continue
            }
            #expect((error.path + " " + error.message).contains(expected), "\(fields): \(error.message)")
        }
    }

    /// An empty vault (the client reads it only when it sends).
    static func vault() throws -> UnlockedVault {
        let directory = TemporaryDirectory("moat-matrix-wire")
        return try PreparedVault.copy(to: VaultPaths(stateDirectory: directory.path))
    }
}
