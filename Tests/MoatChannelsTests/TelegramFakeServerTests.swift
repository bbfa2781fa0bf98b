import Foundation
import MoatTestSupport
import Testing

/// The fake Bot API is only useful if it is faithful: python-telegram-bot must read what it sends (long
/// polling, an inline keyboard, a callback query, a 429 as RetryAfter), and it must refuse what the API
/// refuses.
@Suite(.promptScheduling) struct TelegramFakeServerTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let token = "123456789:AAH-fake_token-for-moat-tests-0123456789"
    static let ada = FakeTelegramServer.User(id: 4242, firstName: "Ada", username: "ada")

    /// Waits (bounded: about 180 s, for Python's start-up on a loaded 2-core machine) until `condition`
    /// holds.
    static func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(180)
        while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(25)) }
        try #require(condition())
    }

    @Test("python-telegram-bot long-polls a message, sends an inline keyboard, answers a tap and reads a 429")
    func pythonTelegramBot() async throws {
        let venv = try await PythonVenv.forTest("python-telegram-bot", packages: ["python-telegram-bot"])
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let script = Self.repository.appendingPathComponent("Tests/Clients/telegram_client_check.py").path
        async let run = venv.run(script, [server.baseURL, Self.token])
        // Each update is added while the script's long poll is held, as Telegram would deliver it.
        try await Self.until { server.calls("getUpdates").count == 1 }
        let first = server.sendPrivateMessage(from: Self.ada, text: "hello from Telegram ✓")
        try await Self.until { server.calls("getUpdates").count == 2 }
        let keyboardMessage = try #require(server.sentMessageIDs.last)
        let (tap, queryID) = server.tap(by: Self.ada, messageID: keyboardMessage, data: "approve:k7q2mxd4")
        try await Self.until { server.calls("getUpdates").count == 3 }
        server.failNext(.tooManyRequests(retryAfter: 5), method: "sendMessage")
        let second = server.sendPrivateMessage(from: Self.ada, text: "again")
        let (status, out, err) = try await run
        try #require(status == 0, "python-telegram-bot failed:\n\(err.suffix(3000))")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let me = try #require(parsed["me"] as? [String: Any])
        #expect(me["id"] as? Int64 == server.botID || me["id"] as? Int == Int(server.botID))
        #expect(me["username"] as? String == server.botUsername && me["is_bot"] as? Bool == true)
        let message = try #require(parsed["message"] as? [String: Any])
        #expect(message["update_id"] as? Int == Int(first))
        #expect(message["chat_id"] as? Int == 4242 && message["from_id"] as? Int == 4242)
        #expect(message["chat_type"] as? String == "private" && message["username"] as? String == "ada")
        #expect(message["text"] as? String == "hello from Telegram ✓")
        let sent = try #require(parsed["sent"] as? [String: Any])
        #expect(sent["message_id"] as? Int == Int(keyboardMessage))
        #expect(sent["buttons"] as? [String] == ["approve:k7q2mxd4", "deny:k7q2mxd4"])
        let callback = try #require(parsed["callback"] as? [String: Any])
        #expect(callback["update_id"] as? Int == Int(tap) && callback["data"] as? String == "approve:k7q2mxd4")
        #expect(callback["from_id"] as? Int == 4242 && callback["message_id"] as? Int == Int(keyboardMessage))
        #expect(parsed["answered"] as? Bool == true)
        #expect(parsed["edited_markup"] is NSNull)
        let limited = try #require(parsed["rate_limited"] as? [String: Any])
        #expect(limited["class"] as? String == "RetryAfter" && limited["retry_after"] as? Int == 5)
        #expect(parsed["left"] as? Int == 0)
        #expect(server.calls("answerCallbackQuery").first?.parameters["callback_query_id"] == queryID)
        #expect(server.pendingUpdateIDs.isEmpty && second > tap)
    }

    @Test("the fake refuses what the API refuses: a wrong token, a text too long, bad button data, an unknown chat")
    func refusesWhatTheAPIRefuses() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        func post(_ path: String, _ body: String) async throws -> (status: Int, body: String) {
            let response = try await RawHTTP.sendOffPool(
                "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)", port: server.port)
            return (response.status, response.body)
        }
        server.sendPrivateMessage(from: Self.ada, text: "hi")
        let wrongToken = try await post("/bot123456789:AAH-wrong_token-for-moat-tests-000000000/getMe", "{}")
        #expect(
            wrongToken.status == 401
                && wrongToken.body == #"{"description":"Unauthorized","error_code":401,"ok":false}"#)
        let noBot = try await post("/getMe", "{}")
        #expect(noBot.status == 404 && noBot.body.contains(#""description":"Not Found""#))
        let bot = "/bot\(Self.token)"
        let tooLong = try await post(
            bot + "/sendMessage", #"{"chat_id":4242,"text":"\#(String(repeating: "x", count: 4097))"}"#)
        #expect(tooLong.status == 400 && tooLong.body.contains("message is too long"))
        let empty = try await post(bot + "/sendMessage", #"{"chat_id":4242,"text":"  "}"#)
        #expect(empty.status == 400 && empty.body.contains("message text is empty"))
        let data = String(repeating: "d", count: 65)
        let badButton = try await post(
            bot + "/sendMessage",
            #"{"chat_id":4242,"text":"x","reply_markup":{"inline_keyboard":[[{"text":"A","callback_data":"\#(data)"}]]}}"#
        )
        #expect(badButton.status == 400 && badButton.body.contains("BUTTON_DATA_INVALID"))
        let unknownChat = try await post(bot + "/sendMessage", #"{"chat_id":777,"text":"x"}"#)
        #expect(unknownChat.status == 400 && unknownChat.body.contains("chat not found"))
        let httpHook = try await post(bot + "/setWebhook", #"{"url":"http://example.org/hook"}"#)
        #expect(httpHook.status == 400 && httpHook.body.contains("HTTPS URL must be provided"))
        let unknown = try await post(bot + "/sendDice", "{}")
        #expect(unknown.status == 404)
        let ok = try await post(bot + "/sendMessage", #"{"chat_id":4242,"text":"fine"}"#)
        #expect(ok.status == 200 && ok.body.hasPrefix(#"{"ok":true,"result":{"chat":"#))
    }
}
