import HTTPTypes
public import Hummingbird
public import MoatHTTP
import NIOCore

/// The owner's pages before login (setup, login) and the console's two assets. The logged-in pages
/// are ``ConsoleRoutes``.
///
/// The setup and login pages hold no data and no secret. The Content-Security-Policy forbids inline
/// script and style, so the script and the style sheet are their own files; the setup token travels in
/// the link's fragment (`/setup#<token>`), which browsers never send to a server or put in a Referer,
/// and the page removes it from the address bar at once.
enum DashboardRoutes {
    static func register(on router: Router<GatewayRequestContext>) {
        router.get("/login") { _, _ -> Response in
            ConsoleRoutes.html(ConsoleRoutes.layout("login", "Log in", DashboardPages.login, owner: nil))
        }
        router.get("/setup") { _, _ -> Response in
            ConsoleRoutes.html(ConsoleRoutes.layout("setup", "Set up", DashboardPages.setup, owner: nil))
        }
        for asset in [ConsoleAssets.style, ConsoleAssets.script] {
            router.get(RouterPath(asset.path)) { _, _ -> Response in asset.response }
        }
        // No icon: an empty answer instead of a 404 in every browser console.
        router.get("/favicon.ico") { _, _ -> Response in Response(status: .noContent) }
    }
}
