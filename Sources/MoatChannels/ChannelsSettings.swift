public import MoatCore
import MoatNet
import MoatVault

/// The `channels:` section of `config.yaml`.
public struct ChannelsSettings: Sendable, Equatable {
    /// One signed webhook: `POST /hooks/NAME`.
    public struct Webhook: Sendable, Equatable {
        /// The vault secret holding the HMAC key (`moat vault add NAME`).
        public var keySecret: String
        /// Where replies (and `send_message` messages) to this webhook's senders are POSTed, signed, instead
        /// of coming back in the response: the owner's choice, so loopback and LAN addresses are allowed.
        public var callbackURL: String?
        /// The vault secret holding the callback's HMAC key: required with ``callbackURL`` and never the
        /// same secret as ``keySecret``, so whoever verifies callbacks cannot sign deliveries as a sender and
        /// a signed callback can never pass as a delivery.
        public var callbackKeySecret: String?

        public init(keySecret: String, callbackURL: String? = nil, callbackKeySecret: String? = nil) {
            self.keySecret = keySecret
            self.callbackURL = callbackURL
            self.callbackKeySecret = callbackKeySecret
        }

        /// The callback's URL and key secret, when the webhook has a callback.
        public var callback: (url: String, keySecret: String)? {
            guard let callbackURL, let callbackKeySecret else { return nil }
            return (callbackURL, callbackKeySecret)
        }
    }

    /// Signed webhooks by name (the `NAME` of `/hooks/NAME` and of `webhook:NAME` contacts).
    public var webhooks: [String: Webhook] = [:]
    /// The Telegram bot (`channels.telegram`), when configured.
    public var telegram: TelegramSettings?
    /// The Matrix bot account (`channels.matrix:`), when the owner set one up.
    public var matrix: MatrixSettings?
    /// The limits of DM pairing (`channels.pairing:`).
    public var pairing = PairingSettings()

    public init(webhooks: [String: Webhook] = [:], matrix: MatrixSettings? = nil) {
        self.webhooks = webhooks
        self.matrix = matrix
    }

    /// A webhook name: 1–32 of `a-z 0-9 - _`, starting with a letter or digit (it is a path segment and
    /// part of contact names).
    public static func isValidWebhookName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...32).contains(bytes.count), let first = bytes.first, isLowerAlphanumeric(first) else { return false }
        return bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
    }

    /// Why `text` cannot be a callback URL, or nil: an `http` or `https` URL without credentials.
    public static func callbackURLProblem(_ text: String) -> String? {
        guard case .success(let url) = FetchURL.parse(text), ["http", "https"].contains(url.scheme) else {
            return "must be an http or https URL, e.g. http://127.0.0.1:8025/moat"
        }
        guard url.userInfo == nil else { return "must not hold credentials (user@host): they hide the real host" }
        return nil
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
    }
}

extension ChannelsSettings: ConfigSection {
    /// Reads `channels:` (`webhooks:` → NAME → `key_secret`[, `callback_url`, `callback_key_secret`]).
    public mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        for (key, value) in try node.mapping(path: path, allowed: ["webhooks", "telegram", "matrix", "pairing"]) {
            let keyPath = path + "." + key
            if value.isNull { continue }
            if key == "pairing" {
                pairing = try PairingSettings.read(value, path: keyPath)
                continue
            }
            if key == "telegram" {
                telegram = try TelegramSettings.read(value, path: keyPath)
                continue
            }
            if key == "matrix" {
                matrix = try MatrixSettings.read(value, path: keyPath)
                continue
            }
            guard case .mapping(let entries) = value.value else {
                throw value.fail(
                    keyPath, "must map webhook names to their settings, e.g. sms: {key_secret: SMS_HOOK_KEY}")
            }
            for (nameNode, hook) in entries {
                guard case .scalar(let name, _) = nameNode.value else {
                    throw nameNode.fail(keyPath, "keys must be plain words")
                }
                let hookPath = keyPath + "." + ConfigNode.printable(name)
                guard Self.isValidWebhookName(name) else {
                    throw nameNode.fail(
                        hookPath, "a webhook name is 1-32 of a-z, 0-9, - and _, starting with a letter or digit")
                }
                var fields: [String: String] = [:]
                for (field, fieldNode) in try hook.mapping(
                    path: hookPath, allowed: ["key_secret", "callback_url", "callback_key_secret"])
                {
                    let fieldPath = hookPath + "." + field
                    let text = try fieldNode.string(path: fieldPath)
                    if field == "callback_url" {
                        if let problem = Self.callbackURLProblem(text) { throw fieldNode.fail(fieldPath, problem) }
                    } else if !SecretName.isValid(text) || text.hasPrefix("MOAT_") {
                        throw fieldNode.fail(
                            fieldPath,
                            "must name a vault secret of your own (A-Z, 0-9 and _, starting with a letter, not MOAT_…), "
                                + "e.g. SMS_HOOK_KEY")
                    }
                    fields[field] = text
                }
                guard let secret = fields["key_secret"] else {
                    throw hook.fail(hookPath, "key_secret is missing: name the vault secret holding the HMAC key")
                }
                let callbackURL = fields["callback_url"]
                let callbackKey = fields["callback_key_secret"]
                guard (callbackURL == nil) == (callbackKey == nil) else {
                    throw hook.fail(
                        hookPath,
                        "callback_url and callback_key_secret go together: name the URL replies are POSTed to and "
                            + "the vault secret holding the key they are signed with")
                }
                guard callbackKey != secret else {
                    throw hook.fail(
                        hookPath + ".callback_key_secret",
                        "must be another secret than key_secret: a key that signs callbacks must not also sign "
                            + "deliveries (add one with `moat vault add`)")
                }
                guard webhooks[name] == nil else { throw nameNode.fail(hookPath, "appears twice; keep one") }
                webhooks[name] = Webhook(keySecret: secret, callbackURL: callbackURL, callbackKeySecret: callbackKey)
            }
        }
    }
}
