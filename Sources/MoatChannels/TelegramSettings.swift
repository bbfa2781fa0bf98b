public import MoatCore
import MoatNet
import MoatVault

/// `channels.telegram:` in `config.yaml`: one bot, its token in the vault.
public struct TelegramSettings: Sendable, Equatable {
    /// How updates arrive: Moat asks (`getUpdates` long polling, the default: works behind NAT, needs no
    /// public URL) or Telegram POSTs them to ``TelegramWebhook/path`` (needs a public HTTPS URL).
    public enum Mode: String, Sendable, Equatable {
        case polling, webhook
    }

    /// The vault secret holding the bot token from @BotFather (`moat vault add TELEGRAM_BOT_TOKEN`).
    public var tokenSecret: String
    /// `https://api.telegram.org` unless the owner runs their own Bot API server (tests: loopback).
    public var baseURL = TelegramSettings.defaultBaseURL
    public var mode = Mode.polling
    /// Webhook mode: the vault secret Telegram sends back in `X-Telegram-Bot-Api-Secret-Token`.
    public var webhookSecret: String?
    /// Webhook mode: the public HTTPS URL that reaches ``TelegramWebhook/path`` (given to `setWebhook`).
    public var webhookURL: String?
    /// Polling: how long one `getUpdates` waits for an update, in seconds.
    public var pollTimeout = 30

    public static let defaultBaseURL = "https://api.telegram.org"

    public init(
        tokenSecret: String, baseURL: String = TelegramSettings.defaultBaseURL, mode: Mode = .polling,
        webhookSecret: String? = nil, webhookURL: String? = nil, pollTimeout: Int = 30
    ) {
        self.tokenSecret = tokenSecret
        self.baseURL = baseURL
        self.mode = mode
        self.webhookSecret = webhookSecret
        self.webhookURL = webhookURL
        self.pollTimeout = pollTimeout
    }

    /// Reads `channels.telegram` (`token_secret`[, `base_url`, `mode`, `webhook_secret`, `webhook_url`,
    /// `poll_timeout`]).
    public static func read(_ node: ConfigNode, path: String) throws(ConfigError) -> TelegramSettings {
        var settings = TelegramSettings(tokenSecret: "")
        let allowed = ["token_secret", "base_url", "mode", "webhook_secret", "webhook_url", "poll_timeout"]
        for (key, value) in try node.mapping(path: path, allowed: allowed) {
            let keyPath = path + "." + key
            switch key {
            case "poll_timeout":
                settings.pollTimeout = try value.integer(path: keyPath, range: 1...50, allowed: "1 to 50 seconds")
            case "mode":
                guard let mode = Mode(rawValue: try value.string(path: keyPath)) else {
                    throw value.fail(keyPath, "must be polling or webhook")
                }
                settings.mode = mode
            case "base_url", "webhook_url":
                let text = try value.string(path: keyPath)
                guard case .success(let url) = FetchURL.parse(text), url.userInfo == nil,
                    url.scheme == "https" || (key == "base_url" && url.scheme == "http")
                else {
                    throw value.fail(
                        keyPath,
                        key == "base_url"
                            ? "must be an http(s) URL without credentials, e.g. https://api.telegram.org"
                            : "must be the public https URL of /hooks/telegram/updates, e.g. https://moat.example.ts.net/hooks/telegram/updates"
                    )
                }
                if key == "base_url" { settings.baseURL = text } else { settings.webhookURL = text }
            default:
                let name = try value.string(path: keyPath)
                guard SecretName.isValid(name), !name.hasPrefix("MOAT_") else {
                    throw value.fail(
                        keyPath,
                        "must name a vault secret of your own (A-Z, 0-9 and _, starting with a letter, not MOAT_…), "
                            + "e.g. \(key == "token_secret" ? "TELEGRAM_BOT_TOKEN" : "TELEGRAM_WEBHOOK_SECRET")")
                }
                if key == "token_secret" { settings.tokenSecret = name } else { settings.webhookSecret = name }
            }
        }
        guard !settings.tokenSecret.isEmpty else {
            throw node.fail(path, "token_secret is missing: name the vault secret holding the bot token")
        }
        if settings.mode == .webhook, settings.webhookSecret == nil || settings.webhookURL == nil {
            throw node.fail(
                path,
                "mode webhook needs webhook_url (the public https URL of /hooks/telegram/updates) and webhook_secret (a vault "
                    + "secret of 32+ random letters and digits that Telegram sends back with every update)")
        }
        guard settings.webhookSecret != settings.tokenSecret else {
            throw node.fail(path + ".webhook_secret", "must be another secret than token_secret")
        }
        return settings
    }
}
