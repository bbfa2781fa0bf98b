public import Foundation
public import MoatCore

/// An error from a model provider. Messages name the provider and its server's origin and say how to
/// fix the problem ("the model server at http://127.0.0.1:11434 is not running: start it with
/// `ollama serve`"); they never hold an API key, a request body or model output.
public struct ProviderError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case unreachable, timedOut, rejected, rateLimited, badResponse, configuration
        }
        fileprivate let value: Value

        /// No connection to the model server (not running, wrong port).
        public static let unreachable = Code(value: .unreachable)
        /// The server did not answer, or stopped answering, within the time limit.
        public static let timedOut = Code(value: .timedOut)
        /// The server refused the request (4xx other than 429: a wrong key, an unknown model).
        public static let rejected = Code(value: .rejected)
        /// The server said to slow down (429).
        public static let rateLimited = Code(value: .rateLimited)
        /// The answer did not follow the wire format (bad JSON, a cut stream, a 5xx).
        public static let badResponse = Code(value: .badResponse)
        /// The provider's configuration is unusable (a missing key in the vault, a bad URL).
        public static let configuration = Code(value: .configuration)

        public var description: String { "\(value)" }
    }

    public let code: Code
    public let message: String
    /// Whether the same request may be sent again: the server failed in a way that passes (429, 5xx,
    /// 529, a connection refused or reset) *before* any byte of its answer was read, so nothing of the
    /// answer reached the agent. Set by the provider; ``ResilientProvider`` decides whether to retry.
    public internal(set) var retryable = false
    /// When the server said to try again (`retry-after-ms`, `Retry-After` in seconds or as an HTTP date).
    public internal(set) var retryAfter: RetryAfter?
    /// Whether this failure says the server is not answering (no connection, a timeout, a 5xx or 529),
    /// as opposed to answering with a refusal: these count toward the provider's circuit breaker.
    public internal(set) var serverDown = false

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// This error, marked as safe to send again (see ``retryable``).
    func markedRetryable(after: RetryAfter? = nil) -> ProviderError {
        var copy = self
        copy.retryable = true
        copy.retryAfter = after
        return copy
    }

    /// This error, counted toward the circuit breaker (see ``serverDown``).
    func countsAsDown() -> ProviderError {
        var copy = self
        copy.serverDown = true
        return copy
    }

    public var description: String { message }
}

extension ProviderError: ClassifiedError {
    public var kind: FailureKind {
        switch code {
        case .rateLimited: .rateLimited
        case .configuration: .configuration
        default: .failure
        }
    }
}

/// A server's "try again later": a delay (`retry-after-ms`, `Retry-After: 20`) or a moment
/// (`Retry-After: Sun, 06 Dec 2026 14:05:00 GMT`).
public enum RetryAfter: Sendable, Hashable {
    case delay(Duration)
    case date(Date)

    /// Reads the headers of an answer: `retry-after-ms` first (milliseconds, may have a fraction), then
    /// `Retry-After` (whole seconds, or an IMF-fixdate as HTTP dates are written). Nil when neither
    /// holds something usable (negative, not a number, a date in another format).
    static func parse(milliseconds: String?, header: String?) -> RetryAfter? {
        if let text = milliseconds?.trimmingCharacters(in: .whitespaces), let value = Double(text),
            value.isFinite, value >= 0, value <= 86_400_000
        {
            return .delay(.milliseconds(Int64(value.rounded(.up))))
        }
        guard let text = header?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        if text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            guard let seconds = Int64(text), seconds <= 86_400 * 7 else { return nil }
            return .delay(.seconds(seconds))
        }
        // `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 section 5.6.7, the form servers must send); a
        // formatter per call, as they are not safe to share across threads.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: text).map(RetryAfter.date)
    }

    /// How long to wait from `now`; a moment in the past is no wait.
    func wait(from now: Date) -> Duration {
        switch self {
        case .delay(let delay): return max(.zero, delay)
        case .date(let date):
            let seconds = date.timeIntervalSince(now)
            return seconds > 0 ? .milliseconds(Int64((seconds * 1000).rounded(.up))) : .zero
        }
    }
}
