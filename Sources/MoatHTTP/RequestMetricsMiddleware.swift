public import Hummingbird
public import MoatCore

/// Counts each request by its route *template* (`/api/approvals/{id}`, never the path with its ids),
/// method and status class (``MoatMetrics/request(route:method:status:)``).
public struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: MoatMetrics

    public init(_ metrics: MoatMetrics) {
        self.metrics = metrics
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            let response = try await next(request, context)
            record(request, context, Int(response.status.code))
            return response
        } catch let error as any HTTPResponseError {
            record(request, context, Int(error.status.code))
            throw error
        } catch {
            record(request, context, 500)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, _ status: Int) {
        // The router sets the template only when a route matched; a guard's refusal or a 404 has none.
        metrics.request(route: context.endpointPath ?? "", method: request.method.rawValue, status: status)
    }
}
