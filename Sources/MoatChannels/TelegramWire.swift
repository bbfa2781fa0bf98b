public import Foundation

// The Telegram Bot API's objects, as far as Moat reads or writes them (https://core.telegram.org/bots/api).
// Field names are the API's own (snake_case). Decoding is strict about what Moat needs (a missing or
// mistyped field is an error) and ignores fields Moat does not read: the API adds fields in every release.

/// A Telegram user or bot (`User`).
public struct TelegramUser: Sendable, Hashable, Codable {
    public let id: Int64
    public let isBot: Bool
    public let firstName: String
    public let lastName: String?
    public let username: String?

    public init(id: Int64, isBot: Bool, firstName: String, lastName: String? = nil, username: String? = nil) {
        self.id = id
        self.isBot = isBot
        self.firstName = firstName
        self.lastName = lastName
        self.username = username
    }

    enum CodingKeys: String, CodingKey {
        case id
        case isBot = "is_bot"
        case firstName = "first_name"
        case lastName = "last_name"
        case username
    }
}

/// A chat (`Chat`): `type` is `private`, `group`, `supergroup` or `channel`.
public struct TelegramChat: Sendable, Hashable, Codable {
    public let id: Int64
    public let type: String

    public init(id: Int64, type: String) {
        self.id = id
        self.type = type
    }

    /// A one-to-one chat between a user and the bot: the only kind Moat answers.
    public var isPrivate: Bool { type == "private" }
}

/// A message (`Message`, or an `InaccessibleMessage`, whose `date` is 0, inside a callback query).
public struct TelegramMessage: Sendable, Hashable, Codable {
    public let messageID: Int64
    public let from: TelegramUser?
    public let chat: TelegramChat
    /// Unix seconds.
    public let date: Int64
    public let text: String?

    public init(messageID: Int64, from: TelegramUser?, chat: TelegramChat, date: Int64, text: String?) {
        self.messageID = messageID
        self.from = from
        self.chat = chat
        self.date = date
        self.text = text
    }

    enum CodingKeys: String, CodingKey {
        case messageID = "message_id"
        case from, chat, date, text
    }
}

/// A tap on an inline keyboard button (`CallbackQuery`).
public struct TelegramCallbackQuery: Sendable, Hashable, Codable {
    public let id: String
    public let from: TelegramUser
    /// The message with the button (absent for buttons of inline-mode messages, which Moat never sends).
    public let message: TelegramMessage?
    public let chatInstance: String
    /// The button's `callback_data` (1–64 bytes).
    public let data: String?

    public init(id: String, from: TelegramUser, message: TelegramMessage?, chatInstance: String, data: String?) {
        self.id = id
        self.from = from
        self.message = message
        self.chatInstance = chatInstance
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case id, from, message, data
        case chatInstance = "chat_instance"
    }
}

/// One incoming update (`Update`): its id and at most one of the kinds Moat reads.
///
/// An update of another kind (channel posts, inline queries, reactions, …) or one whose known part does
/// not decode keeps its id with ``kind`` `.other`: its offset is still confirmed, so one unreadable
/// update can never stall the channel.
public struct TelegramUpdate: Sendable, Hashable, Decodable {
    public enum Kind: Sendable, Hashable {
        case message(TelegramMessage)
        case editedMessage(TelegramMessage)
        case callbackQuery(TelegramCallbackQuery)
        /// Another kind, or a known kind that did not decode; the text says which.
        case other(String)
    }

    public let updateID: Int64
    public let kind: Kind

    public init(updateID: Int64, kind: Kind) {
        self.updateID = updateID
        self.kind = kind
    }

    enum CodingKeys: String, CodingKey {
        case updateID = "update_id"
        case message
        case editedMessage = "edited_message"
        case callbackQuery = "callback_query"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        updateID = try container.decode(Int64.self, forKey: .updateID)
        if container.contains(.message) {
            kind =
                (try? container.decode(TelegramMessage.self, forKey: .message)).map { .message($0) }
                ?? .other("a message Moat cannot read")
        } else if container.contains(.editedMessage) {
            kind =
                (try? container.decode(TelegramMessage.self, forKey: .editedMessage)).map { .editedMessage($0) }
                ?? .other("an edited message Moat cannot read")
        } else if container.contains(.callbackQuery) {
            kind =
                (try? container.decode(TelegramCallbackQuery.self, forKey: .callbackQuery)).map { .callbackQuery($0) }
                ?? .other("a button tap Moat cannot read")
        } else {
            let any = try decoder.container(keyedBy: AnyKey.self)
            let name = any.allKeys.map(\.stringValue).first { $0 != "update_id" } ?? "nothing"
            kind = .other("an update of kind " + Self.keyName(name))
        }
    }

    /// A key name from outside, reduced to at most 40 of `a-z 0-9 _`.
    static func keyName(_ name: String) -> String {
        String(
            name.unicodeScalars.filter { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }.prefix(40)
                .map(Character.init))
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// One inline keyboard button that sends `callback_data` back when tapped.
public struct TelegramButton: Sendable, Hashable, Codable {
    public let text: String
    public let callbackData: String

    public init(text: String, callbackData: String) {
        self.text = text
        self.callbackData = callbackData
    }

    enum CodingKeys: String, CodingKey {
        case text
        case callbackData = "callback_data"
    }
}

/// `InlineKeyboardMarkup`: rows of buttons under a message.
public struct TelegramInlineKeyboard: Sendable, Hashable, Codable {
    public let rows: [[TelegramButton]]

    public init(rows: [[TelegramButton]]) { self.rows = rows }

    enum CodingKeys: String, CodingKey { case rows = "inline_keyboard" }
}

/// `WebhookInfo`: what Telegram has on record for the bot's webhook (`getWebhookInfo`). The secret token is
/// never returned, so only the URL and the delivery errors can be checked.
public struct TelegramWebhookInfo: Sendable, Hashable, Decodable {
    /// The webhook URL, empty when none is set (the bot is in `getUpdates` mode).
    public let url: String
    public let pendingUpdateCount: Int
    /// The last delivery error Telegram saw (untrusted text), if any.
    public let lastErrorMessage: String?
    public let allowedUpdates: [String]?

    enum CodingKeys: String, CodingKey {
        case url
        case pendingUpdateCount = "pending_update_count"
        case lastErrorMessage = "last_error_message"
        case allowedUpdates = "allowed_updates"
    }
}

/// `ResponseParameters`: why a request failed and what to do.
struct TelegramResponseParameters: Sendable, Decodable {
    let retryAfter: Int?
    let migrateToChatID: Int64?

    enum CodingKeys: String, CodingKey {
        case retryAfter = "retry_after"
        case migrateToChatID = "migrate_to_chat_id"
    }
}

/// Every answer: `{"ok": true, "result": …}` or `{"ok": false, "error_code": N, "description": "…"[,
/// "parameters": {…}]}`. `ok` must be a boolean; a success must carry a `result` of the method's type.
struct TelegramEnvelope<Result: Decodable>: Decodable {
    enum Outcome {
        case success(Result)
        case failure(code: Int, description: String, parameters: TelegramResponseParameters?)
    }
    let outcome: Outcome

    enum CodingKeys: String, CodingKey {
        case ok, result, parameters, description
        case errorCode = "error_code"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if try container.decode(Bool.self, forKey: .ok) {
            outcome = .success(try container.decode(Result.self, forKey: .result))
        } else {
            outcome = .failure(
                code: try container.decode(Int.self, forKey: .errorCode),
                description: try container.decodeIfPresent(String.self, forKey: .description) ?? "",
                parameters: try container.decodeIfPresent(TelegramResponseParameters.self, forKey: .parameters))
        }
    }
}
