import Foundation
import MoatAgent
public import MoatAuth
public import MoatCore

/// One owner operation with its typed parameters: the table of everything the `moat` CLI may ask the
/// running `moat serve` to do through the admin socket (and what it runs in its own process when no
/// server runs). ``AdminOperations/perform(_:client:)`` carries each case out; ``AdminResult`` is what it
/// answers. Passwords, codes and secret values are ``SecretBytes``: they are never `String` parameters,
/// never logged and never part of an error message.
public enum AdminOperation: Sendable {
    case ownerStatus
    case ownerSetup(username: String?, password: SecretBytes, reset: Bool)
    case ownerSetupLink
    case ownerPassword(SecretBytes)
    case ownerRevokeAll(tokens: Bool)
    case ownerTOTPBegin
    case ownerTOTPConfirm(code: SecretBytes)
    case tokenCreate(name: String, scope: TokenScope, expiry: TokenExpiry)
    case tokenList
    case tokenRevoke(prefix: String)
    case trustShow
    case trustSet(domain: TrustDomain, level: TrustLevel, reason: String, force: Bool)
    case trustHistory(domain: TrustDomain?)
    case trustRollback(id: Int64, reason: String?, force: Bool)
    case approvalsList(all: Bool)
    case approvalsShow(id: String)
    case approvalsApprove(id: String)
    case approvalsDeny(id: String, reason: String)
    case vaultAdd(name: String, value: SecretBytes, tools: [String], hosts: [String], replace: Bool)
    case vaultRemove(name: String)
    /// `moat contact add CHANNEL:SENDER`: `channel` is `webhook:NAME`, `telegram`, …
    case contactAdd(channel: String, sender: String, ceilings: [TrustDomain: TrustLevel])
    case contactList
    case contactRemove(id: String)
    /// `moat chat --message TEXT`: one turn of the owner's conversation (a new one when nil).
    case chat(message: String, conversation: String?, provider: String? = nil)
    /// `moat chat` streaming: the same turn, answered with the turn's events (one `{"event": …}` line
    /// each, ``AdminEventFrame``) before the result line.
    case chatStream(message: String, conversation: String?, provider: String? = nil)
    /// The secrets' names, policies and dates (never a value).
    case vaultList
    /// A new master password (and salt) for the vault the server holds, its seal written again. Without
    /// `current` the caller must open the seal (with `pin` when it has one), as an in-process re-key does.
    case vaultRekey(current: SecretBytes?, new: SecretBytes, pin: SecretBytes?)
    /// `moat usage`: model tokens per day, principal and provider over the last `days` UTC days.
    case usage(days: Int)
    /// `moat pairing list`: pending pairings and owner bindings, with their codes.
    case pairingList
    /// `moat pairing approve CODE`: the sender becomes a contact with `ceilings`.
    case pairingApprove(code: SecretBytes, ceilings: [TrustDomain: TrustLevel])
    /// `moat pairing deny CODE`.
    case pairingDeny(code: SecretBytes)
    /// `moat channel bind CHANNEL`: a code to type from the owner's own account on that channel.
    case channelBind(channel: String)
    /// `moat channel unbind CHANNEL`.
    case channelUnbind(channel: String)
    /// `moat channel list`: the owner's bound accounts.
    case channelList
    /// `moat metrics`: the running server's metrics in the Prometheus text format.
    case metrics

    /// Every operation's wire name, in one table.
    public enum Name: String, Sendable, CaseIterable, Codable {
        case ownerStatus = "owner.status"
        case ownerSetup = "owner.setup"
        case ownerSetupLink = "owner.setup-link"
        case ownerPassword = "owner.password"
        case ownerRevokeAll = "owner.revoke-all"
        case ownerTOTPBegin = "owner.totp-begin"
        case ownerTOTPConfirm = "owner.totp-confirm"
        case tokenCreate = "token.create"
        case tokenList = "token.list"
        case tokenRevoke = "token.revoke"
        case trustShow = "trust.show"
        case trustSet = "trust.set"
        case trustHistory = "trust.history"
        case trustRollback = "trust.rollback"
        case approvalsList = "approvals.list"
        case approvalsShow = "approvals.show"
        case approvalsApprove = "approvals.approve"
        case approvalsDeny = "approvals.deny"
        case contactAdd = "contact.add"
        case contactList = "contact.list"
        case contactRemove = "contact.remove"
        case chat = "chat"
        case chatStream = "chat.stream"
        case vaultAdd = "vault.add"
        case vaultRemove = "vault.rm"
        case vaultList = "vault.list"
        case vaultRekey = "vault.rekey"
        case usage = "usage"
        case pairingList = "pairing.list"
        case pairingApprove = "pairing.approve"
        case pairingDeny = "pairing.deny"
        case channelBind = "channel.bind"
        case channelUnbind = "channel.unbind"
        case channelList = "channel.list"
        case metrics = "metrics"
    }

    /// The operation's wire name (for logs and errors: never its parameters).
    public var name: Name {
        switch self {
        case .ownerStatus: .ownerStatus
        case .ownerSetup: .ownerSetup
        case .ownerSetupLink: .ownerSetupLink
        case .ownerPassword: .ownerPassword
        case .ownerRevokeAll: .ownerRevokeAll
        case .ownerTOTPBegin: .ownerTOTPBegin
        case .ownerTOTPConfirm: .ownerTOTPConfirm
        case .tokenCreate: .tokenCreate
        case .tokenList: .tokenList
        case .tokenRevoke: .tokenRevoke
        case .trustShow: .trustShow
        case .trustSet: .trustSet
        case .trustHistory: .trustHistory
        case .trustRollback: .trustRollback
        case .approvalsList: .approvalsList
        case .approvalsShow: .approvalsShow
        case .approvalsApprove: .approvalsApprove
        case .approvalsDeny: .approvalsDeny
        case .vaultAdd: .vaultAdd
        case .contactAdd: .contactAdd
        case .contactList: .contactList
        case .contactRemove: .contactRemove
        case .chat: .chat
        case .chatStream: .chatStream
        case .vaultRemove: .vaultRemove
        case .vaultList: .vaultList
        case .vaultRekey: .vaultRekey
        case .usage: .usage
        case .pairingList: .pairingList
        case .pairingApprove: .pairingApprove
        case .pairingDeny: .pairingDeny
        case .channelBind: .channelBind
        case .channelUnbind: .channelUnbind
        case .channelList: .channelList
        case .metrics: .metrics
        }
    }
}

extension AdminOperation {
    /// Whether the operation is a chat turn (streamed or not).
    public var isChat: Bool {
        switch self {
        case .chat, .chatStream: true
        default: false
        }
    }

    /// Whether the answer streams the turn's events (``AdminEventFrame`` lines) before its result line.
    public var streamsEvents: Bool {
        if case .chatStream = self { return true }
        return false
    }

    /// Whether the operation runs an agent turn (a chat, or an approval decision that resumes one).
    public var isAgentTurn: Bool {
        switch self {
        case .chat, .chatStream, .approvalsApprove, .approvalsDeny: true
        default: false
        }
    }

    /// Whether the agent adds to the result (why each call it holds waits) when it is open.
    public var showsApprovals: Bool {
        switch self {
        case .approvalsList, .approvalsShow: true
        default: false
        }
    }
}

/// An API token's lifetime as `moat token create --expires` gives it.
public enum TokenExpiry: Sendable, Equatable, Codable {
    /// The configured default (90 days).
    case standard
    /// No expiry.
    case never
    /// This many seconds from creation.
    case seconds(Int64)

    /// Parses `30d`, `12h`, `90m` or `never` (``TokenLifetime``); nil is the default.
    public init(parsing text: String?) throws(AuthError) {
        switch try TokenLifetime.parse(text) {
        case nil: self = .standard
        case .some(let seconds) where seconds.isInfinite: self = .never
        case .some(let seconds): self = .seconds(Int64(seconds))
        }
    }

    /// The lifetime ``OwnerAuthority/createToken(name:scope:lifetime:client:)`` takes.
    var lifetime: TimeInterval? {
        switch self {
        case .standard: nil
        case .never: .infinity
        case .seconds(let seconds): TimeInterval(seconds)
        }
    }

    /// Whether a lifetime that came over the wire is one `--expires` could have given.
    var isValid: Bool {
        guard case .seconds(let seconds) = self else { return true }
        return seconds >= 60 && seconds <= 3650 * 86400
    }
}

/// A request that names no known operation or gives a parameter of the wrong type: a usage error (exit
/// 64) that names the operation and the parameter, never a parameter's value.
public struct AdminRequestError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    init(_ message: String) {
        self.message = message
    }

    static func unknown(_ op: String) -> AdminRequestError {
        AdminRequestError(
            "unknown admin operation \(PrintableText.strip(String(op.prefix(60)))); "
                + "this moat and the running server may be different versions")
    }

    public var description: String { message }
}

extension AdminOperation: Codable {
    enum CodingKeys: String, CodingKey {
        case op, params
    }

    /// Parameter names, shared by every operation.
    enum Parameter: String, CodingKey {
        case username, password, reset, tokens, code, name, scope, expiry, prefix, domain, level, reason, force,
            id, all, value, tools, hosts, replace, pin, channel, sender, ceilings, message, conversation, days,
            provider
        case currentPassword = "current_password"
        case newPassword = "new_password"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let op = try container.decode(String.self, forKey: .op)
        guard let name = Name(rawValue: op) else { throw AdminRequestError.unknown(op) }
        var nested: KeyedDecodingContainer<Parameter>?
        if container.contains(.params) {
            nested = try? container.nestedContainer(keyedBy: Parameter.self, forKey: .params)
            guard nested != nil else {
                throw AdminRequestError("the admin operation \(op): params must be a JSON object")
            }
        }
        self = try Self.decode(name, Params(name: name, container: nested))
    }

    private static func decode(_ name: Name, _ params: Params) throws(AdminRequestError) -> AdminOperation {
        switch name {
        case .ownerStatus: return .ownerStatus
        case .ownerSetup:
            return .ownerSetup(
                username: try params.optional(String.self, .username), password: try params.secret(.password),
                reset: try params.flag(.reset))
        case .ownerSetupLink: return .ownerSetupLink
        case .ownerPassword: return .ownerPassword(try params.secret(.password))
        case .ownerRevokeAll: return .ownerRevokeAll(tokens: try params.flag(.tokens))
        case .ownerTOTPBegin: return .ownerTOTPBegin
        case .ownerTOTPConfirm: return .ownerTOTPConfirm(code: try params.secret(.code))
        case .tokenCreate:
            let expiry = try params.optional(TokenExpiry.self, .expiry) ?? .standard
            guard expiry.isValid else { throw params.invalid(.expiry, "a lifetime of 1 minute to 10 years") }
            return .tokenCreate(
                name: try params.required(String.self, .name), scope: try params.required(TokenScope.self, .scope),
                expiry: expiry)
        case .tokenList: return .tokenList
        case .tokenRevoke: return .tokenRevoke(prefix: try params.required(String.self, .prefix))
        case .trustShow: return .trustShow
        case .trustSet:
            return .trustSet(
                domain: try params.required(TrustDomain.self, .domain),
                level: try params.required(TrustLevel.self, .level), reason: try params.required(String.self, .reason),
                force: try params.flag(.force))
        case .trustHistory: return .trustHistory(domain: try params.optional(TrustDomain.self, .domain))
        case .trustRollback:
            return .trustRollback(
                id: try params.required(Int64.self, .id), reason: try params.optional(String.self, .reason),
                force: try params.flag(.force))
        case .approvalsList: return .approvalsList(all: try params.flag(.all))
        case .approvalsShow: return .approvalsShow(id: try params.required(String.self, .id))
        case .approvalsApprove: return .approvalsApprove(id: try params.required(String.self, .id))
        case .approvalsDeny:
            return .approvalsDeny(
                id: try params.required(String.self, .id), reason: try params.optional(String.self, .reason) ?? "")
        case .vaultAdd:
            return .vaultAdd(
                name: try params.required(String.self, .name), value: try params.secret(.value),
                tools: try params.optional([String].self, .tools) ?? [],
                hosts: try params.optional([String].self, .hosts) ?? [], replace: try params.flag(.replace))
        case .vaultRemove: return .vaultRemove(name: try params.required(String.self, .name))
        case .contactAdd:
            guard let ceilings = ContactView.ceilings(try params.required([String: Int].self, .ceilings)) else {
                throw params.invalid(.ceilings, "a map of trust domains to levels 0-4")
            }
            return .contactAdd(
                channel: try params.required(String.self, .channel), sender: try params.required(String.self, .sender),
                ceilings: ceilings)
        case .contactList: return .contactList
        case .contactRemove: return .contactRemove(id: try params.required(String.self, .id))
        case .chat:
            return .chat(
                message: try params.required(String.self, .message),
                conversation: try params.optional(String.self, .conversation),
                provider: try params.optional(String.self, .provider))
        case .chatStream:
            return .chatStream(
                message: try params.required(String.self, .message),
                conversation: try params.optional(String.self, .conversation),
                provider: try params.optional(String.self, .provider))
        case .vaultList: return .vaultList
        case .vaultRekey:
            return .vaultRekey(
                current: try params.optionalSecret(.currentPassword), new: try params.secret(.newPassword),
                pin: try params.optionalSecret(.pin))
        case .usage:
            let days = try params.optional(Int64.self, .days) ?? 7
            guard (1...Int64(UsageLedger.maximumDays)).contains(days) else {
                throw params.invalid(.days, "a number of days from 1 to \(UsageLedger.maximumDays)")
            }
            return .usage(days: Int(days))
        case .pairingList: return .pairingList
        case .pairingApprove:
            guard let ceilings = ContactView.ceilings(try params.required([String: Int].self, .ceilings)) else {
                throw params.invalid(.ceilings, "a map of trust domains to levels 0-4")
            }
            return .pairingApprove(code: try params.secret(.code), ceilings: ceilings)
        case .pairingDeny: return .pairingDeny(code: try params.secret(.code))
        case .channelBind: return .channelBind(channel: try params.required(String.self, .channel))
        case .channelUnbind: return .channelUnbind(channel: try params.required(String.self, .channel))
        case .channelList: return .channelList
        case .metrics: return .metrics
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .op)
        var params = container.nestedContainer(keyedBy: Parameter.self, forKey: .params)
        switch self {
        case .ownerStatus, .ownerSetupLink, .ownerTOTPBegin, .tokenList, .trustShow, .vaultList, .contactList,
            .pairingList, .channelList, .metrics:
            break
        case .pairingApprove(let code, let ceilings):
            try Self.encode(code, .code, in: &params)
            try params.encode(ContactView.wire(ceilings), forKey: .ceilings)
        case .pairingDeny(let code):
            try Self.encode(code, .code, in: &params)
        case .channelBind(let channel), .channelUnbind(let channel):
            try params.encode(channel, forKey: .channel)
        case .ownerSetup(let username, let password, let reset):
            try params.encodeIfPresent(username, forKey: .username)
            try Self.encode(password, .password, in: &params)
            try params.encode(reset, forKey: .reset)
        case .ownerPassword(let password):
            try Self.encode(password, .password, in: &params)
        case .ownerRevokeAll(let tokens):
            try params.encode(tokens, forKey: .tokens)
        case .ownerTOTPConfirm(let code):
            try Self.encode(code, .code, in: &params)
        case .tokenCreate(let name, let scope, let expiry):
            try params.encode(name, forKey: .name)
            try params.encode(scope, forKey: .scope)
            try params.encode(expiry, forKey: .expiry)
        case .tokenRevoke(let prefix):
            try params.encode(prefix, forKey: .prefix)
        case .trustSet(let domain, let level, let reason, let force):
            try params.encode(domain, forKey: .domain)
            try params.encode(level, forKey: .level)
            try params.encode(reason, forKey: .reason)
            try params.encode(force, forKey: .force)
        case .trustHistory(let domain):
            try params.encodeIfPresent(domain, forKey: .domain)
        case .trustRollback(let id, let reason, let force):
            try params.encode(id, forKey: .id)
            try params.encodeIfPresent(reason, forKey: .reason)
            try params.encode(force, forKey: .force)
        case .approvalsList(let all):
            try params.encode(all, forKey: .all)
        case .approvalsShow(let id), .approvalsApprove(let id), .contactRemove(let id):
            try params.encode(id, forKey: .id)
        case .approvalsDeny(let id, let reason):
            try params.encode(id, forKey: .id)
            try params.encode(reason, forKey: .reason)
        case .vaultAdd(let name, let value, let tools, let hosts, let replace):
            try params.encode(name, forKey: .name)
            try Self.encode(value, .value, in: &params)
            try params.encode(tools, forKey: .tools)
            try params.encode(hosts, forKey: .hosts)
            try params.encode(replace, forKey: .replace)
        case .vaultRemove(let name):
            try params.encode(name, forKey: .name)
        case .contactAdd(let channel, let sender, let ceilings):
            try params.encode(channel, forKey: .channel)
            try params.encode(sender, forKey: .sender)
            try params.encode(ContactView.wire(ceilings), forKey: .ceilings)
        case .chat(let message, let conversation, let provider),
            .chatStream(let message, let conversation, let provider):
            try params.encode(message, forKey: .message)
            try params.encodeIfPresent(conversation, forKey: .conversation)
            try params.encodeIfPresent(provider, forKey: .provider)
        case .vaultRekey(let current, let new, let pin):
            if let current { try Self.encode(current, .currentPassword, in: &params) }
            try Self.encode(new, .newPassword, in: &params)
            if let pin { try Self.encode(pin, .pin, in: &params) }
        case .usage(let days):
            try params.encode(days, forKey: .days)
        }
    }

    /// A secret goes on the wire as a JSON string; the `String` made for the encoder is the one copy
    /// outside locked memory on the client, and lives only until the request line is written.
    private static func encode(
        _ secret: SecretBytes, _ key: Parameter, in params: inout KeyedEncodingContainer<Parameter>
    ) throws {
        try params.encode(secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }, forKey: key)
    }

    /// The parameters of one request, read with errors that name the parameter and never its value.
    struct Params {
        let name: Name
        let container: KeyedDecodingContainer<Parameter>?

        func invalid(_ key: Parameter, _ expected: String) -> AdminRequestError {
            AdminRequestError("the admin operation \(name.rawValue): parameter \(key.rawValue) must be \(expected)")
        }

        func optional<T: Decodable>(_ type: T.Type, _ key: Parameter) throws(AdminRequestError) -> T? {
            guard let container, container.contains(key) else { return nil }
            do {
                return try container.decodeIfPresent(type, forKey: key)
            } catch {
                throw invalid(key, Self.expected(type))
            }
        }

        func required<T: Decodable>(_ type: T.Type, _ key: Parameter) throws(AdminRequestError) -> T {
            guard let value = try optional(type, key) else { throw invalid(key, "given") }
            return value
        }

        func flag(_ key: Parameter) throws(AdminRequestError) -> Bool {
            try optional(Bool.self, key) ?? false
        }

        /// A secret parameter: decoded into ``SecretBytes`` and the intermediate bytes wiped.
        func secret(_ key: Parameter) throws(AdminRequestError) -> SecretBytes {
            guard let secret = try optionalSecret(key) else { throw invalid(key, "given") }
            return secret
        }

        func optionalSecret(_ key: Parameter) throws(AdminRequestError) -> SecretBytes? {
            guard var bytes = try optional(String.self, key).map({ Array($0.utf8) }) else { return nil }
            return SecretBytes(wiping: &bytes)
        }

        static func expected(_ type: Any.Type) -> String {
            switch type {
            case is String.Type: "a string"
            case is Bool.Type: "true or false"
            case is Int64.Type: "a number"
            case is [String].Type: "a list of strings"
            case is TrustDomain.Type: "one of: " + TrustDomain.allCases.map(\.rawValue).joined(separator: ", ")
            case is TrustLevel.Type: "a level from 0 to 4"
            case is TokenScope.Type: "read, write or admin"
            default: "of the right type"
            }
        }
    }
}
