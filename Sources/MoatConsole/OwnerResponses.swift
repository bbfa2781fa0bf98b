import MoatAudit
import MoatAuth
import MoatHTTP

// The owner API's response bodies, one per Docs/openapi.yaml schema (an inline schema gets the name of its
// route), written by ``MoatHTTP/APIError/json(status:encoding:)``. A nil optional leaves its key out, as the
// spec's schemas have no nullable field except the token times, which ``TokenView`` writes as `null`.

/// The owner API's bodies, named after their Docs/openapi.yaml schemas.
enum OwnerAPI {
    /// `GET /api/setup` (`SetupState`).
    struct SetupState: Encodable {
        let required: Bool
    }

    /// `POST /api/setup` with browser login off (`gateway.auth.mode: token`): no session, what to do next.
    struct SetupDone: Encodable {
        let setup = "done"
        let next: String
    }

    /// The `LoggedIn` answer of setup and login; the session itself travels in `Set-Cookie`.
    struct LoggedIn: Encodable {
        let csrfToken: String
        let expiresAt: String

        enum CodingKeys: String, CodingKey, CaseIterable {
            case csrfToken = "csrf_token"
            case expiresAt = "expires_at"
        }
    }

    /// `GET /api/auth/session` (`Session`).
    struct Session: Encodable {
        let via: String
        let scope: String
        /// Set once the owner exists.
        var username: String?
        var totpEnabled: Bool?
        /// Only for a Tailscale identity (see the route).
        var csrfToken: String?
        /// Only for a cookie session.
        var expiresAt: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case via, scope, username
            case totpEnabled = "totp_enabled"
            case csrfToken = "csrf_token"
            case expiresAt = "expires_at"
        }

        /// The same body through ``FlatJSON`` (the route is on every script's hot path); the same bytes
        /// as the encoder's (`FlatJSONTests`).
        var flat: FlatJSON {
            var json = FlatJSON()
            json.set(CodingKeys.via.rawValue, .string(via))
            json.set(CodingKeys.scope.rawValue, .string(scope))
            json.set(CodingKeys.username.rawValue, username.map { .string($0) })
            json.set(CodingKeys.totpEnabled.rawValue, totpEnabled.map { .bool($0) })
            json.set(CodingKeys.csrfToken.rawValue, csrfToken.map { .string($0) })
            json.set(CodingKeys.expiresAt.rawValue, expiresAt.map { .string($0) })
            return json
        }
    }

    /// `POST /api/auth/totp/enrol` (`TOTPEnrolment`).
    struct TOTPEnrolment: Encodable {
        let uri: String
        let secret: String
        let qrSVG: String

        enum CodingKeys: String, CodingKey, CaseIterable {
            case uri, secret
            case qrSVG = "qr_svg"
        }
    }

    /// `POST /api/auth/totp/confirm`: the recovery codes, shown once.
    struct RecoveryCodes: Encodable {
        let recoveryCodes: [String]

        enum CodingKeys: String, CodingKey, CaseIterable { case recoveryCodes = "recovery_codes" }
    }

    /// `POST /api/auth/live-token`.
    struct LiveToken: Encodable {
        let token: String
        /// Seconds.
        let expiresIn: Int

        enum CodingKeys: String, CodingKey, CaseIterable {
            case token
            case expiresIn = "expires_in"
        }
    }

    /// `GET /api/tokens`.
    struct TokenList: Encodable {
        let tokens: [TokenView]
    }

    /// `POST /api/tokens` (`Token` with its `token`, the one time it is shown).
    struct CreatedToken: Encodable {
        let view: TokenView
        let token: String

        enum CodingKeys: String, CodingKey, CaseIterable { case token }

        func encode(to encoder: any Encoder) throws {
            try view.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(token, forKey: .token)
        }
    }

    /// `GET /api/audit`: newest first.
    struct AuditEntries: Encodable {
        let entries: [AuditEntryView]
    }

    /// One audit entry as the API and the live stream show it: no metadata, no hashes.
    struct AuditEntryView: Encodable {
        let sequence: Int64
        let time: String
        let actor: String
        let action: String
        let target: String
        let outcome: String
        let sourceIP: String

        enum CodingKeys: String, CodingKey, CaseIterable {
            case sequence, time, actor, action, target, outcome
            case sourceIP = "source_ip"
        }

        init(_ entry: AuditEntry) {
            sequence = entry.sequence
            time = entry.time
            actor = entry.actor
            action = entry.action
            target = entry.target
            outcome = entry.outcome
            sourceIP = entry.sourceIP
        }
    }
}
