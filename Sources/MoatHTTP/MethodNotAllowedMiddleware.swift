public import HTTPTypes
public import Hummingbird

/// Answers 405 with `Allow` when the path is a route but the method is not one of its methods (TRACE,
/// PUT on a POST-only route, …), instead of Hummingbird's 404 for both cases (RFC 9110 §15.5.6).
///
/// Added to the router after every route, so it wraps only the not-found path: a request that matched
/// a route never reaches it. The 405 is answered through the access guard of the path's routes
/// (`guardOf`), so without credentials a protected path is 401, and its methods are not told.
public struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    public typealias Guard = any MiddlewareProtocol<Request, Response, Context>
    /// Each route's path and the methods registered for it.
    let routes: [(path: RouterPath, methods: [HTTPRequest.Method])]
    /// The access guard of the routes at a path (as declared), if they have one.
    let guardOf: @Sendable (RouterPath) -> Guard?

    public init(
        routes: [(path: RouterPath, method: HTTPRequest.Method)],
        guardOf: @escaping @Sendable (RouterPath) -> Guard? = { _ in nil }
    ) {
        self.guardOf = guardOf
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
        let matching = routes.filter { Self.matches($0.path, path) }
        let allowed = matching.flatMap(\.methods)
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
        if let access = matching.first.flatMap({ guardOf($0.path) }) {
            return try await access.handle(request, context: context) { _, _ in response }
        }
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
