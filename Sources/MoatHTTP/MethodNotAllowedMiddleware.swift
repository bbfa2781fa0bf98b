public import HTTPTypes
public import Hummingbird

/// Answers 405 with `Allow` when the path is a route but the method is not one of its methods (TRACE,
/// PUT on a POST-only route, …), instead of Hummingbird's 404 for both cases (RFC 9110 §15.5.6).
///
/// Added to the router after every route, so it wraps only the not-found path: a request that matched
/// a route never reaches it, and it runs after the Host guard and owner authentication like any route.
public struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Each route's path and the methods registered for it.
    let routes: [(path: RouterPath, methods: [HTTPRequest.Method])]

    public init(routes: [(path: RouterPath, method: HTTPRequest.Method)]) {
        var table: [(path: RouterPath, methods: [HTTPRequest.Method])] = []
        for route in routes {
            if let index = table.firstIndex(where: { $0.path == route.path }) {
                table[index].methods.append(route.method)
            } else {
                table.append((route.path, [route.method]))
            }
        }
        self.routes = table
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        let allowed = routes.filter { Self.matches($0.path, path) }.flatMap(\.methods)
        guard !allowed.isEmpty, !allowed.contains(request.method) else {
            return try await next(request, context)
        }
        let allow = Set(allowed.map(\.rawValue)).sorted().joined(separator: ", ")
        let message = "\(request.method.rawValue) is not allowed here; use \(allow)"
        var response =
            path.hasPrefix("/api/")
            ? APIError.response(status: .methodNotAllowed, message)
            : .plainText(status: .methodNotAllowed, "405 Method Not Allowed: \(message)\n")
        response.headers[.allow] = allow
        return response
    }

    /// Whether `path` is matched by the route path `route` (captures and wildcards match one segment,
    /// `**` the rest), as the router's trie would match it.
    static func matches(_ route: RouterPath, _ path: String) -> Bool {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        var index = 0
        for element in route.components {
            if element.description == "**" { return true }
            guard index < segments.count, element ~= segments[index] else { return false }
            index += 1
        }
        return index == segments.count
    }
}
