public import MoatCore
import MoatVault

/// The `channels.matrix:` section of `config.yaml`: the bot's account on a homeserver.
public struct MatrixSettings: Sendable, Equatable {
    /// How the bot proves who it is: an access token, or a password it logs in with.
    public enum Credential: Sendable, Equatable {
        /// The vault secret holding an access token (`moat vault add MATRIX_TOKEN`).
        case accessToken(secret: String)
        /// The vault secret holding the account's password; Moat logs in as ``MatrixSettings/deviceID`` and
        /// keeps the token in memory only.
        case password(secret: String)

        /// The vault secret's name.
        public var secret: String {
            switch self {
            case .accessToken(let secret), .password(let secret): secret
            }
        }
    }

    /// The homeserver's client API base, e.g. `https://matrix.example.org`: the owner's choice, so loopback
    /// and LAN addresses are allowed (as for a provider's `base_url`).
    public var homeserverURL: String
    /// The bot's user id, e.g. `@moat:example.org`.
    public var userID: String
    public var credential: Credential
    /// The device a password login uses (the same on every start, so logins do not pile up devices).
    public var deviceID: String
    /// How long one `/sync` waits for events (`poll_timeout`, 1–50 seconds).
    public var pollTimeout: Duration

    public init(
        homeserverURL: String, userID: String, credential: Credential, deviceID: String = "MOAT",
        pollTimeout: Duration = .seconds(30)
    ) {
        self.homeserverURL = homeserverURL
        self.userID = userID
        self.credential = credential
        self.deviceID = deviceID
        self.pollTimeout = pollTimeout
    }

    /// What a homeserver URL must be.
    static let homeserverURLAdvice =
        "must be an http or https URL without credentials (user@host), e.g. https://matrix.example.org"

    /// Why `text` cannot be a Matrix user id (`@localpart:server`), or nil.
    public static func userIDProblem(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.count <= 255, bytes.first == UInt8(ascii: "@"), let colon = bytes.firstIndex(of: UInt8(ascii: ":")),
            colon > 1, colon < bytes.count - 1,
            bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else { return "must be a Matrix user id like @moat:example.org" }
        return nil
    }

    /// Reads `channels.matrix:` (`homeserver_url`, `user_id`, one of `access_token_secret` and
    /// `password_secret`, optional `device_id` and `poll_timeout`).
    public static func read(_ node: ConfigNode, path: String) throws(ConfigError) -> MatrixSettings {
        var fields: [String: String] = [:]
        var pollTimeout = 30
        let allowed = [
            "homeserver_url", "user_id", "access_token_secret", "password_secret", "device_id", "poll_timeout",
        ]
        for (field, value) in try node.mapping(path: path, allowed: allowed) {
            let fieldPath = path + "." + field
            if field == "poll_timeout" {
                pollTimeout = try value.integer(path: fieldPath, range: 1...50, allowed: "1 to 50 seconds")
                continue
            }
            let text = try value.string(path: fieldPath)
            switch field {
            case "homeserver_url":
                if ChannelsSettings.callbackURLProblem(text) != nil { throw value.fail(fieldPath, homeserverURLAdvice) }
            case "user_id":
                if let problem = userIDProblem(text) { throw value.fail(fieldPath, problem) }
            case "device_id":
                guard (1...64).contains(text.utf8.count), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                    throw value.fail(fieldPath, "must be 1-64 printable ASCII characters without spaces, e.g. MOAT")
                }
            default:
                guard SecretName.isValid(text), !text.hasPrefix("MOAT_") else {
                    throw value.fail(
                        fieldPath,
                        "must name a vault secret of your own (A-Z, 0-9 and _, starting with a letter, not MOAT_…), "
                            + "e.g. MATRIX_TOKEN")
                }
            }
            fields[field] = text
        }
        guard let url = fields["homeserver_url"] else {
            throw node.fail(
                path, "homeserver_url is missing: the homeserver's address, e.g. https://matrix.example.org")
        }
        guard let user = fields["user_id"] else {
            throw node.fail(path, "user_id is missing: the bot's account, e.g. @moat:example.org")
        }
        let credential: Credential
        switch (fields["access_token_secret"], fields["password_secret"]) {
        case (let token?, nil): credential = .accessToken(secret: token)
        case (nil, let password?): credential = .password(secret: password)
        default:
            throw node.fail(
                path,
                "name exactly one of access_token_secret (a vault secret holding the bot's access token) and "
                    + "password_secret (one holding its password)")
        }
        return MatrixSettings(
            homeserverURL: url, userID: user, credential: credential, deviceID: fields["device_id"] ?? "MOAT",
            pollTimeout: .seconds(pollTimeout))
    }
}
