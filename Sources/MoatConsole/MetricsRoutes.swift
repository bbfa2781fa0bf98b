import HTTPTypes
public import Hummingbird
import MoatAuth
public import MoatCore
public import MoatHTTP
import NIOCore

/// The gateway's metrics as the routes see them: what counts requests, and what renders a scrape.
public struct GatewayMetrics: Sendable {
    /// Where requests are counted.
    public let metrics: MoatMetrics
    /// The Prometheus text exposition of everything recorded so far (gauges refreshed first).
    public let scrape: @Sendable () async -> String

    public init(metrics: MoatMetrics, scrape: @escaping @Sendable () async -> String) {
        self.metrics = metrics
        self.scrape = scrape
    }
}

/// `GET /api/metrics`: the Prometheus text format, for the owner only (an API token, or a session).
enum MetricsRoutes {
    static func register(
        on router: Router<GatewayRequestContext>, auth: GatewayAuth, table: RouteTable, metrics: GatewayMetrics
    ) {
        AccessRoutes(router, "/api", .owner(.read), auth: auth, table: table).get("metrics") { _, _ -> Response in
            let text = await metrics.scrape()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
