import MoatApp
import MoatCore
import Testing

/// The metrics' isolation and their labels, without a socket.
@Suite struct ServerMetricsTests {
    @Test("two servers' metrics in one process never mix: each scrape shows only its own counts")
    func isolated() async {
        let first = ServerMetrics()
        let second = ServerMetrics()
        first.metrics.request(route: "/api/chat", method: "POST", status: 200)
        first.metrics.request(route: "/api/chat", method: "POST", status: 200)
        second.metrics.request(route: "/api/audit", method: "GET", status: 401)
        let one = await first.scrape()
        let two = await second.scrape()
        #expect(one.contains(#"moat_http_requests_total{route="/api/chat",method="POST",status="2xx"} 2"#), "\(one)")
        #expect(!one.contains("/api/audit"))
        #expect(two.contains(#"moat_http_requests_total{route="/api/audit",method="GET",status="4xx"} 1"#), "\(two)")
        #expect(!two.contains("/api/chat"))
    }

    @Test(
        "labels hold only templates and closed sets: a raw path, a quote, a webhook's name, an unknown channel or a hostile provider name never reach the text"
    )
    func closedLabels() async {
        let server = ServerMetrics()
        let metrics = server.metrics
        metrics.request(route: "/api/approvals/ap_123?token=abc", method: "GET", status: 200)
        metrics.request(route: "/x\"} 9\nmoat_fake 1", method: "BREW", status: 999)
        metrics.audited(action: "agent.message", outcome: "success", metadata: ["channel": "webhook:bank"], seconds: 0)
        metrics.audited(action: "agent.message", outcome: "success", metadata: ["channel": "alice@x"], seconds: 0)
        metrics.providerRound("Local\"", seconds: 0.2, input: 3, output: 4, failed: false)
        metrics.audited(
            action: "agent.tool.call", outcome: "success", metadata: ["decision": "pending"], seconds: 0.001)
        let text = await server.scrape()
        #expect(text.contains(#"moat_http_requests_total{route="other",method="GET",status="2xx"} 1"#), "\(text)")
        #expect(text.contains(#"moat_http_requests_total{route="other",method="other",status="other"} 1"#))
        #expect(text.contains(#"moat_messages_total{channel="webhook"} 1"#))
        #expect(text.contains(#"moat_messages_total{channel="other"} 1"#))
        #expect(text.contains(#"moat_provider_tokens_total{provider="other",direction="output"} 4"#))
        #expect(text.contains(#"moat_tool_calls_total{decision="held"} 1"#))
        for leaked in ["ap_123", "token=abc", "moat_fake", "bank", "alice", "Local"] {
            #expect(!text.contains(leaked), "\(leaked) in the scrape")
        }
    }
}
