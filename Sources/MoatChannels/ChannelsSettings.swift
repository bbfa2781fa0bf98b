public import MoatCore
import MoatVault

/// The `channels:` section of `config.yaml`.
public struct ChannelsSettings: Sendable, Equatable {
    /// One signed webhook: `POST /hooks/NAME`.
    public struct Webhook: Sendable, Equatable {
        /// The vault secret holding the HMAC key (`moat vault add NAME`).
        public var keySecret: String

        public init(keySecret: String) { self.keySecret = keySecret }
    }

    /// Signed webhooks by name (the `NAME` of `/hooks/NAME` and of `webhook:NAME` contacts).
    public var webhooks: [String: Webhook] = [:]

    public init(webhooks: [String: Webhook] = [:]) { self.webhooks = webhooks }

    /// A webhook name: 1–32 of `a-z 0-9 - _`, starting with a letter or digit (it is a path segment and
    /// part of contact names).
    public static func isValidWebhookName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...32).contains(bytes.count), let first = bytes.first, isLowerAlphanumeric(first) else { return false }
        return bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
    }
}

extension ChannelsSettings: ConfigSection {
    /// Reads `channels:` (`webhooks:` → NAME → `key_secret`).
    public mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        for (key, value) in try node.mapping(path: path, allowed: ["webhooks"]) {
            let keyPath = path + "." + key
            if value.isNull { continue }
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
                var secret: String?
                for (field, fieldNode) in try hook.mapping(path: hookPath, allowed: ["key_secret"]) {
                    let text = try fieldNode.string(path: hookPath + "." + field)
                    guard SecretName.isValid(text) else {
                        throw fieldNode.fail(
                            hookPath + "." + field,
                            "must name a vault secret (A-Z, 0-9 and _, starting with a letter), e.g. SMS_HOOK_KEY")
                    }
                    secret = text
                }
                guard let secret else {
                    throw hook.fail(hookPath, "key_secret is missing: name the vault secret holding the HMAC key")
                }
                guard webhooks[name] == nil else { throw nameNode.fail(hookPath, "appears twice; keep one") }
                webhooks[name] = Webhook(keySecret: secret)
            }
        }
    }
}
