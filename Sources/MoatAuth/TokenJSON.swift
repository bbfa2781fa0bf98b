public import Foundation

/// A token as the API shows it: never the token, only its prefix.
public enum TokenJSON {
    public static func object(_ record: APITokenRecord) -> [String: Any] {
        var object: [String: Any] = [
            "prefix": record.prefix, "name": record.name, "scope": record.scope.rawValue,
            "created_at": OwnerAuthority.timestamp(record.createdAt),
            "active": record.isActive(at: Int64(Date().timeIntervalSince1970 * 1000)),
        ]
        object["expires_at"] = record.expiresAt.map(OwnerAuthority.timestamp) ?? NSNull()
        object["last_used_at"] = record.lastUsedAt.map(OwnerAuthority.timestamp) ?? NSNull()
        object["revoked_at"] = record.revokedAt.map(OwnerAuthority.timestamp) ?? NSNull()
        return object
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
