/// The response to one HTTP request, as a transport returns it.
public struct FetchResponse: Sendable {
    public let status: Int
    /// Header fields in order; names compared case-insensitively.
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of header `name`.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// Sends one request to a checked URL and never follows redirects itself.
///
/// An implementation must open its connection to ``CheckedURL/address`` (not resolve the name again),
/// send ``FetchURL/hostHeader`` as `Host` and use the name for TLS SNI and certificate checks. The real
/// one is `PinnedHTTPTransport` (over SwiftNIO); tests may provide fakes.
public protocol PinnedTransport: Sendable {
    /// Sends `method` with `headers` and, when not empty, `body` (with its `Content-Length`).
    func send(
        _ target: CheckedURL,
        method: String,
        headers: [(name: String, value: String)],
        body: [UInt8]
    ) async throws -> FetchResponse
}

/// Fetches a URL the model chose: every hop through the SSRF guard, redirects followed by hand.
public struct GuardedFetcher: Sendable {
    /// At most this many redirects are followed.
    public static let maximumRedirects = 5

    public let guardrail: URLGuard
    public let transport: any PinnedTransport

    public init(guardrail: URLGuard, transport: any PinnedTransport) {
        self.guardrail = guardrail
        self.transport = transport
    }

    /// The final response and the URLs visited, first to last.
    public struct Outcome: Sendable {
        public let response: FetchResponse
        public let visited: [CheckedURL]
    }

    /// Fetches `url`, re-checking each redirect target.
    ///
    /// - Throws: ``NetError`` `.urlRefused` naming the hop that was refused, `.fetchFailed` after
    ///   more than ``maximumRedirects`` redirects or when the transport fails.
    public func fetch(
        _ url: String,
        method: String = "GET",
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = []
    ) async throws(NetError) -> Outcome {
        var next = url
        var method = method
        var headers = headers
        var body = body
        var visited: [CheckedURL] = []
        for hop in 0...Self.maximumRedirects {
            let checked: CheckedURL
            switch await guardrail.check(next) {
            case .allow(let allowed): checked = allowed
            case .deny(let reason):
                // Only the scheme and host: a path or query may hold a value the caller put there.
                let target = (try? FetchURL.parse(next).get()).map { NetError.printable($0.origin) } ?? "not a URL"
                let which = hop == 0 ? "the URL" : "redirect \(hop) (\(target))"
                throw NetError(.urlRefused, "\(which) was refused: \(reason)")
            }
            if let previous = visited.last,
                previous.url.hostHeader != checked.url.hostHeader
                    || previous.url.scheme != checked.url.scheme
            {
                // Credentials meant for one origin never follow a redirect to another.
                headers.removeAll { ["authorization", "cookie", "proxy-authorization"].contains($0.name.lowercased()) }
            }
            visited.append(checked)
            let response: FetchResponse
            do {
                response = try await transport.send(checked, method: method, headers: headers, body: body)
            } catch let error as NetError {
                throw NetError(.fetchFailed, "fetching from \(checked.url.origin) failed: \(error.message)")
            } catch {
                throw NetError(.fetchFailed, "fetching from \(checked.url.origin) failed")
            }
            guard [301, 302, 303, 307, 308].contains(response.status), let location = response.header("location")
            else { return Outcome(response: response, visited: visited) }
            if response.status == 303 || (method == "POST" && [301, 302].contains(response.status)) {
                method = "GET"
                body = []
            }
            next = checked.url.resolve(location)
        }
        throw NetError(.fetchFailed, "more than \(Self.maximumRedirects) redirects; the fetch was stopped")
    }
}
