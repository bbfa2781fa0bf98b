import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A Telegram Bot API server for tests: a real HTTP/1.1 server on 127.0.0.1 that speaks the API's JSON
/// (https://core.telegram.org/bots/api) for one bot, scripted by the test. No Bot API emulator fits on
/// PyPI, so this one is kept honest by python-telegram-bot run against it (TelegramFakeServerTests).
///
/// **Requests** are `GET` or `POST` to `/bot<TOKEN>/<METHOD>` with parameters in the query string, an
/// `application/x-www-form-urlencoded` body (objects as JSON text, as python-telegram-bot sends them) or
/// an `application/json` body (what Moat sends). A wrong token answers 401 `Unauthorized`, a path that is
/// not a bot's or an unknown method 404 `Not Found`, as the API does. Every answer is the API's envelope:
/// `{"ok":true,"result":…}` or `{"ok":false,"error_code":N,"description":"…"[,"parameters":{…}]}`, with
/// the HTTP status equal to `error_code`.
///
/// **Updates** get increasing `update_id`s. `getUpdates` with `offset` N forgets every update below N (it
/// is confirmed); without one it returns the oldest unconfirmed updates, at most `limit` (1–100, default
/// 100). With `timeout` > 0 and nothing to return, the request is held until an update arrives or the
/// timeout passes (then `[]`); a second `getUpdates` while one is held ends the first with 409, and any
/// `getUpdates` while a webhook is set is refused with 409 — both in Telegram's words. `allowed_updates`
/// applies to updates created after the call that set it.
///
/// **Methods**: `getMe`, `getUpdates`, `sendMessage` (text 1–4096 UTF-16 code units after trimming,
/// `reply_markup` an inline keyboard whose `callback_data` are 1–64 bytes, a known private chat),
/// `answerCallbackQuery` (a known query, answered once), `editMessageReplyMarkup` (a message the bot
/// sent; a markup equal to the current one is "not modified"), `setWebhook` (https only, a secret of
/// `A-Z a-z 0-9 _ -`), `deleteWebhook`, `getWebhookInfo` (the URL, empty when none; never the secret).
/// Errors carry the API's descriptions (`Bad Request: chat not found`, …).
///
/// **Scripting**: ``sendPrivateMessage(from:text:)``, ``sendGroupMessage(from:groupID:text:)``,
/// ``editMessage(from:messageID:text:)``, ``tap(by:messageID:data:)`` add updates;
/// ``setWebhookElsewhere(_:lastError:)`` sets a webhook as another program would, ``holdPollsUntilClosed()``
/// keeps a long poll past its timeout; ``failNext(_:method:)`` makes the next request (of a method) fail
/// (429 with `retry_after`, a 5xx, a description quoting the path);
/// ``calls`` records every request's method and parameters (objects as JSON text).
public final class FakeTelegramServer: Sendable {
    /// A Telegram account that talks to the bot.
    public struct User: Sendable, Hashable {
        public let id: Int64
        public let firstName: String
        public let username: String?

        public init(id: Int64, firstName: String, username: String? = nil) {
            self.id = id
            self.firstName = firstName
            self.username = username
        }

        var json: [String: Any] {
            var object: [String: Any] = ["id": id, "is_bot": false, "first_name": firstName, "language_code": "en"]
            if let username { object["username"] = username }
            return object
        }

        /// The private chat with the bot (its id is the user's).
        var privateChat: [String: Any] {
            var object: [String: Any] = ["id": id, "type": "private", "first_name": firstName]
            if let username { object["username"] = username }
            return object
        }
    }

    /// A failure for the next request.
    public enum Fault: Sendable {
        /// 429 `Too Many Requests: retry after N` with `parameters.retry_after` N.
        case tooManyRequests(retryAfter: Int)
        /// This 5xx status with the API's envelope.
        case serverError(Int)
        /// A 502 with an HTML page, as a proxy in front of the API answers.
        case badGatewayPage
        /// The request is taken (and recorded), then the connection is closed in the middle of the answer.
        case cutConnection
        /// 400 whose description quotes the request's path (`/bot<TOKEN>/METHOD`), as some proxies answer.
        case echoPath
        /// `setWebhook` succeeds, but another program sets its own URL right after (`getWebhookInfo` shows it).
        case webhookReplacedBy(String)
    }

    /// One request the server answered (or refused).
    public struct Call: Sendable {
        public let method: String
        /// Parameters by name; objects and arrays as their JSON text, as the form encoding carries them.
        public let parameters: [String: String]
    }

    public let port: Int
    /// The bot's token (`123456789:…`): the only one the server accepts.
    public let token: String
    /// The bot itself (`getMe`).
    public let botID: Int64 = 7_000_000_001
    public let botUsername = "moat_test_bot"
    /// `http://127.0.0.1:PORT`: the base URL (clients add `/bot<TOKEN>/METHOD`).
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private let channel: any Channel
    private let state: Mutex<State>

    struct Update {
        let id: Int64
        let kind: String
        let body: [String: Any]
    }

    struct SentMessage {
        let chatID: Int64
        let text: String
        var markup: String?
    }

    struct Poll {
        let serial: Int
        let respond: @Sendable (ScriptedAnswer) -> Void
        let timer: Scheduled<Void>
    }

    struct State: @unchecked Sendable {  // guarded by the mutex; the JSON dictionaries are never shared
        var nextUpdateID: Int64 = 872_000_001
        var nextMessageID: Int64 = 1
        var nextQueryID: UInt64 = 4_211_000_000_000_000_001
        var updates: [Update] = []
        var allowedUpdates: [String]?
        var users: [Int64: User] = [:]
        var sent: [Int64: SentMessage] = [:]
        var openQueries: Set<String> = []
        var faults: [(method: String?, fault: Fault)] = []
        var calls: [Call] = []
        var poll: Poll?
        var pollSerial = 0
        var webhook: String?
        var webhookError: String?
        /// Held polls wait until an update arrives or the client goes, whatever their `timeout`.
        var holdPollsUntilClosed = false
    }

    /// Starts on a free port of 127.0.0.1 for the bot with `token`.
    public static func start(token: String = "123456789:AAH-fake_token-for-moat-tests-0123456789") async throws
        -> FakeTelegramServer
    {
        try await startScriptedServer {
            FakeTelegramServer(channel: $0, token: token)
        } answer: { server, method, uri, headers, body in
            server.answer(method: method, uri: uri, headers: headers, body: body)
        }
    }

    init(channel: any Channel, token: String) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.token = token
        self.state = Mutex(State())
    }

    public func stop() async {
        let poll = state.withLock { state -> Poll? in
            defer { state.poll = nil }
            return state.poll
        }
        poll?.timer.cancel()
        try? await channel.close()
    }

    // MARK: Scripting

    /// A text message from `user` in their private chat with the bot; returns its update id.
    @discardableResult
    public func sendPrivateMessage(from user: User, text: String) -> Int64 {
        add(kind: "message") { state, id in
            state.users[user.id] = user
            let messageID = state.takeMessageID()
            return [
                "message_id": messageID, "from": user.json, "chat": user.privateChat, "date": Self.now(),
                "text": text,
            ]
        }
    }

    /// A text message from `user` in a group the bot is in; returns its update id.
    @discardableResult
    public func sendGroupMessage(from user: User, groupID: Int64 = -1_001_234_567_890, text: String) -> Int64 {
        add(kind: "message") { state, _ in
            [
                "message_id": state.takeMessageID(), "from": user.json,
                "chat": ["id": groupID, "type": "supergroup", "title": "Moat test group"], "date": Self.now(),
                "text": text,
            ]
        }
    }

    /// `user` edited their message `messageID` to `text`; returns the update id.
    @discardableResult
    public func editMessage(from user: User, messageID: Int64, text: String) -> Int64 {
        add(kind: "edited_message") { _, _ in
            [
                "message_id": messageID, "from": user.json, "chat": user.privateChat, "date": Self.now() - 60,
                "edit_date": Self.now(), "text": text,
            ]
        }
    }

    /// `user` tapped a button with `data` under the bot's message `messageID`; returns the update id and
    /// the callback query's id.
    @discardableResult
    public func tap(by user: User, messageID: Int64, data: String) -> (updateID: Int64, queryID: String) {
        var queryID = ""
        let updateID = add(kind: "callback_query") { state, _ in
            queryID = String(state.nextQueryID)
            state.nextQueryID += 1
            state.openQueries.insert(queryID)
            var message: [String: Any] = [
                "message_id": messageID, "chat": user.privateChat, "date": Self.now(),
                "from": self.botJSON,
            ]
            if let sent = state.sent[messageID] {
                message["text"] = sent.text
                if let markup = sent.markup, let object = Self.object(markup) { message["reply_markup"] = object }
            }
            return [
                "id": queryID, "from": user.json, "message": message, "chat_instance": "-3141592653589793238",
                "data": data,
            ]
        }
        return (updateID, queryID)
    }

    /// A webhook set by another program (as a leftover of webhook mode is): `getUpdates` answers 409 until
    /// `deleteWebhook`. `lastError` is what `getWebhookInfo` reports as its last delivery error.
    public func setWebhookElsewhere(_ url: String, lastError: String? = nil) {
        state.withLock { state in
            state.webhook = url
            state.webhookError = lastError
        }
    }

    /// From now on a held `getUpdates` ends only when an update arrives or the client closes the connection,
    /// never at its `timeout` (a test of shutdown cannot then pass by waiting the poll out).
    public func holdPollsUntilClosed() {
        state.withLock { $0.holdPollsUntilClosed = true }
    }

    /// Whether a `getUpdates` is held right now.
    public var isHoldingPoll: Bool { state.withLock { $0.poll != nil } }

    /// The next request (of `method`, when given) fails with `fault`; several queue up in order.
    public func failNext(_ fault: Fault, method: String? = nil) {
        state.withLock { $0.faults.append((method, fault)) }
    }

    /// Every request answered so far, in order.
    public var calls: [Call] { state.withLock { $0.calls } }

    /// The requests of `method`.
    public func calls(_ method: String) -> [Call] { calls.filter { $0.method == method } }

    /// The ids of the updates not yet confirmed.
    public var pendingUpdateIDs: [Int64] { state.withLock { $0.updates.map(\.id) } }

    /// The ids of the messages the bot sent, in order.
    public var sentMessageIDs: [Int64] { state.withLock { $0.sent.keys.sorted() } }

    /// The messages the bot sent, in order: id, chat, text and the reply markup's JSON (nil once removed).
    public var sentMessages: [(id: Int64, chatID: Int64, text: String, markup: String?)] {
        state.withLock { state in
            state.sent.keys.sorted().map {
                (id: $0, chatID: state.sent[$0]!.chatID, text: state.sent[$0]!.text, markup: state.sent[$0]!.markup)
            }
        }
    }

    /// The URL given to `setWebhook`, while one is set.
    public var webhookURL: String? { state.withLock { $0.webhook } }

    /// The update `id` as Telegram would POST it to a webhook (a JSON object), while it is pending.
    public func updateJSON(_ id: Int64) -> [UInt8]? {
        state.withLock { state in state.updates.first { $0.id == id }.map { Self.encode(Self.json($0)) } }
    }

    // MARK: Serving

    private func add(kind: String, _ make: (inout State, Int64) -> [String: Any]) -> Int64 {
        let (id, poll, deliverable) = state.withLock { state -> (Int64, Poll?, [Update]) in
            let id = state.nextUpdateID
            state.nextUpdateID += 1
            let body = make(&state, id)
            if let allowed = state.allowedUpdates, !allowed.isEmpty, !allowed.contains(kind) { return (id, nil, []) }
            state.updates.append(Update(id: id, kind: kind, body: body))
            guard let poll = state.poll else { return (id, nil, []) }
            state.poll = nil
            return (id, poll, Array(state.updates.prefix(100)))
        }
        if let poll {
            poll.timer.cancel()
            poll.respond(Self.success(deliverable.map(Self.json)))
        }
        return id
    }

    func answer(method httpMethod: String, uri: String, headers: HTTPHeaders, body: [UInt8]) -> ScriptedAnswer {
        let path = String(uri.split(separator: "?", maxSplits: 1).first ?? "")
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard httpMethod == "GET" || httpMethod == "POST", segments.count == 3, segments[0].isEmpty,
            segments[1].hasPrefix("bot")
        else { return Self.failure(404, "Not Found") }
        guard String(segments[1].dropFirst(3)) == token else { return Self.failure(401, "Unauthorized") }
        let method = String(segments[2])
        let parameters = Self.parameters(uri: uri, headers: headers, body: body)
        let fault = state.withLock { state -> Fault? in
            state.calls.append(Call(method: method, parameters: parameters))
            guard let index = state.faults.firstIndex(where: { $0.method == nil || $0.method == method }) else {
                return nil
            }
            return state.faults.remove(at: index).fault
        }
        switch fault {
        case .tooManyRequests(let seconds):
            return Self.failure(
                429, "Too Many Requests: retry after \(seconds)", parameters: ["retry_after": seconds])
        case .serverError(let status):
            return Self.failure(status, status == 502 ? "Bad Gateway" : "Internal Server Error")
        case .badGatewayPage:
            return ScriptedAnswer(
                status: 502, headers: [("Content-Type", "text/html")],
                pieces: [Array("<html><body><h1>502 Bad Gateway</h1></body></html>".utf8)])
        case .cutConnection:
            return ScriptedAnswer(
                headers: [("Content-Type", "application/json"), ("Content-Length", "64")],
                pieces: [Array(#"{"ok":true,"res"#.utf8)], end: .cut)
        case .echoPath:
            return Self.failure(400, "Bad Request: no such method at \(path)")
        case .webhookReplacedBy(let other):
            state.withLock { $0.webhook = other }
            return Self.success(true, description: "Webhook was set")
        case nil:
            break
        }
        switch method.lowercased() {
        case "getme": return Self.success(botJSON.merging(Self.botCapabilities) { first, _ in first })
        case "getupdates": return getUpdates(parameters)
        case "sendmessage": return sendMessage(parameters)
        case "answercallbackquery": return answerCallbackQuery(parameters)
        case "editmessagereplymarkup": return editReplyMarkup(parameters)
        case "setwebhook": return setWebhook(parameters)
        case "deletewebhook":
            state.withLock { state in
                state.webhook = nil
                state.webhookError = nil
                if parameters["drop_pending_updates"] == "true" { state.updates = [] }
            }
            return Self.success(true, description: "Webhook was deleted")
        case "getwebhookinfo":
            let info = state.withLock { state -> [String: Any] in
                var info: [String: Any] = [
                    "url": state.webhook ?? "", "has_custom_certificate": false,
                    "pending_update_count": state.updates.count,
                ]
                if let error = state.webhookError {
                    info["last_error_message"] = error
                    info["last_error_date"] = Self.now()
                }
                if state.webhook != nil, let allowed = state.allowedUpdates { info["allowed_updates"] = allowed }
                return info
            }
            return Self.success(info)
        default:
            return Self.failure(404, "Not Found")
        }
    }

    var botJSON: [String: Any] {
        ["id": botID, "is_bot": true, "first_name": "Moat Test", "username": botUsername]
    }

    static var botCapabilities: [String: Any] {
        [
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false,
        ]
    }

    func getUpdates(_ parameters: [String: String]) -> ScriptedAnswer {
        guard let offset = Self.integer(parameters["offset"], default: 0),
            let limit = Self.integer(parameters["limit"], default: 100),
            let timeout = Self.integer(parameters["timeout"], default: 0)
        else { return Self.failure(400, "Bad Request: wrong parameter type") }
        var allowed: [String]?
        if let text = parameters["allowed_updates"] {
            guard let list = Self.object(text) as? [String] else {
                return Self.failure(400, "Bad Request: can't parse allowed updates")
            }
            allowed = list
        }
        let clamped = max(1, min(100, Int(limit)))
        let (ready, replaced, conflict) = state.withLock { state -> ([Update]?, Poll?, Bool) in
            if state.webhook != nil { return (nil, nil, true) }
            if let allowed { state.allowedUpdates = allowed }
            if offset > 0 {
                state.updates.removeAll { $0.id < offset }
            } else if offset < 0 {
                state.updates = Array(state.updates.suffix(Int(-offset)))
            }
            let replaced = state.poll
            state.poll = nil
            if !state.updates.isEmpty || timeout <= 0 { return (Array(state.updates.prefix(clamped)), replaced, false) }
            return (nil, replaced, false)
        }
        if let replaced {
            replaced.timer.cancel()
            replaced.respond(
                Self.failure(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
                ))
        }
        if conflict {
            return Self.failure(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
            )
        }
        if let ready { return Self.success(ready.map(Self.json)) }
        return ScriptedAnswer(hold: { [self] respond in
            let serial = state.withLock { state -> Int in
                state.pollSerial += 1
                return state.pollSerial
            }
            let wait = state.withLock { $0.holdPollsUntilClosed } ? Int64(24 * 3600) : timeout
            let timer = MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: .seconds(wait)) { [self] in
                let expired = state.withLock { state -> Bool in
                    guard let poll = state.poll, poll.serial == serial else { return false }
                    state.poll = nil
                    return true
                }
                if expired { respond(Self.success([Any]())) }
            }
            // An update that arrived between the check above and now is answered at once.
            let arrived = state.withLock { state -> [Update]? in
                if !state.updates.isEmpty { return Array(state.updates.prefix(clamped)) }
                state.poll = Poll(serial: serial, respond: respond, timer: timer)
                return nil
            }
            if let arrived {
                timer.cancel()
                respond(Self.success(arrived.map(Self.json)))
            }
        })
    }

    func sendMessage(_ parameters: [String: String]) -> ScriptedAnswer {
        guard let chatText = parameters["chat_id"] else { return Self.failure(400, "Bad Request: chat_id is empty") }
        guard let text = parameters["text"], !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            return Self.failure(400, "Bad Request: message text is empty")
        }
        guard text.utf16.count <= 4096 else { return Self.failure(400, "Bad Request: message is too long") }
        var markup: [String: Any]?
        if let markupText = parameters["reply_markup"] {
            guard let object = Self.object(markupText) as? [String: Any], Self.isInlineKeyboard(object) else {
                return Self.failure(400, "Bad Request: can't parse reply keyboard markup JSON object")
            }
            guard Self.callbackDataFits(object) else { return Self.failure(400, "Bad Request: BUTTON_DATA_INVALID") }
            markup = object
        }
        let markupText = markup.map { Self.text(Self.encode($0)) }
        let recipient = state.withLock { state -> (Int64, User)? in
            guard let chatID = Int64(chatText), let user = state.users[chatID] else { return nil }
            let id = state.takeMessageID()
            state.sent[id] = SentMessage(chatID: chatID, text: text, markup: markupText)
            return (id, user)
        }
        guard let (id, user) = recipient else { return Self.failure(400, "Bad Request: chat not found") }
        var message: [String: Any] = [
            "message_id": id, "from": botJSON, "chat": user.privateChat, "date": Self.now(), "text": text,
        ]
        if let markup { message["reply_markup"] = markup }
        return Self.success(message)
    }

    func answerCallbackQuery(_ parameters: [String: String]) -> ScriptedAnswer {
        if let text = parameters["text"], text.count > 200 {
            return Self.failure(400, "Bad Request: MESSAGE_TOO_LONG")
        }
        let known = state.withLock { state in
            parameters["callback_query_id"].map { state.openQueries.remove($0) != nil } ?? false
        }
        guard known else {
            return Self.failure(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        }
        return Self.success(true)
    }

    func editReplyMarkup(_ parameters: [String: String]) -> ScriptedAnswer {
        var markup: [String: Any]?
        if let markupText = parameters["reply_markup"] {
            guard let object = Self.object(markupText) as? [String: Any], Self.isInlineKeyboard(object) else {
                return Self.failure(400, "Bad Request: can't parse reply keyboard markup JSON object")
            }
            markup = object
        }
        let newMarkup = markup.map { Self.text(Self.encode($0)) }
        enum Outcome {
            case edited(Int64, User, String)
            case notFound, notModified
        }
        let outcome = state.withLock { state -> Outcome in
            guard let chatID = parameters["chat_id"].flatMap({ Int64($0) }),
                let messageID = parameters["message_id"].flatMap({ Int64($0) }),
                var sent = state.sent[messageID], sent.chatID == chatID, let user = state.users[chatID]
            else { return .notFound }
            let empty = #"{"inline_keyboard":[]}"#
            guard (sent.markup ?? empty) != (newMarkup ?? empty) else { return .notModified }
            sent.markup = newMarkup
            state.sent[messageID] = sent
            return .edited(messageID, user, sent.text)
        }
        switch outcome {
        case .edited(let messageID, let user, let text):
            var message: [String: Any] = [
                "message_id": messageID, "from": botJSON, "chat": user.privateChat, "date": Self.now(),
                "edit_date": Self.now(), "text": text,
            ]
            if let markup { message["reply_markup"] = markup }
            return Self.success(message)
        case .notFound: return Self.failure(400, "Bad Request: message to edit not found")
        case .notModified:
            return Self.failure(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are exactly the "
                    + "same as a current content and reply markup of the message")
        }
    }

    func setWebhook(_ parameters: [String: String]) -> ScriptedAnswer {
        guard let url = parameters["url"], url.hasPrefix("https://") else {
            return Self.failure(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        }
        if let secret = parameters["secret_token"] {
            let allowed =
                (1...256).contains(secret.utf8.count)
                && secret.unicodeScalars.allSatisfy {
                    $0.isASCII && (($0.properties.isAlphabetic) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-")
                }
            guard allowed else { return Self.failure(400, "Bad Request: secret token contains unallowed characters") }
        }
        state.withLock { state in
            state.webhook = url
            if let text = parameters["allowed_updates"], let list = Self.object(text) as? [String] {
                state.allowedUpdates = list
            }
            if parameters["drop_pending_updates"] == "true" { state.updates = [] }
        }
        return Self.success(true, description: "Webhook was set")
    }

    // MARK: Encoding

    static func json(_ update: Update) -> [String: Any] { ["update_id": update.id, update.kind: update.body] }

    static func success(_ result: Any, description: String? = nil) -> ScriptedAnswer {
        var envelope: [String: Any] = ["ok": true, "result": result]
        if let description { envelope["description"] = description }
        return answer(200, envelope)
    }

    static func failure(_ code: Int, _ description: String, parameters: [String: Any]? = nil) -> ScriptedAnswer {
        var envelope: [String: Any] = ["ok": false, "error_code": code, "description": description]
        if let parameters { envelope["parameters"] = parameters }
        return answer(code, envelope)
    }

    static func answer(_ status: Int, _ envelope: [String: Any]) -> ScriptedAnswer {
        let body = encode(envelope)
        return ScriptedAnswer(
            status: status,
            headers: [("Content-Type", "application/json"), ("Content-Length", String(body.count))],
            pieces: [body])
    }

    static func encode(_ object: Any) -> [UInt8] {
        (try? Array(
            JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])))
            ?? Array("{}".utf8)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func object(_ text: String) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    static func now() -> Int { Int(Date().timeIntervalSince1970) }

    /// An integer parameter (absent: `default`; not an integer: nil).
    static func integer(_ text: String?, default value: Int64) -> Int64? {
        guard let text else { return value }
        return Int64(text)
    }

    static func isInlineKeyboard(_ object: [String: Any]) -> Bool {
        guard let rows = object["inline_keyboard"] as? [[Any]] else { return false }
        return rows.allSatisfy { row in
            row.allSatisfy { button in
                guard let button = button as? [String: Any], let text = button["text"] as? String, !text.isEmpty else {
                    return false
                }
                return button["callback_data"] is String || button["url"] is String
            }
        }
    }

    static func callbackDataFits(_ object: [String: Any]) -> Bool {
        let rows = object["inline_keyboard"] as? [[[String: Any]]] ?? []
        return rows.joined().allSatisfy { button in
            guard let data = button["callback_data"] as? String else { return true }
            return (1...64).contains(data.utf8.count)
        }
    }

    /// The request's parameters: the query string, then the body (form-encoded or JSON) over it.
    static func parameters(uri: String, headers: HTTPHeaders, body: [UInt8]) -> [String: String] {
        var parameters: [String: String] = [:]
        if let question = uri.firstIndex(of: "?") {
            parameters.merge(form(String(uri[uri.index(after: question)...]))) { _, new in new }
        }
        let type = headers.first(name: "content-type")?.lowercased() ?? ""
        if type.hasPrefix("application/json") {
            if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] {
                for (key, value) in object {
                    parameters[key] = value as? String ?? text(encode(value))
                }
            }
        } else if type.hasPrefix("application/x-www-form-urlencoded") {
            parameters.merge(form(text(body))) { _, new in new }
        }
        return parameters
    }

    static func form(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                (part.replacingOccurrences(of: "+", with: " ")).removingPercentEncoding ?? String(part)
            }
            result[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return result
    }
}

extension FakeTelegramServer.State {
    mutating func takeMessageID() -> Int64 {
        defer { nextMessageID += 1 }
        return nextMessageID
    }
}
