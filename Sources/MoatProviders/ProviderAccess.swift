public import MoatCore
import MoatNet

/// Who a provider is for, or whom a route applies to: one entry of `providers.NAME.allowed_principals`
/// or one key of `agent.routes`.
///
/// The words are the principals as the audit log and `moat usage` write them: `owner`, `contact:ID`
/// (the id `moat contact list` shows), `channel:NAME` (every contact writing on channel NAME, e.g.
/// `channel:webhook:alerts`), `contacts` (every paired contact) and `everyone` (the owner and every
/// contact).
public enum PrincipalPattern: Sendable, Hashable, CustomStringConvertible {
    case owner
    case contact(id: String)
    case channel(String)
    case contacts
    case everyone

    /// What may be written, for error messages.
    public static let forms = "owner, contact:ID (as moat contact list shows it), channel:NAME, contacts or everyone"

    /// The pattern `text` names, or nil.
    public init?(_ text: String) {
        switch text {
        case "owner": self = .owner
        case "contacts": self = .contacts
        case "everyone": self = .everyone
        default:
            if let id = Self.rest(of: text, after: "contact:") {
                self = .contact(id: id)
            } else if let channel = Self.rest(of: text, after: "channel:") {
                self = .channel(channel)
            } else {
                return nil
            }
        }
    }

    private static func rest(of text: String, after prefix: String) -> String? {
        guard text.hasPrefix(prefix) else { return nil }
        let rest = String(text.dropFirst(prefix.count))
        guard !rest.isEmpty, rest.utf8.count <= 256, PrintableText.isPrintable(rest), !rest.contains(" ") else {
            return nil
        }
        return rest
    }

    /// Whether `principal`, writing on `channel`, is one of this pattern's.
    public func matches(_ principal: Principal, channel: String) -> Bool {
        switch (self, principal) {
        case (.everyone, _), (.owner, .owner): true
        case (.contacts, .contact): true
        case (.contact(let id), .contact(let other, _)): id.utf8.elementsEqual(other.utf8)
        case (.channel(let name), .contact): name.utf8.elementsEqual(channel.utf8)
        default: false
        }
    }

    /// How narrowly the pattern names its principals: the most specific route that matches wins.
    public var specificity: Int {
        switch self {
        case .owner, .contact: 3
        case .channel: 2
        case .contacts: 1
        case .everyone: 0
        }
    }

    public var description: String {
        switch self {
        case .owner: "owner"
        case .contact(let id): "contact:\(id)"
        case .channel(let name): "channel:\(name)"
        case .contacts: "contacts"
        case .everyone: "everyone"
        }
    }
}

extension ProviderSettings {
    /// Whether this provider spends someone's money or sends the conversation off the machine: it has an
    /// API key, or its server is not on loopback (a LAN box may be someone else's GPU).
    public var isHosted: Bool {
        guard apiKeySecret == nil, case .success(let url) = FetchURL.parse(baseURL) else { return true }
        switch url.host {
        case .address(let address): return !address.isLoopback
        case .name(let name): return name != "localhost"
        }
    }

    /// `allowed_principals` as written, or the default: the owner alone for a hosted provider
    /// (``isHosted``), everyone for a keyless one on loopback.
    public var effectiveAllowedPrincipals: [PrincipalPattern] {
        allowedPrincipals ?? (isHosted ? [.owner] : [.everyone])
    }

    /// Whether `principal`, writing on `channel`, may have this provider answer.
    public func allows(_ principal: Principal, channel: String) -> Bool {
        effectiveAllowedPrincipals.contains { $0.matches(principal, channel: channel) }
    }
}

extension ProviderError {
    /// Whether the round failed because the provider is not available (no connection, a timeout, its
    /// breaker open, a 5xx or 529 after the retries, a 429 beyond the retry budget): the failures after
    /// which the next provider of a route may be tried. A refusal (a wrong key, an unknown model), a bad
    /// answer or a configuration problem is not one: another provider would hide it from the owner.
    public var isOutage: Bool {
        code == .unreachable || code == .timedOut || code == .rateLimited || serverDown
    }
}
