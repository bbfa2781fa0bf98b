public import Foundation

/// A token as the API and the CLI show it: never the token, only its prefix. One shape for the HTTP
/// owner API (`GET /api/tokens`), `moat token list --json` and the admin socket's `token.list` result.
public struct TokenView: Sendable, Equatable, Codable {
    public let prefix: String
    public let name: String
    public let scope: TokenScope
    public let createdAt: String
    public let active: Bool
    public let expiresAt: String?
    public let lastUsedAt: String?
    public let revokedAt: String?

    /// The view of `record`; `active` as of now.
    public init(_ record: APITokenRecord) {
        prefix = record.prefix
        name = record.name
        scope = record.scope
        createdAt = OwnerAuthority.timestamp(record.createdAt)
        active = record.isActive(at: Int64(Date().timeIntervalSince1970 * 1000))
        expiresAt = record.expiresAt.map(OwnerAuthority.timestamp)
        lastUsedAt = record.lastUsedAt.map(OwnerAuthority.timestamp)
        revokedAt = record.revokedAt.map(OwnerAuthority.timestamp)
    }

    enum CodingKeys: String, CodingKey {
        case prefix, name, scope, active
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case lastUsedAt = "last_used_at"
        case revokedAt = "revoked_at"
    }

    /// Encodes every key, with an explicit `null` for a time that is not set (as Docs/openapi.yaml shows).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(prefix, forKey: .prefix)
        try container.encode(name, forKey: .name)
        try container.encode(scope, forKey: .scope)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(active, forKey: .active)
        for (value, key) in [(expiresAt, CodingKeys.expiresAt), (lastUsedAt, .lastUsedAt), (revokedAt, .revokedAt)] {
            if let value { try container.encode(value, forKey: key) } else { try container.encodeNil(forKey: key) }
        }
    }

    /// The same object for `JSONSerialization` (the HTTP API's and the CLI's JSON writer).
    public var jsonObject: [String: Any] {
        [
            "prefix": prefix, "name": name, "scope": scope.rawValue, "created_at": createdAt, "active": active,
            "expires_at": expiresAt ?? NSNull(), "last_used_at": lastUsedAt ?? NSNull(),
            "revoked_at": revokedAt ?? NSNull(),
        ]
    }
}

/// `30d`, `12h`, `90m`, `never` → seconds (`.infinity` for never); nil stays nil (the default applies).
///
/// Exactly the pattern Docs/openapi.yaml gives (`TokenRequest.expires`): digits and a unit, or `never`, in
/// either case; no sign, no spaces.
public enum TokenLifetime {
    public static func parse(_ text: String?) throws(AuthError) -> TimeInterval? {
        guard let text = text?.lowercased() else { return nil }
        if text == "never" { return .infinity }
        let units: [Character: Double] = ["m": 60, "h": 3600, "d": 86400]
        let digits = text.dropLast()
        guard let unit = text.last.flatMap({ units[$0] }), !digits.isEmpty,
            digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(digits), number > 0,
            Double(number) * unit <= 3650 * 86400
        else {
            throw AuthError(.invalidInput, "expires must look like 30d, 12h or 90m (at most 10 years), or never")
        }
        return Double(number) * unit
    }
}
