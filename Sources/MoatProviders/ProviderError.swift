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

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
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
