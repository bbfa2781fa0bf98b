import Foundation
public import MoatAgent
public import MoatAuth
public import MoatChannels
public import MoatCore
public import MoatPolicy
public import MoatVault

/// What an ``AdminOperation`` answers: structured data, one case per kind of answer. The server sends
/// it as JSON; the CLI renders it as text (`AdminRendering.swift` in `Sources/moat`), the same text whether it ran through
/// the admin socket or in the command's own process.
public enum AdminResult: Sendable, Equatable, Codable {
    /// `owner.status`: nil when there is no owner yet.
    case ownerStatus(OwnerStatusView?)
    /// `owner.setup`: the running server's login address, when there is one.
    case ownerSetUp(loginURL: String?)
    case setupLink(String)
    case passwordChanged
    case revokedAll(tokens: Bool)
    case totpEnrolment(qrText: String, uri: String, secret: String)
    case recoveryCodes([String])
    case tokenCreated(TokenCreated)
    case tokens([TokenView])
    case tokenRevoked(prefix: String)
    case trust([DomainTrustView])
    case trustChanged(TrustChangeView)
    case trustRolledBack(TrustChangeView, of: Int64)
    case trustHistory([TrustChangeView])
    case approvals([ApprovalView], all: Bool)
    case approval(ApprovalView)
    case approved(id: String)
    case denied(id: String)
    case vaultAdded(VaultAdded)
    case vaultRemoved(name: String)
    case contactAdded(ContactView)
    case contacts([ContactView])
    case contactRemoved(id: String)
    /// `chat`: the turn.
    case chatTurn(TurnView)
    /// An approval decided by the agent: the held call ran (or the model was told it was denied) and the
    /// conversation went on.
    case approvalResumed(id: String, approved: Bool, TurnView)
    /// `vault.list`: names, policies and dates, never a value.
    case vaultSecrets([SecretSummary])
    case vaultRekeyed(VaultRekeyed)
    /// `usage`: the entries of the last `days` UTC days, newest first.
    case usage([UsageLedger.Entry], days: Int)
    /// `pairing.list`: pending pairings and owner bindings.
    case pairings([PairingView])
    /// `pairing.approve`: the contact the pairing made.
    case pairingApproved(ContactView)
    /// `pairing.deny`: whose pairing was denied.
    case pairingDenied(PairingView)
    /// `channel.bind`: the code to type from the owner's account, valid until `expiresAt`.
    case bindingCode(PairingView)
    case channelUnbound(channel: String)
    /// `channel.list`: the owner's bound accounts.
    case ownerBindings([OwnerBindingView])
    /// `metrics`: the Prometheus text exposition (names, closed-set labels and numbers only).
    case metrics(String)
}

/// A pending pairing or owner binding (Docs/Channels.md); `code` is for the owner's eyes only.
public struct PairingView: Sendable, Equatable, Codable {
    /// `pair` or `bind`.
    public let purpose: String
    public let channel: String
    public let sender: String
    public let code: String
    public let state: String
    public let expiresAt: Int64

    init(_ pending: PendingCode) {
        purpose = pending.purpose.rawValue
        channel = pending.channel
        sender = pending.senderID
        code = pending.code
        state = pending.state
        expiresAt = pending.expiresAt
    }
}

/// The owner's account on a channel.
public struct OwnerBindingView: Sendable, Equatable, Codable {
    public let channel: String
    public let sender: String
    public let boundAt: Int64

    init(_ binding: OwnerBinding) {
        channel = binding.channel
        sender = binding.senderID
        boundAt = binding.boundAt
    }
}

/// A contact and its ceilings (Docs/Channels.md).
public struct ContactView: Sendable, Equatable, Codable {
    public let id: String
    public let channel: String
    public let sender: String
    /// Domain name → level (0–4), as JSON shows it.
    public let ceilings: [String: Int]
    public let addedAt: Int64

    init(_ grant: ContactGrant) {
        id = grant.id
        channel = grant.channel
        sender = grant.senderID
        ceilings = Self.wire(grant.ceilings)
        addedAt = grant.addedAt
    }

    /// Ceilings as JSON carries them.
    static func wire(_ ceilings: [TrustDomain: TrustLevel]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: ceilings.map { ($0.key.rawValue, $0.value.rawValue) })
    }

    /// Ceilings from JSON; nil when a domain or level is unknown.
    static func ceilings(_ wire: [String: Int]) -> [TrustDomain: TrustLevel]? {
        var ceilings: [TrustDomain: TrustLevel] = [:]
        for (name, value) in wire {
            guard let domain = TrustDomain(rawValue: name), let level = TrustLevel(rawValue: value) else { return nil }
            ceilings[domain] = level
        }
        return ceilings
    }
}

/// A re-keyed vault: where it is, its new key-derivation parameters, and what else changed.
public struct VaultRekeyed: Sendable, Equatable, Codable {
    public let vault: String
    public let parameters: String
    /// The seal written again, when the vault was sealed.
    public let seal: String?
    /// A `recovery-key.txt` that still holds the old recovery key, which no longer opens the vault.
    public let staleRecoveryKey: String?

    public init(vault: String, parameters: String, seal: String?, staleRecoveryKey: String?) {
        self.vault = vault
        self.parameters = parameters
        self.seal = seal
        self.staleRecoveryKey = staleRecoveryKey
    }
}

/// A secret stored in the vault: its name and policy (never its value) and what to warn about.
public struct VaultAdded: Sendable, Equatable, Codable {
    public let name: String
    /// Whether an existing secret was replaced.
    public let replaced: Bool
    /// The policy as `moat vault list` shows it.
    public let policy: String
    /// Whether the value is under 4 bytes (not scrubbed from output).
    public let shortValue: Bool
    /// Whether some tool may use it (at least one tool and one host allowed).
    public let usable: Bool
}

/// The owner as `moat owner status` shows it.
public struct OwnerStatusView: Sendable, Equatable, Codable {
    public let username: String
    public let totp: Bool
    public let activeTokens: Int
}

/// A new API token: the token itself (shown once) and what to say about it.
public struct TokenCreated: Sendable, Equatable, Codable {
    public let token: String
    public let prefix: String
    public let scope: TokenScope
    public let expiresAt: String?
}

/// One recorded trust change.
public struct TrustChangeView: Sendable, Equatable, Codable {
    public let id: Int64
    public let domain: TrustDomain
    public let from: TrustLevel
    public let to: TrustLevel
    public let kind: String
    public let actor: String
    public let reason: String
    public let evidence: String
    public let rollbackOf: Int64?
    public let createdAt: Int64

    init(_ change: TrustChange) {
        id = change.id
        domain = change.domain
        from = change.from
        to = change.to
        kind = change.kind.rawValue
        actor = change.actor
        reason = change.reason
        evidence = change.evidence
        rollbackOf = change.rollbackOf
        createdAt = change.createdAt
    }
}

/// One domain's trust level and its last change.
public struct DomainTrustView: Sendable, Equatable, Codable {
    public let domain: TrustDomain
    public let level: TrustLevel
    public let lastChange: TrustChangeView?
    public let tampered: Bool

    init(_ trust: DomainTrust) {
        domain = trust.domain
        level = trust.level
        lastChange = trust.lastChange.map(TrustChangeView.init)
        tampered = trust.tampered
    }
}

/// One approval with its exact request.
public struct ApprovalView: Sendable, Equatable, Codable {
    public let id: String
    public let status: String
    public let domain: TrustDomain
    public let tool: String
    public let arguments: String
    public let destination: String
    public let requestHash: String
    public let principal: String
    public let createdAt: Int64
    public let expiresAt: Int64
    /// For a call the agent holds: what set its level and, under the taint cap, the taint's causes.
    public internal(set) var heldBecause: String?

    init(_ record: ApprovalRecord) {
        id = record.id
        status = record.status.description
        domain = record.domain
        tool = record.request.tool
        arguments = record.request.arguments
        destination = record.request.destination
        requestHash = record.requestHash
        principal = record.principal
        createdAt = record.createdAt
        expiresAt = record.expiresAt
    }
}
