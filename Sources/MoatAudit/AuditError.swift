/// An error from the audit log. Messages never contain a redacted value or a secret.
public struct AuditError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case appendFailed, invalidEvent, invalidCheckpoint, storage
        }
        fileprivate let value: Value

        /// The entry could not be committed; whatever was about to happen must not happen.
        public static let appendFailed = Code(value: .appendFailed)
        /// The event is malformed (bad action name, metadata too large).
        public static let invalidEvent = Code(value: .invalidEvent)
        /// A checkpoint note could not be parsed or its signature does not verify.
        public static let invalidCheckpoint = Code(value: .invalidCheckpoint)
        /// Reading the log failed.
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
