public import MoatCore

/// An error from the agent pipeline. Messages say what happened and what to do; they never hold message
/// text, tool arguments, tool output or a secret value.
public struct AgentError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case unknownSender, rateLimited, duplicate, busy, invalidInput, notFound, refused, provider, storage
        }
        fileprivate let value: Value

        /// The sender is neither the owner nor a contact the owner added; nothing reached the model.
        public static let unknownSender = Code(value: .unknownSender)
        /// The sender wrote too often on this channel.
        public static let rateLimited = Code(value: .rateLimited)
        /// A message with this idempotency key was already handled.
        public static let duplicate = Code(value: .duplicate)
        /// A turn is already running in this conversation.
        public static let busy = Code(value: .busy)
        /// The message is malformed (empty, too long, a conversation id another principal owns).
        public static let invalidInput = Code(value: .invalidInput)
        /// No (valid) pending tool call with that approval id.
        public static let notFound = Code(value: .notFound)
        /// A guard refused: the approval does not match the stored call, or the audit log could not
        /// record the step.
        public static let refused = Code(value: .refused)
        /// The model provider failed (its message says how to fix it).
        public static let provider = Code(value: .provider)
        /// Reading or writing `moat.db` failed.
        public static let storage = Code(value: .storage)

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

extension AgentError: ClassifiedError {
    public var kind: FailureKind {
        switch code {
        case .unknownSender, .refused: .forbidden
        case .rateLimited: .rateLimited
        case .duplicate, .busy: .conflict
        case .invalidInput: .invalidInput
        case .notFound: .notFound
        default: .failure
        }
    }
}
