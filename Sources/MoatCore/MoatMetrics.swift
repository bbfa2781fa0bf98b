public import CoreMetrics
import Foundation

/// The gateway's metrics, recorded into the swift-metrics factory it is given (never the process-wide
/// `MetricsSystem`): `moat serve` passes the factory it bootstrapped once per process; tests running many
/// servers in one process give each its own, so their counts never mix.
///
/// Every dimension value comes from a closed set (a status class, a decision, a channel kind, a
/// provider's config name cut to a safe alphabet) or from a route *template*: never a message text, a
/// user or sender id, a secret, or a path with an id in it. Docs/Operations.md lists each metric.
public final class MoatMetrics: Sendable {
    private let factory: any MetricsFactory

    /// Metrics recorded into `factory` (a `PrometheusMetricsFactory` in the server).
    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// Metrics that go nowhere: for the CLI's own processes and tests that do not look at them.
    public static let none = MoatMetrics(factory: NOOPMetricsHandler.instance)

    // MARK: HTTP

    /// One HTTP request answered: `route` is the router's template (`/api/approvals/{id}`), or
    /// `unmatched` when no route matched.
    public func request(route: String, method: String, status: Int) {
        let methodLabel =
            ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].contains(method) ? method : "other"
        let statusClass = (100...599).contains(status) ? "\(status / 100)xx" : "other"
        Counter(
            label: "moat_http_requests_total",
            dimensions: [("route", Self.routeLabel(route)), ("method", methodLabel), ("status", statusClass)],
            factory: factory
        ).increment()
    }

    /// A route template as a label: only the template's own characters; anything else is `other`.
    static func routeLabel(_ route: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-.{}:*")
        guard route.count <= 80, route.allSatisfy(allowed.contains) else { return "other" }
        return route.isEmpty ? "unmatched" : route
    }

    // MARK: Providers

    /// One model round to the provider configured as `provider`: how long it took and the tokens it
    /// reported (nil when the server reported none), or that it failed.
    public func providerRound(_ provider: String, seconds: Double, input: Int?, output: Int?, failed: Bool) {
        let name = Self.nameLabel(provider)
        Timer(label: "moat_provider_round_seconds", dimensions: [("provider", name)], factory: factory)
            .recordNanoseconds(Int64(max(0, seconds) * 1_000_000_000))
        if failed {
            Counter(label: "moat_provider_failures_total", dimensions: [("provider", name)], factory: factory)
                .increment()
        }
        if let input {
            Counter(
                label: "moat_provider_tokens_total", dimensions: [("provider", name), ("direction", "input")],
                factory: factory
            ).increment(by: max(0, input))
        }
        if let output {
            Counter(
                label: "moat_provider_tokens_total", dimensions: [("provider", name), ("direction", "output")],
                factory: factory
            ).increment(by: max(0, output))
        }
    }

    /// A config name (provider) as a label: lower-case letters, digits, `_` and `-`, at most 32.
    static func nameLabel(_ name: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_-")
        guard (1...32).contains(name.count), name.allSatisfy(allowed.contains) else { return "other" }
        return name
    }

    // MARK: From the audit trail

    /// One audit entry committed, `seconds` after its append was asked for. The pipeline's counters
    /// (messages per channel, tool calls by decision, sandbox launches, vault unlocks, config reloads)
    /// are counted here, from the step's durable record, so they never disagree with the audit log.
    /// Only closed-set values are read from `metadata`.
    public func audited(action: String, outcome: String, metadata: [String: String], seconds: Double) {
        Timer(label: "moat_audit_append_seconds", dimensions: [], factory: factory)
            .recordNanoseconds(Int64(max(0, seconds) * 1_000_000_000))
        switch action {
        case "agent.message":
            let kind = metadata["channel"].map { String($0.prefix { $0 != ":" }) } ?? ""
            let known = ["owner", "webhook", "telegram", "matrix", "webchat"]
            count("moat_messages_total", ("channel", known.contains(kind) ? kind : "other"))
        case "agent.tool.call":
            let decision: String =
                switch metadata["decision"] {
                case "refused": "refused"
                case "described": "described"
                case "pending": "held"
                default: "other"
                }
            count("moat_tool_calls_total", ("decision", decision))
        case "agent.tool.run":
            count("moat_tool_calls_total", ("decision", "ran"))
        case "agent.tool.invalid":
            count("moat_tool_calls_total", ("decision", "invalid"))
        case "agent.tool.result" where metadata["tool"] == "shell":
            count("moat_sandbox_launches_total", ("result", outcome == "success" ? "ok" : "failed"))
        case "vault.unlock":
            let source = metadata["source"] ?? ""
            let known = ["seal", "password", "pin", "created", "prompt", "file", "stdin"]
            count("moat_vault_unlocks_total", ("source", known.contains(source) ? source : "other"))
        case "config.reload":
            count("moat_config_reloads_total", ("result", outcome == "success" ? "applied" : "refused"))
        default:
            break
        }
    }

    private func count(_ label: String, _ dimension: (String, String)) {
        Counter(label: label, dimensions: [dimension], factory: factory).increment()
    }

    // MARK: Gauges read at scrape time

    /// Pending approvals, as counted when the metrics are read.
    public func approvalsPending(_ count: Int) {
        Gauge(label: "moat_approvals_pending", dimensions: [], factory: factory).record(count)
    }
}
