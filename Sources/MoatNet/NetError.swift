import MoatCore

/// An error from the outbound HTTP side: the SSRF guard refused a URL, or a guarded fetch failed.
/// Messages name the host and the limit, never a header value or a body.
public struct NetError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is, for callers that branch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case urlRefused, fetchFailed
        }
        fileprivate let value: Value

        /// The SSRF guard refused a URL (scheme, host, address class, port).
        public static let urlRefused = Code(value: .urlRefused)
        /// A guarded fetch failed (transport error, too many redirects, a limit reached).
        public static let fetchFailed = Code(value: .fetchFailed)

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
