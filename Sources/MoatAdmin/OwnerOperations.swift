import Foundation
public import MoatAuth
import MoatCore

/// The owner operations of the command line (`moat token …`, `moat owner …`), in one place for both
/// ways they run: through the admin socket when `moat serve` is running (``AdminSocketServer`` hands
/// requests here), or in the command's own process when it is not. Either way the same checks and the
/// same audit entries apply; the response is what the command prints and the exit status it returns.
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

    /// Every operation name, for the protocol's documentation and tests.
    public static let names = [
        "owner.status", "owner.setup", "owner.setup-link", "owner.password", "owner.revoke-all",
        "owner.totp-begin", "owner.totp-confirm",
        "token.create", "token.list", "token.revoke",
    ]

    /// Runs one request. `client` names the caller for the audit log.
    public func perform(_ request: AdminRequest, client: ClientInfo) async -> AdminResponse {
        do {
            return try await run(request, client: client)
        } catch let error as AuthError {
            return AdminResponse(status: error.kind.exitCode, output: "", error: error.message)
        } catch {
            return AdminResponse(status: ExitStatus.failure, output: "", error: "\(error)")
        }
    }

    private func run(_ request: AdminRequest, client: ClientInfo) async throws -> AdminResponse {
        let params = request.params
        switch request.op {
        case "owner.status":
            switch try await authority.state() {
            case .needsSetup:
                return ok("no owner yet: run `moat owner setup`\n")
            case .damaged:
                return AdminResponse(
                    status: ExitStatus.dataError, output: "",
                    error: OwnerState.damagedAdvice)
            case .ready(let username, let totp):
                let tokens = try await authority.tokens().filter { $0.isActive(at: Self.nowMillis()) }.count
                return ok(
                    "owner: \(username)\ntwo-factor (TOTP): \(totp ? "on" : "off")\nactive API tokens: \(tokens)\n")
            }
        case "owner.setup":
            var bytes = Array((params["password"] ?? "").utf8)
            try await authority.setUpLocally(
                username: params["username"], password: SecretBytes(wiping: &bytes),
                replace: params["reset"] == "true", client: client)
            if let base = baseURL() { return ok("owner set up; log in at \(base)/login\n") }
            return ok(
                "owner set up; start `moat serve` and log in at its address "
                    + "(http://127.0.0.1:18789/login by default)\n")
        case "owner.setup-link":
            guard let baseURL = baseURL() else {
                return AdminResponse(
                    status: ExitStatus.failure, output: "",
                    error: "moat serve is not running: start it, and it prints a setup link itself")
            }
            let token = try await authority.createSetupToken(client: client)
            let link = "\(baseURL)/setup#\(token)"
            onSetupLink?(link)
            return ok(link + "\n")
        case "owner.password":
            var bytes = Array((params["password"] ?? "").utf8)
            try await authority.resetPassword(SecretBytes(wiping: &bytes), client: client)
            return ok("password changed; every session was ended\n")
        case "owner.revoke-all":
            let tokens = params["tokens"] == "true"
            try await authority.revokeAll(tokens: tokens, client: client)
            return ok(
                "every session and live token was ended" + (tokens ? ", and every API token revoked" : "") + "\n")
        case "owner.totp-begin":
            let enrolment = try await authority.beginTOTPEnrolment(currentPassword: nil, client: client)
            return ok(
                enrolment.qrText + "\n" + enrolment.uri + "\n\nsecret (to type in by hand): " + enrolment.secretBase32
                    + "\n")
        case "owner.totp-confirm":
            let codes = try await authority.confirmTOTP(code: params["code"] ?? "", client: client)
            return ok(
                "two-factor login is on. Recovery codes — each works once in place of a code; store them offline:\n\n"
                    + codes.map { "    " + $0 }.joined(separator: "\n") + "\n")
        case "token.create":
            guard let scope = TokenScope(rawValue: params["scope"] ?? "read") else {
                throw AuthError(.invalidInput, "--scope must be read, write or admin")
            }
            let created = try await authority.createToken(
                name: params["name"] ?? "", scope: scope, lifetime: try TokenLifetime.parse(params["expires"]),
                client: client)
            let expiry = created.record.expiresAt.map(OwnerAuthority.timestamp) ?? "never"
            return ok(
                created.token + "\n",
                note: "token \(created.record.prefix) (\(scope.rawValue), expires \(expiry)) — shown only this once; "
                    + "send it as `Authorization: Bearer <token>`\n")
        case "token.list":
            let tokens = try await authority.tokens()
            if params["json"] == "true" {
                let objects = tokens.map(TokenJSON.object)
                let data = try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys, .prettyPrinted])
                return ok(String(decoding: data, as: UTF8.self) + "\n")
            }
            return ok(Self.table(tokens))
        case "token.revoke":
            try await authority.revokeToken(prefix: params["prefix"] ?? "", client: client)
            return ok("revoked \(params["prefix"] ?? "")\n")
        default:
            throw AuthError(.invalidInput, "unknown admin operation \(OwnerOperationsText.printable(request.op))")
        }
    }

    private func ok(_ output: String, note: String? = nil) -> AdminResponse {
        AdminResponse(status: 0, output: output, error: note)
    }

    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func table(_ tokens: [APITokenRecord]) -> String {
        guard !tokens.isEmpty else { return "no API tokens; create one with `moat token create NAME`\n" }
        var lines = [["PREFIX", "NAME", "SCOPE", "CREATED", "LAST USED", "EXPIRES", "STATE"]]
        let now = nowMillis()
        for token in tokens {
            let state = token.revokedAt != nil ? "revoked" : (token.isActive(at: now) ? "active" : "expired")
            lines.append([
                token.prefix, OwnerOperationsText.printable(token.name), token.scope.rawValue,
                OwnerAuthority.timestamp(token.createdAt), token.lastUsedAt.map(OwnerAuthority.timestamp) ?? "never",
                token.expiresAt.map(OwnerAuthority.timestamp) ?? "never", state,
            ])
        }
        let widths = (0..<lines[0].count).map { column in lines.map { $0[column].count }.max() ?? 0 }
        return lines.map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}

enum OwnerOperationsText {
    /// Control characters removed, so stored text cannot drive the owner's terminal.
    static func printable(_ text: String) -> String {
        String(PrintableText.strip(text).prefix(80))
    }
}
