import Crypto
import Foundation
public import MoatCore
public import MoatVault

/// Telegram's webhook mode, without HTTP: Telegram POSTs each update as JSON to ``path`` with the secret
/// given to `setWebhook` in ``secretHeader``.
///
/// The header is the only credential (Telegram signs nothing), so it is compared in constant time (the
/// SHA-256 digests of both sides, so neither content nor length leaks through timing), and a missing or
/// wrong one is refused before the body is read as JSON: nothing of an unauthenticated request is
/// processed.
public enum TelegramWebhook {
    /// Where the route listens (outside `/api/`; the header is the credential).
    public static let path = "/hooks/telegram/updates"
    public static let secretHeader = "X-Telegram-Bot-Api-Secret-Token"
    /// The largest update body accepted.
    public static let maximumBodyBytes = 1 << 20

    /// The refusal of a missing or wrong secret (the same words for both).
    public static let refused = ChannelError(
        .unauthorized, "this endpoint takes updates from Telegram only: \(secretHeader) is missing or wrong")

    /// The webhook secret from the vault: at least 32 and at most 256 of `A-Z a-z 0-9 _ -` (what
    /// `setWebhook` accepts), in a secret no tool may use.
    ///
    /// - Throws: ``ChannelError`` `.configuration` naming the secret (never its value) and the fix.
    public static func secretToken(_ settings: TelegramSettings, vault: UnlockedVault) throws(ChannelError)
        -> SecretBytes
    {
        guard let name = settings.webhookSecret else {
            throw ChannelError(
                .configuration,
                "Telegram's webhook mode needs channels.telegram.webhook_secret: name a vault secret of 32+ random "
                    + "letters and digits")
        }
        let secret: SecretBytes
        switch WebhookKey.usable(name, in: vault) {
        case .success(let found): secret = found
        case .failure(let error): throw ChannelError(.configuration, "the Telegram webhook secret: \(error.message)")
        }
        let allowed = secret.count <= 256 && secret.withUnsafeBytes { $0.allSatisfy(TelegramText.isTokenByte) }
        guard allowed else {
            throw ChannelError(
                .configuration,
                "vault secret \(name) must be 32 to 256 of A-Z, a-z, 0-9, _ and - (what Telegram accepts as a webhook "
                    + "secret): store a new one with `moat vault add \(name)`")
        }
        return secret
    }

    /// Checks one delivery and returns its update.
    ///
    /// - Throws: ``ChannelError`` `.unauthorized` (``refused``) for a missing or wrong header, checked first;
    ///   `.invalidInput` for a body that is not one update.
    public static func verify(header: String?, body: [UInt8], secret: SecretBytes) throws(ChannelError)
        -> TelegramUpdate
    {
        try authenticate(header: header, secret: secret)
        return try update(body)
    }

    /// Checks the secret header alone (a route checks it before it reads the body).
    ///
    /// - Throws: ``refused`` for a missing or wrong header.
    public static func authenticate(header: String?, secret: SecretBytes) throws(ChannelError) {
        guard let header, matches(header, secret: secret) else { throw refused }
    }

    /// The update a body holds.
    ///
    /// - Throws: ``ChannelError`` `.invalidInput` for a body that is too large or not one update.
    public static func update(_ body: [UInt8]) throws(ChannelError) -> TelegramUpdate {
        guard body.count <= maximumBodyBytes else {
            throw ChannelError(.invalidInput, "the update is larger than \(maximumBodyBytes >> 20) MiB")
        }
        do {
            return try JSONDecoder().decode(TelegramUpdate.self, from: Data(body))
        } catch {
            throw ChannelError(.invalidInput, "the body is not a Telegram update (a JSON object with update_id)")
        }
    }

    /// Whether `header` equals the secret, in time that depends on neither.
    static func matches(_ header: String, secret: SecretBytes) -> Bool {
        let presented = Array(SHA256.hash(data: Array(header.utf8)))
        let expected = secret.withUnsafeBytes { Array(SHA256.hash(data: $0)) }
        return SignedWebhook.constantTimeEquals(presented, expected)
    }
}
