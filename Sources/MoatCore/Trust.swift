/// How much the gateway lets the model do on its own in one domain, from 0 (nothing) to 4 (everything).
///
/// The order matters: every decision takes the minimum of several levels, so a lower level always wins.
public enum TrustLevel: Int, Sendable, Hashable, Comparable, CaseIterable, Codable, CustomStringConvertible {
    /// Refused; the model is told so.
    case none = 0
    /// Described to the user, not run.
    case inform = 1
    /// Held as a pending approval; runs only when the owner approves it.
    case suggest = 2
    /// Runs, and the owner is told.
    case actAndReport = 3
    /// Runs.
    case fullAutonomy = 4

    public static func < (lhs: TrustLevel, rhs: TrustLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The short name used in the CLI and the docs (`none`, `inform`, `suggest`, `act`, `full`).
    public var name: String {
        switch self {
        case .none: return "none"
        case .inform: return "inform"
        case .suggest: return "suggest"
        case .actAndReport: return "act"
        case .fullAutonomy: return "full"
        }
    }

    /// Parses `0`…`4` or a short name.
    public init?(argument: String) {
        let text = argument.lowercased()
        if let number = Int(text), let level = TrustLevel(rawValue: number) {
            self = level
        } else if let level = TrustLevel.allCases.first(where: { $0.name == text }) {
            self = level
        } else {
            return nil
        }
    }

    public var description: String { "\(rawValue) (\(name))" }
}

/// The area a tool acts in; trust is granted per domain.
public enum TrustDomain: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    case messaging, files, web, shell, finance, calendar, email, integrations, system

    public var description: String { rawValue }
}

/// Who a request comes from, as far as trust is concerned.
public enum Principal: Sendable, Hashable, CustomStringConvertible {
    /// The owner: no ceiling below the domain level.
    case owner
    /// A paired contact, with a ceiling per domain (domains missing from the map are capped at `none`).
    case contact(id: String, ceilings: [TrustDomain: TrustLevel])

    /// The ceiling this principal puts on `domain`.
    public func ceiling(for domain: TrustDomain) -> TrustLevel {
        switch self {
        case .owner: return .fullAutonomy
        case .contact(_, let ceilings): return ceilings[domain] ?? TrustLevel.none
        }
    }

    /// `owner` or `contact:<id>`, the form the audit log uses for actors.
    public var description: String {
        switch self {
        case .owner: return "owner"
        case .contact(let id, _): return "contact:\(id)"
        }
    }
}
