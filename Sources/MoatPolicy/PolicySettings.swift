public import Foundation
public import MoatCore
public import MoatNet

/// The owner's policy settings from `config.yaml` (`policy:`), with restrictive defaults.
public struct PolicySettings: Sendable, Equatable {
    /// The level of each domain until the first recorded change (`policy.trust`).
    public static let defaultTrust: [TrustDomain: TrustLevel] = [
        .messaging: .inform, .files: .inform, .web: .inform, .shell: .none, .finance: .none, .calendar: .inform,
        .email: .inform, .integrations: .inform, .system: .none,
    ]

    /// What a newly paired contact may at most do per domain: suggest in messaging, inform elsewhere.
    public static let defaultContactCeilings: [TrustDomain: TrustLevel] = Dictionary(
        uniqueKeysWithValues: TrustDomain.allCases.map { ($0, $0 == .messaging ? .suggest : .inform) }
    )

    /// `policy.trust.<domain>`.
    public var trustDefaults: [TrustDomain: TrustLevel] = PolicySettings.defaultTrust
    /// `policy.evidence_approvals`: owner approvals in a domain (with no denial) needed to raise it to 3 or 4.
    public var evidenceApprovals = 10
    /// `policy.approval_expiry_minutes`: how long a pending approval can be decided.
    public var approvalLifetime: TimeInterval = 3600
    /// `policy.ssrf`.
    public var ssrf = SSRFSettings()

    public init() {}

    /// The configured default level of `domain`.
    public func defaultLevel(_ domain: TrustDomain) -> TrustLevel {
        trustDefaults[domain] ?? PolicySettings.defaultTrust[domain] ?? .none
    }
}
