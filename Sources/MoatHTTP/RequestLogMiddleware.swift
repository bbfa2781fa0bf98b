public import Hummingbird
import Logging
import MoatCore

/// Logs one line per request: method, path, status and duration.
///
/// Deliberately no headers (cookies, `Authorization`), no body and no query string (tokens end up in
/// query strings by mistake): nothing a request carries can reach the log except its path.
public struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            log(request, context: context, status: Int(response.status.code), start: start)
            return response
        } catch let error as any HTTPResponseError {
            log(request, context: context, status: Int(error.status.code), start: start)
            throw error
        } catch {
            log(request, context: context, status: 500, start: start)
            throw error
        }
    }

    private func log(_ request: Request, context: Context, status: Int, start: ContinuousClock.Instant) {
        let duration = ContinuousClock.now - start
        let elapsed = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        context.logger.info(
            "request",
            metadata: [
                "method": "\(request.method.rawValue)",
                "path": "\(Self.loggablePath(request.uri.path))",
                "status": "\(status)",
                "duration_ms": "\((elapsed * 100).rounded() / 100)",
            ]
        )
    }

    /// The path, cut to 200 characters, with control characters removed.
    static func loggablePath(_ path: String) -> String {
        PrintableText.excerpt(path, limit: 200)
    }
}
