public import Hummingbird

/// Builds the HTTP side of the gateway: the router, its middleware and routes.
///
/// Kept separate from ``GatewayServer`` so tests drive the exact same router through
/// HummingbirdTesting without a socket.
public enum GatewayApplication {
    /// The router with every middleware in its order: request log first (so refusals are logged too),
    /// then the Host/Origin guard, then the routes.
    public static func makeRouter(hostGuard: HostGuard) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: HostGuardMiddleware(hostGuard))
        router.get("/healthz") { _, _ -> Response in
            // Deliberately tiny: no version, host name or uptime for a scanner to fingerprint.
            .plainText(status: .ok, "ok\n")
        }
        return router
    }
}
