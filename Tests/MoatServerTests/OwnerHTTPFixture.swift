import Crypto
import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Logging
import MoatAdmin
import MoatAgent
import MoatApp
import MoatAudit
import MoatAuth
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatStore
import MoatTestSupport
import MoatVault
import Testing

/// The real router with real owner authentication (real `moat.db`, vault and audit log) on a real
/// loopback socket; requests are raw HTTP so tests choose every header.
final class OwnerHTTPFixture: Sendable {
    let directory = TemporaryDirectory("moat-owner-http")
    let state: InstallationState
    let database: MoatDatabase
    let vault: UnlockedVault
    let audit: AuditLog
    let authority: OwnerAuthority
    let auth: GatewayAuth
    /// The agent as `moat serve` builds it (the default provider; nothing is contacted until a turn).
    let agent: Agent
    let hostGuard: HostGuard
    static let password = "a long owner passphrase"

    init(
        settings: AuthSettings = AuthSettings(), tailscale: TailscaleIdentity? = nil, tls: Bool = false,
        allowedHosts: [String] = [], mode: GatewayConfiguration.AuthMode = .password
    ) throws {
        // Opened through the composition root, as `moat serve` opens it; the vault is a copy of the process's
        // prepared one (no key derivation: these tests are about HTTP and owner access, not Argon2).
        var configuration = GatewayConfiguration()
        configuration.auth = settings
        state = try Installation(
            layout: try StateLayout.resolve(home: directory.path, environment: [:]), configuration: configuration
        ).open(.create)
        database = state.database
        vault = try PreparedVault.copy(to: state.installation.vaultPaths)
        audit = try state.auditLog(vault: vault)
        authority = try state.ownerAuthority(vault: vault, audit: audit)
        auth = GatewayAuth(
            authority: authority, database: database, tailscale: tailscale, tls: tls, mode: mode,
            liveTokens: LiveTokenIssuer(key: authority.liveTokenKey, audience: "moat:test"))
        hostGuard = HostGuard(boundAddress: IPAddress("127.0.0.1")!, port: 0, tls: tls, allowedHosts: allowedHosts)
        let engine = try state.policyEngine(vault: vault, audit: audit)
        agent = try state.agent(
            vault: vault, audit: audit, engine: engine,
            notifier: LoggingNotifier(logger: Logger(label: "moat.test") { _ in SwiftLogNoOpLogHandler() }))
        operations = state.adminOperations(
            authority: authority, engine: engine, agent: AgentOperations(agent: agent), baseURL: { nil })
    }

    /// The owner's typed operations, as `moat serve` hands them to the approval and usage routes.
    let operations: AdminOperations

    /// Each route's access rule, as the router declared it.
    let routeTable = RouteTable()

    /// This fixture's own metrics (never the process-wide registry: tests run many servers at once).
    let metrics = ServerMetrics()

    var router: Router<GatewayRequestContext> {
        let metrics = self.metrics
        return GatewayApplication.makeRouter(
            hostGuard: hostGuard, auth: auth, table: routeTable, agent: agent, operations: operations,
            metrics: GatewayMetrics(metrics: metrics.metrics) { await metrics.scrape() })
    }

    /// Runs `body` with a live server on 127.0.0.1 and a client bound to it.
    func live(_ body: @escaping @Sendable (Client) async throws -> Void) async throws {
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { testClient in
            let port = try #require(testClient.port)
            self.hostGuard.setBoundPort(port)
            try await body(Client(port: port))
        }
    }

    struct Client: Sendable {
        let port: Int
        var origin: String { "http://127.0.0.1:\(port)" }

        func send(
            _ method: String, _ path: String, headers: [(String, String)] = [], json: String? = nil,
            from source: String? = nil
        ) async throws -> RawHTTP.Response {
            try await RawHTTP.sendOffPool(
                RawHTTP.request(method, path, headers: [("Host", "127.0.0.1:\(port)")] + headers, body: json),
                port: port, source: source)
        }

        /// A browser-like state-changing request: same Origin, the session cookie and the CSRF token.
        func browser(
            _ method: String, _ path: String, cookie: String, csrf: String?, json: String? = nil,
            extra: [(String, String)] = []
        ) async throws -> RawHTTP.Response {
            var headers = [("Cookie", cookie), ("Origin", origin), ("Sec-Fetch-Site", "same-origin")] + extra
            if let csrf { headers.append(("X-CSRF-Token", csrf)) }
            return try await send(method, path, headers: headers, json: json)
        }
    }

    /// Sets up the owner through a setup link over HTTP and returns the cookie pair and CSRF token.
    func setUp(_ client: Client) async throws -> (cookie: String, csrf: String) {
        let token = try await authority.createSetupToken(client: .local("test"))
        let response = try await client.send(
            "POST", "/api/setup", headers: [("Origin", client.origin)],
            json: #"{"token":"\#(token)","username":"owner","password":"\#(Self.password)"}"#)
        precondition(response.status == 201, "setup failed: \(response.status) \(response.body)")
        return (Self.cookiePair(response), response.json["csrf_token"] as? String ?? "")
    }

    func login(_ client: Client, password: String = OwnerHTTPFixture.password) async throws -> RawHTTP.Response {
        try await client.send(
            "POST", "/api/auth/login", headers: [("Origin", client.origin)],
            json: #"{"username":"owner","password":"\#(password)"}"#)
    }

    /// `name=value` of the response's Set-Cookie.
    static func cookiePair(_ response: RawHTTP.Response) -> String {
        String(response.header("Set-Cookie")?.split(separator: ";").first ?? "")
    }

    /// The metadata (JSON text) of every audit entry with `action`, oldest first.
    func auditMetadata(_ action: String) throws -> [String] {
        try database.pool.read { db in
            try String.fetchAll(
                db, sql: "SELECT metadata FROM audit_entries WHERE action = ? ORDER BY seq", arguments: [action])
        }
    }

    func auditActions() throws -> [String] {
        try database.pool.read { db in try String.fetchAll(db, sql: "SELECT action FROM audit_entries ORDER BY seq") }
    }
}
