import Foundation

/// What the Matrix channel hands over from a `/sync`: a message, a reaction, a room the bot joined, or
/// a member leaving. Each has an ``idempotencyKey`` (the event id), so a batch handed over again after a
/// crash before its `since` was stored is recognised.
public enum MatrixInbound: Sendable, Hashable {
    /// An `m.text` message from another user.
    case message(MatrixMessage)
    /// An `m.reaction` (`m.annotation`) on an event.
    case reaction(MatrixReaction)
    /// The bot joined `roomID`, to which `inviter` had invited it as a direct chat.
    case joined(roomID: String, inviter: String)
    /// `userID` left `roomID` (or was removed from it).
    case left(roomID: String, userID: String)

    /// The key a receiver dedupes on: the event id (for a join, the room).
    public var idempotencyKey: String {
        switch self {
        case .message(let message): message.eventID
        case .reaction(let reaction): reaction.eventID
        case .joined(let roomID, _): "join:" + roomID
        case .left(let roomID, let userID): "leave:" + roomID + " " + userID
        }
    }
}

/// An `m.text` message.
public struct MatrixMessage: Sendable, Hashable {
    public let roomID: String
    public let eventID: String
    public let sender: String
    /// The text, without a reply's quoted fallback.
    public let text: String
    /// The event this message replies to (`m.in_reply_to`), e.g. an approval prompt.
    public let inReplyTo: String?
    /// The homeserver's time of the event (ms since 1970).
    public let sentAt: Int64

    public init(roomID: String, eventID: String, sender: String, text: String, inReplyTo: String?, sentAt: Int64) {
        self.roomID = roomID
        self.eventID = eventID
        self.sender = sender
        self.text = text
        self.inReplyTo = inReplyTo
        self.sentAt = sentAt
    }
}

/// An `m.reaction`: `key` (an emoji, or any text) on the event `relatesTo`.
public struct MatrixReaction: Sendable, Hashable {
    public let roomID: String
    public let eventID: String
    public let sender: String
    public let relatesTo: String
    public let key: String

    public init(roomID: String, eventID: String, sender: String, relatesTo: String, key: String) {
        self.roomID = roomID
        self.eventID = eventID
        self.sender = sender
        self.relatesTo = relatesTo
        self.key = key
    }
}

/// An invite to a room, as the bot sees it before joining.
public struct MatrixInvite: Sendable, Hashable {
    public let roomID: String
    public let inviter: String
    /// Whether the inviter marked the room a direct chat (`is_direct` on the bot's invite).
    public let isDirect: Bool

    /// Whether the bot joins: direct chats only (pairing decides later whether anyone answers); any other
    /// room is declined, so nobody can make the bot a member of a group it would read.
    public var accepted: Bool { isDirect }
}

/// Turns one `/sync` answer into what the channel hands over, as a pure function of the answer.
enum MatrixSyncReading {
    /// The invites, and the events of joined and left rooms in timeline order, room by room.
    ///
    /// Dropped: the bot's own events, edits (`m.replace`), notices and any `msgtype` other than `m.text`,
    /// redacted events, events without an id, and — when `backlog` is true (the first sync of a fresh
    /// start) — every timeline event, so history is never replayed to the agent; after a fresh start, also
    /// every event the homeserver stamped before `notBefore` (ms since 1970): a homeserver may answer the
    /// first sync from its response cache (Synapse keeps answers 2 minutes), with a position from before
    /// the start, and the next batch would then carry history.
    ///
    /// `gaps` holds, per room, the events a `limited` timeline left out (oldest first), fetched with
    /// `/messages`: they come before the room's timeline, and an event in both is read once.
    static func read(
        _ response: MatrixSyncResponse, ownUserID: String, backlog: Bool, notBefore: Int64? = nil,
        gaps: [String: [MatrixClientEvent]] = [:]
    ) -> (invites: [MatrixInvite], events: [MatrixInbound]) {
        var invites: [MatrixInvite] = []
        for (roomID, room) in (response.rooms?.invite ?? [:]).sorted(by: { $0.key < $1.key }) {
            let state = (room.inviteState?.events ?? []).compactMap(\.event)
            guard
                let invite = state.last(where: {
                    $0.type == "m.room.member" && $0.stateKey == ownUserID && $0.content.membership == "invite"
                })
            else { continue }
            invites.append(
                MatrixInvite(roomID: roomID, inviter: invite.sender, isDirect: invite.content.isDirect == true))
        }
        guard !backlog else { return (invites, []) }
        var events: [MatrixInbound] = []
        let rooms = (response.rooms?.join ?? [:]).merging(response.rooms?.leave ?? [:]) { joined, _ in joined }
        for (roomID, room) in rooms.sorted(by: { $0.key < $1.key }) {
            var seen = Set<String>()
            for event in (gaps[roomID] ?? []) + (room.timeline?.events ?? []).compactMap(\.event) {
                if let id = event.eventID, !seen.insert(id).inserted { continue }
                if let notBefore, event.originServerTS ?? 0 < notBefore { continue }
                if let inbound = inbound(event, roomID: roomID, ownUserID: ownUserID) { events.append(inbound) }
            }
        }
        return (invites, events)
    }

    static func inbound(_ event: MatrixClientEvent, roomID: String, ownUserID: String) -> MatrixInbound? {
        guard event.sender != ownUserID, !event.redacted, let eventID = event.eventID else { return nil }
        let content = event.content
        switch event.type {
        case "m.room.message":
            guard content.msgtype == "m.text", let body = content.body, content.relatesTo?.relType != "m.replace"
            else { return nil }
            let replyTo = content.relatesTo?.inReplyTo
            return .message(
                MatrixMessage(
                    roomID: roomID, eventID: eventID, sender: event.sender,
                    text: replyTo == nil ? body : withoutReplyFallback(body), inReplyTo: replyTo,
                    sentAt: event.originServerTS ?? 0))
        case "m.reaction":
            guard let relation = content.relatesTo, relation.relType == "m.annotation", let target = relation.eventID,
                let key = relation.key
            else { return nil }
            return .reaction(
                MatrixReaction(roomID: roomID, eventID: eventID, sender: event.sender, relatesTo: target, key: key))
        case "m.room.member":
            guard let userID = event.stateKey, ["leave", "ban"].contains(content.membership ?? "") else { return nil }
            return .left(roomID: roomID, userID: userID)
        default:
            return nil
        }
    }

    /// A reply's body without the quoted fallback older clients put first (`> <@user> …` lines, then an
    /// empty line).
    static func withoutReplyFallback(_ body: String) -> String {
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first?.hasPrefix("> ") == true else { return body }
        let rest = lines.drop { $0.hasPrefix(">") }
        return rest.first == "" ? rest.dropFirst().joined(separator: "\n") : rest.joined(separator: "\n")
    }
}

/// The owner's answer to an approval prompt sent in a Matrix room.
public enum MatrixApprovalAnswer: Sendable, Hashable {
    case approve, deny

    /// The text sent after what the approval is about.
    public static let instructions = "React ✅ to approve or ❌ to deny (👍/👎 work too), or reply approve/deny."

    /// The answer a reaction's key gives (✅ or 👍, ❌ or 👎; with or without skin tone or variation
    /// selector).
    public init?(reactionKey key: String) {
        let scalars = key.unicodeScalars.filter {
            $0.value != 0xFE0F && !(0x1F3FB...0x1F3FF).contains($0.value)
        }
        switch String(String.UnicodeScalarView(scalars)) {
        case "✅", "👍": self = .approve
        case "❌", "👎": self = .deny
        default: return nil
        }
    }

    /// The answer a reply's text gives: `approve` or `deny` alone (any case, surrounding spaces and a final
    /// full stop ignored); anything else is not an answer.
    public init?(replyText text: String) {
        var word = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if word.hasSuffix(".") || word.hasSuffix("!") { word.removeLast() }
        switch word {
        case "approve", "approved": self = .approve
        case "deny", "denied": self = .deny
        default: return nil
        }
    }
}

/// What an approving and a denying answer to a prompt stand for: an approval's `approve ID` / `deny ID`,
/// a pairing request's `pairing REF chat` / `pairing REF deny`.
public struct PromptAnswers: Codable, Sendable, Hashable {
    public let approve: String
    public let deny: String

    public init(approve: String, deny: String) {
        self.approve = approve
        self.deny = deny
    }

    /// Both are owner commands of the router's shape — a verb and an id, or `pairing`, a reference and a
    /// choice — in letters, digits, `-` and `_`: nothing read back from an event is passed on otherwise.
    var wellFormed: Bool {
        func shaped(_ text: String) -> Bool {
            let words = text.split(separator: " ", omittingEmptySubsequences: false)
            let id: (Substring) -> Bool = { word in
                (1...64).contains(word.utf8.count)
                    && word.unicodeScalars.allSatisfy {
                        ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
                            || $0 == "_"
                    }
            }
            switch words.first {
            case "approve", "deny": return words.count == 2 && id(words[1])
            case "pairing": return words.count == 3 && id(words[1]) && id(words[2])
            default: return false
            }
        }
        return shaped(approve) && shaped(deny)
    }
}
