import HTTPTypes
public import Hummingbird
public import MoatHTTP
import NIOCore

/// The owner's browser pages: setup, login and the dashboard, plus their one script and style sheet.
///
/// The pages hold no data and no secret: everything comes from the `/api/` routes once the owner is
/// logged in. The Content-Security-Policy forbids inline script, so the script is its own file; the
/// setup token travels in the link's fragment (`/setup#<token>`), which browsers never send to a
/// server or put in a Referer, and the page removes it from the address bar at once.
enum DashboardRoutes {
    static func register(on router: Router<GatewayRequestContext>) {
        router.get("/") { _, _ -> Response in html(page("dashboard", "Moat", DashboardPages.dashboard)) }
        router.get("/login") { _, _ -> Response in html(page("login", "Moat — log in", DashboardPages.login)) }
        router.get("/setup") { _, _ -> Response in html(page("setup", "Moat — set up", DashboardPages.setup)) }
        router.get("/assets/moat.js") { _, _ -> Response in
            asset(DashboardPages.script, type: "text/javascript; charset=utf-8")
        }
        // No icon: an empty answer instead of a 404 in every browser console.
        router.get("/favicon.ico") { _, _ -> Response in Response(status: .noContent) }
        router.get("/assets/moat.css") { _, _ -> Response in
            asset(DashboardPages.style, type: "text/css; charset=utf-8")
        }
    }

    static func page(_ name: String, _ title: String, _ body: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(title)</title>
        <link rel="stylesheet" href="/assets/moat.css">
        <script src="/assets/moat.js" defer></script>
        </head>
        <body data-page="\(name)">
        <main>
        <h1>Moat</h1>
        <p id="message" role="status"></p>
        \(body)
        </main>
        </body>
        </html>
        """
    }

    static func html(_ text: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
