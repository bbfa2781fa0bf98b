import Foundation
public import MoatAuth
import MoatCore

/// The owner operations of the command line (`moat token …`, `moat owner …`), in one place for both
/// ways they run: through the admin socket when `moat serve` is running (``AdminSocketServer`` hands
/// requests here through ``AdminOperations``), or in the command's own process when it is not. Either
/// way the same checks and the same audit entries apply.
public struct OwnerOperations: Sendable {
    let authority: OwnerAuthority
    /// The setup link's base (`http://127.0.0.1:18789`), when a server is listening.
    let baseURL: @Sendable () -> String?
    /// Called after a setup link is created (the server writes it to its terminal or file).
    let onSetupLink: (@Sendable (String) -> Void)?

    public init(
        authority: OwnerAuthority,
        baseURL: @escaping @Sendable () -> String?,
        onSetupLink: (@Sendable (String) -> Void)? = nil
    ) {
        self.authority = authority
        self.baseURL = baseURL
        self.onSetupLink = onSetupLink
    }

    /// Runs one owner or token operation; nil for an operation of another table. `client` names the
    /// caller for the audit log.
    func perform(_ operation: AdminOperation, client: ClientInfo) async throws -> AdminResult? {
        switch operation {
        case .ownerStatus:
            switch try await authority.state() {
            case .needsSetup:
                return .ownerStatus(nil)
            case .damaged:
                throw AdminFailure(OwnerState.damagedAdvice, kind: .dataError)
            case .ready(let username, let totp):
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                let tokens = try await authority.tokens().filter { $0.isActive(at: now) }.count
                return .ownerStatus(OwnerStatusView(username: username, totp: totp, activeTokens: tokens))
            }
        case .ownerSetup(let username, let password, let reset):
            try await authority.setUpLocally(username: username, password: password, replace: reset, client: client)
            return .ownerSetUp(loginURL: baseURL())
        case .ownerSetupLink:
            guard let baseURL = baseURL() else {
                throw AdminFailure("moat serve is not running: start it, and it prints a setup link itself")
            }
            let link = "\(baseURL)/setup#\(try await authority.createSetupToken(client: client))"
            onSetupLink?(link)
            return .setupLink(link)
        case .ownerPassword(let password):
            try await authority.resetPassword(password, client: client)
            return .passwordChanged
        case .ownerRevokeAll(let tokens):
            try await authority.revokeAll(tokens: tokens, client: client)
            return .revokedAll(tokens: tokens)
        case .ownerTOTPBegin:
            let enrolment = try await authority.beginTOTPEnrolment(currentPassword: nil, client: client)
            return .totpEnrolment(qrText: enrolment.qrText, uri: enrolment.uri, secret: enrolment.secretBase32)
        case .ownerTOTPConfirm(let code):
            let text = code.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            return .recoveryCodes(try await authority.confirmTOTP(code: text, client: client))
        case .tokenCreate(let name, let scope, let expiry):
            let created = try await authority.createToken(
                name: name, scope: scope, lifetime: expiry.lifetime, client: client)
            return .tokenCreated(
                TokenCreated(
                    token: created.token, prefix: created.record.prefix, scope: scope,
                    expiresAt: created.record.expiresAt.map(OwnerAuthority.timestamp)))
        case .tokenList:
            return .tokens(try await authority.tokens().map(TokenView.init))
        case .tokenRevoke(let prefix):
            try await authority.revokeToken(prefix: prefix, client: client)
            return .tokenRevoked(prefix: prefix)
        default:
            return nil
        }
    }
}
