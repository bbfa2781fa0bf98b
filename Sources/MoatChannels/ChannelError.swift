public import MoatCore

/// An error from a channel: a delivery that failed its checks, or a channel that cannot run. Messages
/// say what to fix and never hold a key, a signature's expected value or a message's text.
public struct ChannelError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case invalidInput, unauthorized, notFound, configuration, busy, deliveryFailed
        }
        fileprivate let value: Value

        /// The delivery is not in the channel's format.
        public static let invalidInput = Code(value: .invalidInput)
        /// The delivery's signature or clock window failed.
        public static let unauthorized = Code(value: .unauthorized)
        /// No such webhook.
        public static let notFound = Code(value: .notFound)
        /// The channel's configuration is unusable (its key is missing from the vault).
        public static let configuration = Code(value: .configuration)
        /// Too many callback deliveries are waiting; the sender should try again later.
        public static let busy = Code(value: .busy)
        /// A callback could not be delivered (after its retries).
        public static let deliveryFailed = Code(value: .deliveryFailed)

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

extension ChannelError: ClassifiedError {
    public var kind: FailureKind {
        switch code {
        case .invalidInput: .invalidInput
        case .unauthorized: .unauthorized
        case .notFound: .notFound
        case .busy: .rateLimited
        case .deliveryFailed: .failure
        default: .configuration
        }
    }
}
