public import MoatCore

/// A pairing request as sent to the owner's bound accounts: who asks, and the choices a tap can make.
///
/// A tap comes back as a ``ChannelMessage`` whose text is one of the choices' references,
/// `pairing REF CHOICE`: `REF` is the request's ``PendingCode/id`` (128 random bits, never the code, which is
/// a MAC of it under the installation's key), so a button's data tells nobody the code. The router alone
/// decides whether the tapping account is the owner's, and the pairing desk whether the request is still
/// pending: a tap is single use and expires with the code.
public struct PairingPrompt: Sendable, Hashable {
    /// What a tap on the notice does.
    public enum Choice: String, Sendable, Hashable, CaseIterable {
        /// Let the sender in with ``OwnerPairingPreset/chatOnly``.
        case chat
        /// Let the sender in with ``OwnerPairingPreset/suggest``.
        case suggest
        /// Deny the pairing.
        case deny

        /// The button's label.
        public var label: String {
            switch self {
            case .chat: "Let in (chat only)"
            case .suggest: "Let in (suggest)"
            case .deny: "Deny"
            }
        }
    }

    /// The pairing request (``PendingCode/id``).
    public var reference: String
    public var channel: String
    public var senderID: String

    public init(_ pending: PendingCode) {
        self.init(reference: pending.id, channel: pending.channel, senderID: pending.senderID)
    }

    public init(reference: String, channel: String, senderID: String) {
        self.reference = reference
        self.channel = channel
        self.senderID = senderID
    }

    /// The text a tap on `choice` comes back as: `pairing REF CHOICE`.
    public func text(_ choice: Choice) -> String { "pairing \(reference) \(choice.rawValue)" }

    /// Whether `reference` has the shape of a request id (32 lower-case hex digits).
    static func isReference(_ reference: String) -> Bool {
        reference.utf8.count == 32
            && reference.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// The fixed ceilings a tap in the owner's chat grants (Docs/Channels.md). Conservative on purpose: a tap
/// is quick, so it never opens a domain to more than `suggest` (every action held for the owner's own
/// approval), and never gives owner rights. Other ceilings are typed: `pair CODE web=2 files=1`.
public enum OwnerPairingPreset {
    /// "Let in (chat only)": messaging `inform` (1), every other domain `none` (0). The sender talks with
    /// the agent; no tool runs for them.
    public static let chatOnly: [TrustDomain: TrustLevel] = Dictionary(
        uniqueKeysWithValues: TrustDomain.allCases.map { ($0, $0 == .messaging ? .inform : .none) })

    /// "Let in (suggest)": messaging, web, files and calendar `suggest` (2) — each action waits for the
    /// owner's approval — and every other domain (shell, finance, email, integrations, system) `none`.
    public static let suggest: [TrustDomain: TrustLevel] = Dictionary(
        uniqueKeysWithValues: TrustDomain.allCases.map {
            ($0, [.messaging, .web, .files, .calendar].contains($0) ? .suggest : .none)
        })

    /// `messaging 1, files 0, …` in the order of the domains.
    static func describe(_ ceilings: [TrustDomain: TrustLevel]) -> String {
        TrustDomain.allCases.map { "\($0) \((ceilings[$0] ?? .none).rawValue)" }.joined(separator: ", ")
    }
}

/// The owner's pairing decisions from their chat: a notice button's reference (`pairing REF CHOICE`), or
/// typed `pair CODE [DOMAIN=LEVEL …]` / `deny CODE`. Only a whole message counts.
struct PairingCommand: Hashable {
    /// Which pairing: the notice's reference, or the code the owner typed.
    enum Target: Hashable {
        case reference(String)
        case code(String)
    }

    enum Action: Hashable {
        case approve([TrustDomain: TrustLevel])
        case deny
        /// A `pair` command the owner mistyped: what was wrong.
        case invalid(String)
    }

    let target: Target
    let action: Action

    init?(_ text: String) {
        let parts = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let verb = parts.first?.lowercased(), parts.count >= 2, text.utf8.count <= 400 else { return nil }
        switch verb {
        case "pairing":
            guard parts.count == 3, PairingPrompt.isReference(parts[1]),
                let choice = PairingPrompt.Choice(rawValue: parts[2])
            else { return nil }
            target = .reference(parts[1])
            switch choice {
            case .chat: action = .approve(OwnerPairingPreset.chatOnly)
            case .suggest: action = .approve(OwnerPairingPreset.suggest)
            case .deny: action = .deny
            }
        case "deny":
            // `deny ID` of an approval has a 10-character id: only an 8-character code is a pairing's.
            guard parts.count == 2, let code = PairingCode.normalize(parts[1]) else { return nil }
            target = .code(code)
            action = .deny
        case "pair":
            guard let code = PairingCode.normalize(parts[1]) else {
                target = .code("")
                action = .invalid("a pairing code is 8 characters like ABCD-EFGH; write pair CODE [DOMAIN=LEVEL …]")
                return
            }
            target = .code(code)
            action = Self.ceilings(parts.dropFirst(2))
        default:
            return nil
        }
    }

    /// `DOMAIN=LEVEL …` over the chat-only preset (a domain not named stays as the preset has it).
    static func ceilings(_ words: ArraySlice<String>) -> Action {
        var ceilings = OwnerPairingPreset.chatOnly
        for word in words {
            let pair = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, let domain = TrustDomain(rawValue: pair[0].lowercased()) else {
                return .invalid(
                    "\(PrintableText.excerpt(word, limit: 40)) is not DOMAIN=LEVEL with a domain of "
                        + TrustDomain.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard let number = Int(pair[1]), let level = TrustLevel(rawValue: number) else {
                return .invalid("the ceiling for \(domain) must be a level from 0 to 4")
            }
            ceilings[domain] = level
        }
        return .approve(ceilings)
    }
}
