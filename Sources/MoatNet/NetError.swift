import MoatCore

/// An error from the outbound HTTP side: the SSRF guard refused a URL, or a guarded fetch failed.
/// Messages name the host and the limit, never a header value or a body.
public struct NetError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is, for callers that branch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case urlRefused, fetchFailed, connectFailed, timedOut
        }
        fileprivate let value: Value

        /// The SSRF guard refused a URL (scheme, host, address class, port).
        public static let urlRefused = Code(value: .urlRefused)
        /// A guarded fetch failed (transport error, too many redirects, a limit reached).
        public static let fetchFailed = Code(value: .fetchFailed)
        /// No connection could be opened (nothing listening, unreachable, the connect timeout passed).
        /// Reported by ``PinnedHTTPTransport/stream(_:method:headers:body:limits:_:)``.
        public static let connectFailed = Code(value: .connectFailed)
        /// The server went silent: no first byte, a gap between chunks, or the whole exchange took longer
        /// than its limit. Reported by ``PinnedHTTPTransport/stream(_:method:headers:body:limits:_:)``.
        public static let timedOut = Code(value: .timedOut)

        public var description: String { "\(value)" }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Text from outside (a URL, a host) cut short and stripped of control characters before it is
    /// echoed in a message, so it cannot forge terminal output.
    static func printable(_ text: String, limit: Int = 80) -> String {
        PrintableText.excerpt(text, limit: limit)
    }
}
