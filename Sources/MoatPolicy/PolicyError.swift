import MoatCore

/// An error from a policy decision or its tables. Messages never hold a secret or a raw argument value.
public struct PolicyError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is, for callers that branch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case invalidInput, evidenceMissing, notFound, alreadyDecided, expired, requestMismatch, notApproved
            case alreadyUsed, conflict, storage
        }
        fileprivate let value: Value

        /// An argument is malformed (empty reason, unknown domain, bad URL).
        public static let invalidInput = Code(value: .invalidInput)
        /// Raising trust to 3 or 4 needs evidence or `--force` with a reason.
        public static let evidenceMissing = Code(value: .evidenceMissing)
        /// No (valid) row with that id: it never existed or its MAC does not verify.
        public static let notFound = Code(value: .notFound)
        /// The approval was already approved or denied.
        public static let alreadyDecided = Code(value: .alreadyDecided)
        /// The approval expired before it was decided or used.
        public static let expired = Code(value: .expired)
        /// The request presented does not hash to the one that was approved.
        public static let requestMismatch = Code(value: .requestMismatch)
        /// The approval was denied or not decided yet.
        public static let notApproved = Code(value: .notApproved)
        /// The approval was already used once.
        public static let alreadyUsed = Code(value: .alreadyUsed)
        /// Another change landed first; read the state again.
        public static let conflict = Code(value: .conflict)
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

    /// Text from outside (a reason, a URL) cut short and stripped of control characters before it is
    /// echoed in a message, so it cannot forge terminal output.
    static func printable(_ text: String, limit: Int = 80) -> String {
        PrintableText.excerpt(text, limit: limit)
    }
}
