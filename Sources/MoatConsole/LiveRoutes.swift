import Foundation
import HTTPTypes
public import Hummingbird
import MoatAudit
import MoatAuth
public import MoatHTTP
import NIOCore
import ServiceLifecycle

/// The audit views: a page of recent entries, and a live event stream for open dashboards.
///
/// `/api/events` is a server-sent event stream authenticated only by a short-lived JWT
/// (`POST /api/auth/live-token`, purpose `events`) in `Authorization: Bearer` — never by an API token,
/// and never from a query string. The stream ends when the JWT expires (at most 5 minutes: the client
/// fetches a new one and reconnects) or when "revoke everything" bumps the token version.
enum LiveRoutes {
    static func register(on router: Router<GatewayRequestContext>, auth: GatewayAuth, table: RouteTable) {
        AccessRoutes(router, "/api", .owner(.read), auth: auth, table: table).get("audit") { request, _ -> Response in
            // Present means it must be a number: `limit=null` or `limit=` is a 400, not the default.
            let text = request.uri.queryParameters.get("limit")
            let limit = text.map { $0.allSatisfy { $0.isASCII && $0.isNumber } ? Int($0) ?? 0 : 0 } ?? 50
            guard (1...500).contains(limit) else {
                return APIError.response(status: .badRequest, "limit must be a number from 1 to 500")
            }
            do {
                let entries = try await AuditReader.tail(of: auth.database, count: limit)
                return APIError.json(
                    status: .ok,
                    encoding: OwnerAPI.AuditEntries(entries: entries.reversed().map(OwnerAPI.AuditEntryView.init)))
            } catch {
                return APIError.response(status: .internalServerError, "could not read the audit log")
            }
        }
        AccessRoutes(router, "/api", .liveToken, auth: auth, table: table).get("events") {
            request, context -> Response in
            guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
                var response = APIError.response(
                    status: .unauthorized, "send a live token (POST /api/auth/live-token) as Authorization: Bearer")
                response.headers[.wwwAuthenticate] = "Bearer realm=\"moat\""
                return response
            }
            let claims: LiveTokenClaims
            do {
                let version = try await auth.authority.tokenVersion()
                claims = try await auth.liveTokens.verify(
                    String(header.dropFirst(7)), purpose: .events, tokenVersion: version)
            } catch let error as AuthError {
                return APIError.response(AuthError(.unauthorized, "invalid live token: \(error.message)"))
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    try await stream(to: &writer, auth: auth, claims: claims)
                    try await writer.finish(nil)
                })
        }
    }

    private static func stream(
        to writer: inout any ResponseBodyWriter, auth: GatewayAuth, claims: LiveTokenClaims
    ) async throws {
        var last = (try? await AuditReader.tail(of: auth.database, count: 1).last?.sequence) ?? 0
        try await writer.write(ByteBuffer(string: "retry: 5000\nevent: ready\ndata: {}\n\n"))
        var tick = 0
        // Ends at expiry, on cancellation, and when the server shuts down (so SIGTERM never waits for
        // an open dashboard).
        while Date() < claims.expires, !Task.isCancelled, !Task.isShuttingDownGracefully {
            try await Task.sleep(for: .seconds(1))
            tick += 1
            guard (try? await auth.authority.tokenVersion()) == claims.tokenVersion else { break }
            var text = ""
            for entry in try await AuditReader.entries(of: auth.database, after: last) {
                last = entry.sequence
                let data = APIError.jsonData(OwnerAPI.AuditEntryView(entry))
                text += "event: audit\ndata: " + String(decoding: data, as: UTF8.self) + "\n\n"
            }
            if text.isEmpty && tick % 15 == 0 { text = ": keep-alive\n\n" }
            if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
        }
        try await writer.write(ByteBuffer(string: "event: expired\ndata: {}\n\n"))
    }
}
