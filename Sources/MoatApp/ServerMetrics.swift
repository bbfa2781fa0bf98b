import CoreMetrics
public import MoatCore
public import MoatPolicy
import MoatProviders
import Prometheus

/// One server's metrics: a Prometheus registry, the ``MoatMetrics`` that records into it, and the
/// text exposition `GET /api/metrics` and `moat metrics` serve.
///
/// `moat serve` uses ``processWide`` (the process's one `MetricsSystem` bootstrap, done on first use);
/// every other ``GatewayServer`` (the in-process tests run many in one process) gets its own registry,
/// so one server's counts never show in another's scrape and nothing is bootstrapped twice.
public struct ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    public let metrics: MoatMetrics

    /// Metrics of their own, not registered with `MetricsSystem`.
    public init() {
        registry = PrometheusCollectorRegistry()
        metrics = MoatMetrics(factory: Self.factory(registry))
    }

    private init(registry: PrometheusCollectorRegistry, metrics: MoatMetrics) {
        self.registry = registry
        self.metrics = metrics
    }

    /// The process's metrics: `MetricsSystem` is bootstrapped with their factory the first time this is
    /// read (a `static let` runs once), so libraries that record through the global system land in the
    /// same registry.
    public static let processWide: ServerMetrics = {
        let registry = PrometheusCollectorRegistry()
        let made = Self.factory(registry)
        MetricsSystem.bootstrap(made)
        return ServerMetrics(registry: registry, metrics: MoatMetrics(factory: made))
    }()

    private static func factory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        // An audit append is a commit with an fsync: sub-millisecond to tens of milliseconds.
        factory.durationHistogramBuckets["moat_audit_append_seconds"] = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(500),
        ]
        factory.durationHistogramBuckets["moat_provider_round_seconds"] = [
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5),
            .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
        ]
        return factory
    }

    /// The Prometheus text exposition, after the gauges read at scrape time are refreshed.
    public func scrape(policy: PolicyEngine? = nil) async -> String {
        if let policy, let pending = try? await policy.approvals(pendingOnly: true, limit: 10_000) {
            metrics.approvalsPending(pending.count)
        }
        return registry.emitToString()
    }
}

/// A provider whose rounds are timed and whose reported tokens are counted, by its config name.
struct MeteredProvider: ModelProvider {
    let wrapped: any ModelProvider
    let metrics: MoatMetrics

    var name: String { wrapped.name }
    var contextTokens: Int? { wrapped.contextTokens }

    func complete(
        _ request: ModelRequest, onText: @escaping @Sendable (String) async -> Void
    ) async throws(ProviderError) -> ModelReply {
        let start = ContinuousClock.now
        do {
            let reply = try await wrapped.complete(request, onText: onText)
            metrics.providerRound(
                name, seconds: Self.seconds(since: start), input: reply.usage?.input, output: reply.usage?.output,
                failed: false)
            return reply
        } catch {
            metrics.providerRound(name, seconds: Self.seconds(since: start), input: nil, output: nil, failed: true)
            throw error
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
