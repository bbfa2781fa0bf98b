public import Hummingbird
public import MoatAdmin
public import MoatAgent
public import MoatHTTP

/// Builds the HTTP side of the gateway: the router, its middleware and routes.
///
/// Kept separate from ``GatewayServer`` so tests drive the exact same router through
/// HummingbirdTesting without a socket.
public enum GatewayApplication {
    /// The router with every middleware in its order: request log first (so refusals are logged too),
    /// then the security headers (on every response, refusals included), the Host/Origin guard, the
    /// canonical-path check, then the routes — each `/api/` route inside the group of its access rule
    /// (``RouteAccess``); last, the 405 answer for a known path with another method.
    ///
    /// - Parameters:
    ///   - auth: owner authentication; nil serves only `/healthz` (tests of the guards).
    ///   - table: receives each route's access rule as it is declared (tests, the OpenAPI check).
    ///   - operations: the owner's typed operations, for the approval and usage routes.
    ///   - webhooks: the signed webhook channel (`POST /hooks/NAME`), when it is wired to a receiver.
    ///   - telegram: Telegram's webhook mode (`POST /hooks/telegram/updates`), when it is wired to a receiver.
    ///   - console: what the console's overview shows from the composition root (start time, posture).
    public static func makeRouter(
        hostGuard: HostGuard, auth: GatewayAuth? = nil, table: RouteTable = RouteTable(),
        agent: Agent? = nil, operations: AdminOperations? = nil, webhooks: WebhookRoutes? = nil,
        telegram: TelegramWebhookRoutes? = nil, console: ConsoleSources = ConsoleSources()
    ) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: SecurityHeadersMiddleware(tls: auth?.tls ?? false))
        router.add(middleware: HostGuardMiddleware(hostGuard))
        router.add(middleware: CanonicalPathMiddleware())
        router.get("/healthz") { _, _ -> Response in
            // Deliberately tiny: no version, host name or uptime for a scanner to fingerprint.
            .plainText(status: .ok, "ok\n")
        }
        if let auth {
            OwnerRoutes.register(on: router, auth: auth, table: table)
            LiveRoutes.register(on: router, auth: auth, table: table)
            DashboardRoutes.register(on: router)
            ConsoleRoutes.register(
                on: router, auth: auth, agent: agent, operations: operations, sources: console)
            if let agent { ChatRoutes.register(on: router, auth: auth, agent: agent, table: table) }
            if let operations { OperationRoutes.register(on: router, auth: auth, operations: operations, table: table) }
        }
        webhooks?.register(on: router)
        telegram?.register(on: router)
        // An /api/ route added any other way than through its access rule's group would answer without a guard.
        for route in router.routes where route.path.description == "/api" || route.path.description.hasPrefix("/api/") {
            precondition(
                table.access(route.method.rawValue, route.path.description) != nil,
                "\(route.method) \(route.path) has no access rule: declare it on an AccessRoutes group")
        }
        router.add(
            middleware: MethodNotAllowedMiddleware(
                routes: router.routes.map { ($0.path, $0.method) },
                guardOf: { path in
                    guard let auth, let access = table.access(path: path.description) else { return nil }
                    return OwnerAccessMiddleware(auth, access)
                }))
        return router
    }
}
