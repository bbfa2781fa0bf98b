public import MoatCore

/// Whether a conversation has read untrusted or suspicious text, and why.
public struct ConversationTaint: Sendable, Hashable {
    /// Why the conversation is tainted (empty when clean), oldest first.
    public var reasons: [String]

    public init(reasons: [String] = []) {
        self.reasons = reasons
    }

    /// A conversation that has read nothing untrusted.
    public static let clean = ConversationTaint()

    public var isTainted: Bool { !reasons.isEmpty }

    /// This taint after the conversation read `text` from `source` with these flags.
    public func reading(from source: ContentSource, flags: [InjectionFlag]) -> ConversationTaint {
        var next = self
        if !flags.isEmpty {
            next.reasons.append("\(source.rawValue) text was flagged: \(flags[0])")
        } else if source.taintsByDefault {
            next.reasons.append("read \(source == .web ? "web content" : "tool output") (untrusted by default)")
        }
        return next
    }
}

/// The pure trust decision for one tool call: no I/O, no clock, no database.
public enum TrustDecision {
    /// Domains a tainted conversation may at most `suggest` in: where a hijacked model does harm.
    public static let taintCappedDomains: Set<TrustDomain> = [.shell, .files, .finance, .email, .messaging, .system]

    /// Which input set the effective level.
    public enum Limit: String, Sendable, Hashable {
        case domain, principal, taint
    }

    /// The effective level and which inputs held it down.
    public struct Outcome: Sendable, Hashable {
        public let level: TrustLevel
        /// Every input equal to the effective level (the ones that would have to change to raise it).
        public let limitedBy: [Limit]
        /// A one-line explanation for the model and the audit log.
        public let explanation: String
    }

    /// The cap taint puts on `domain`.
    public static func taintCap(_ taint: ConversationTaint, domain: TrustDomain) -> TrustLevel {
        taint.isTainted && taintCappedDomains.contains(domain) ? .suggest : .fullAutonomy
    }

    /// min(domain level, the principal's ceiling for the domain, the taint cap).
    ///
    /// - Parameters:
    ///   - action: what is asked (the tool name), used only in the explanation.
    public static func evaluate(
        domainLevel: TrustLevel,
        principal: Principal,
        domain: TrustDomain,
        action: String,
        taint: ConversationTaint
    ) -> Outcome {
        let ceiling = principal.ceiling(for: domain)
        let cap = taintCap(taint, domain: domain)
        let level = min(domainLevel, ceiling, cap)
        var limits: [Limit] = []
        if domainLevel == level { limits.append(.domain) }
        if ceiling == level { limits.append(.principal) }
        if cap == level { limits.append(.taint) }
        let verb: String
        switch level {
        case .none: verb = "refused"
        case .inform: verb = "described only, not run"
        case .suggest: verb = "held for the owner's approval"
        case .actAndReport: verb = "run, and the owner is told"
        case .fullAutonomy: verb = "run"
        }
        let why = limits.map { limit -> String in
            switch limit {
            case .domain: return "\(domain) trust is \(domainLevel)"
            case .principal: return "\(principal) may do at most \(ceiling) in \(domain)"
            case .taint: return "the conversation is tainted"
            }
        }
        return Outcome(
            level: level,
            limitedBy: limits,
            explanation: "\(action) in \(domain) is \(verb): \(why.joined(separator: "; "))"
        )
    }
}
