/// How Moat's text fits Telegram: messages of at most 4096 UTF-16 code units, and button data of at most
/// 64 bytes bound to one approval.
public enum TelegramText {
    /// The longest message text `sendMessage` takes, in UTF-16 code units (what Telegram counts).
    public static let maximumMessageUnits = 4096

    /// `text` in pieces of at most `limit` UTF-16 code units, in order, none empty or only whitespace.
    ///
    /// A piece ends at the last line break that fits, else at the last space, else (one word longer than
    /// the limit) at the last whole character that fits — never inside a character, so never between the
    /// two halves of a surrogate pair or inside an emoji sequence. Moat sends plain text (no `parse_mode`);
    /// the entities Telegram finds by itself (links, @mentions, commands) hold no whitespace, so a cut at
    /// a line break or a space never splits one. The line break or space at a cut is dropped.
    public static func split(_ text: String, limit: Int = maximumMessageUnits) -> [String] {
        precondition(limit >= 2, "a piece must hold any character")
        return TextPieces.split(text, limit: limit) { $0.utf16.count }
    }

    /// `A-Z a-z 0-9 _ -`: what bot tokens, webhook secrets and Moat's button ids are made of.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }
}

/// The Approve and Deny buttons under an approval request in the owner's chat.
///
/// A button's `callback_data` is `approve:ID` or `deny:ID`, ID being the approval's id: the tap names the
/// exact approval it answers. Telegram returns the data unchanged but anyone can send any data in a
/// callback query, so the data decides nothing alone: the receiver checks that the tap came from the
/// owner's bound account, that the approval is still pending and unexpired, and uses it once.
public enum TelegramApprovalButtons {
    public enum Choice: String, Sendable, Hashable {
        case approve, deny
    }

    /// The most bytes `callback_data` may hold.
    public static let maximumDataBytes = 64

    /// `approve:ID` or `deny:ID`.
    ///
    /// - Throws: ``ChannelError`` `.invalidInput` when the id is not 1–48 of `a-z A-Z 0-9 _ -`.
    public static func data(_ choice: Choice, approvalID: String) throws(ChannelError) -> String {
        guard isValidID(approvalID) else {
            throw ChannelError(.invalidInput, "an approval id for a Telegram button is 1-48 of a-z, A-Z, 0-9, _ and -")
        }
        return choice.rawValue + ":" + approvalID
    }

    /// One row: Approve, Deny.
    public static func keyboard(approvalID: String) throws(ChannelError) -> TelegramInlineKeyboard {
        TelegramInlineKeyboard(rows: [
            [
                TelegramButton(text: "Approve", callbackData: try data(.approve, approvalID: approvalID)),
                TelegramButton(text: "Deny", callbackData: try data(.deny, approvalID: approvalID)),
            ]
        ])
    }

    /// The choice and approval id of a tap's data, or nil when it is not exactly what ``data(_:approvalID:)``
    /// makes.
    public static func parse(_ data: String) -> (choice: Choice, approvalID: String)? {
        guard data.utf8.count <= maximumDataBytes, let colon = data.firstIndex(of: ":"),
            let choice = Choice(rawValue: String(data[..<colon]))
        else { return nil }
        let id = String(data[data.index(after: colon)...])
        return isValidID(id) ? (choice, id) : nil
    }

    static func isValidID(_ id: String) -> Bool {
        (1...48).contains(id.utf8.count) && id.utf8.allSatisfy(TelegramText.isTokenByte)
    }
}

/// The inline keyboard of a pairing request sent to the owner: one button per ``PairingPrompt/Choice``, its
/// `callback_data` `pair:CHOICE:REF` (the request's reference, never the code).
public enum TelegramPairingButtons {
    /// One row per choice: "Let in (chat only)", "Let in (suggest)", "Deny".
    public static func keyboard(_ prompt: PairingPrompt) -> TelegramInlineKeyboard {
        TelegramInlineKeyboard(
            rows: PairingPrompt.Choice.allCases.map { choice in
                [TelegramButton(text: choice.label, callbackData: "pair:\(choice.rawValue):\(prompt.reference)")]
            })
    }

    /// The choice and the reference text (`pairing REF CHOICE`) of a tap's data, or nil when it is not
    /// exactly what ``keyboard(_:)`` makes.
    public static func parse(_ data: String) -> (choice: PairingPrompt.Choice, text: String)? {
        let parts = data.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard data.utf8.count <= TelegramApprovalButtons.maximumDataBytes, parts.count == 3, parts[0] == "pair",
            let choice = PairingPrompt.Choice(rawValue: parts[1]), PairingPrompt.isReference(parts[2])
        else { return nil }
        return (choice, "pairing \(parts[2]) \(choice.rawValue)")
    }
}
