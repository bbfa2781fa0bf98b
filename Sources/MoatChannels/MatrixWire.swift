import Foundation

/// The parts of a `/sync` answer (Matrix client-server API, v3) the channel reads. Decoding is lenient
/// per event: one event of an unexpected shape is dropped, never the whole batch (a batch that cannot be
/// read would be fetched again forever).
struct MatrixSyncResponse: Decodable, Sendable {
    let nextBatch: String
    let rooms: Rooms?

    enum CodingKeys: String, CodingKey {
        case nextBatch = "next_batch"
        case rooms
    }

    struct Rooms: Decodable, Sendable {
        let join: [String: JoinedRoom]?
        let invite: [String: InvitedRoom]?
        let leave: [String: JoinedRoom]?
    }

    struct JoinedRoom: Decodable, Sendable {
        let timeline: Timeline?
    }

    struct Timeline: Decodable, Sendable {
        let events: [LenientEvent]?
        /// True when events between the previous batch and these were left out (more than the filter's
        /// limit arrived); `prev_batch` is then where to page back from.
        let limited: Bool?
        let prevBatch: String?

        enum CodingKeys: String, CodingKey {
            case events, limited
            case prevBatch = "prev_batch"
        }
    }

    struct InvitedRoom: Decodable, Sendable {
        let inviteState: Events?

        enum CodingKeys: String, CodingKey { case inviteState = "invite_state" }
    }

    struct Events: Decodable, Sendable {
        let events: [LenientEvent]?
    }
}

/// A page of `GET /rooms/{roomId}/messages`: `chunk` in the direction asked for, and `end`, where the
/// next page starts (absent: no more events).
struct MatrixMessagesPage: Decodable, Sendable {
    let chunk: [LenientEvent]?
    let end: String?
}

/// One event, or nil when it lacks what every event has (type, sender).
struct LenientEvent: Decodable, Sendable {
    let event: MatrixClientEvent?

    init(from decoder: any Decoder) throws {
        event = try? MatrixClientEvent(from: decoder)
    }
}

/// A room event (or a stripped state event in an invite, which has no id and no timestamp).
struct MatrixClientEvent: Decodable, Sendable {
    let type: String
    let sender: String
    let eventID: String?
    let originServerTS: Int64?
    let stateKey: String?
    let content: Content
    /// Set when the event was redacted (its content is then empty).
    let redacted: Bool

    enum CodingKeys: String, CodingKey {
        case type, sender, content, unsigned
        case eventID = "event_id"
        case originServerTS = "origin_server_ts"
        case stateKey = "state_key"
    }

    struct Unsigned: Decodable {
        let redactedBecause: IgnoredValue?
        enum CodingKeys: String, CodingKey { case redactedBecause = "redacted_because" }
    }

    /// Any JSON value, skipped.
    struct IgnoredValue: Decodable {}

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        type = try container.decode(String.self, forKey: .type)
        sender = try container.decode(String.self, forKey: .sender)
        eventID = try? container.decodeIfPresent(String.self, forKey: .eventID)
        originServerTS = try? container.decodeIfPresent(Int64.self, forKey: .originServerTS)
        stateKey = try? container.decodeIfPresent(String.self, forKey: .stateKey)
        content = (try? container.decodeIfPresent(Content.self, forKey: .content)) ?? Content()
        let unsigned = try? container.decodeIfPresent(Unsigned.self, forKey: .unsigned)
        redacted = unsigned?.redactedBecause != nil
    }

    /// The fields of the contents the channel reads; each one that has another type is read as absent.
    struct Content: Decodable, Sendable {
        var msgtype: String?
        var body: String?
        var membership: String?
        var isDirect: Bool?
        var relatesTo: Relation?

        enum CodingKeys: String, CodingKey {
            case msgtype, body, membership
            case isDirect = "is_direct"
            case relatesTo = "m.relates_to"
        }

        init() {}

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            msgtype = try? container.decodeIfPresent(String.self, forKey: .msgtype)
            body = try? container.decodeIfPresent(String.self, forKey: .body)
            membership = try? container.decodeIfPresent(String.self, forKey: .membership)
            isDirect = try? container.decodeIfPresent(Bool.self, forKey: .isDirect)
            relatesTo = try? container.decodeIfPresent(Relation.self, forKey: .relatesTo)
        }
    }

    /// `m.relates_to`: an annotation (reaction), a replacement (edit), a thread, or a reply.
    struct Relation: Decodable, Sendable {
        var relType: String?
        var eventID: String?
        var key: String?
        var inReplyTo: String?

        enum CodingKeys: String, CodingKey {
            case relType = "rel_type"
            case eventID = "event_id"
            case key
            case inReplyTo = "m.in_reply_to"
        }

        struct Reply: Decodable {
            let eventID: String?
            enum CodingKeys: String, CodingKey { case eventID = "event_id" }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            relType = try? container.decodeIfPresent(String.self, forKey: .relType)
            eventID = try? container.decodeIfPresent(String.self, forKey: .eventID)
            key = try? container.decodeIfPresent(String.self, forKey: .key)
            inReplyTo = (try? container.decodeIfPresent(Reply.self, forKey: .inReplyTo))?.eventID
        }
    }
}

/// `{"errcode": "M_…", "error": "…", "retry_after_ms": N}`: the standard error body.
struct MatrixErrorBody: Decodable {
    let errcode: String?
    let retryAfterMs: Int64?

    enum CodingKeys: String, CodingKey {
        case errcode
        case retryAfterMs = "retry_after_ms"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        errcode = (try? container.decodeIfPresent(String.self, forKey: .errcode)).flatMap { code in
            // Only a code of the documented shape is repeated to the owner (never the server's free text).
            code.utf8.count <= 64 && code.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || $0 == "_" }
                ? code : nil
        }
        retryAfterMs = try? container.decodeIfPresent(Int64.self, forKey: .retryAfterMs)
    }
}
