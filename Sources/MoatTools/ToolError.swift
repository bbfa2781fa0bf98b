public import MoatCore

/// An error from a tool. Its message goes back to the model (and to the owner), so it says what was
/// wrong in terms the model can act on, and never holds a secret value or a path outside the workspace.
public struct ToolError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case invalidArguments, unknownTool, refused, failed
        }
        fileprivate let value: Value

        /// The arguments are not valid JSON or do not match the tool's parameters.
        public static let invalidArguments = Code(value: .invalidArguments)
        /// No tool has this name.
        public static let unknownTool = Code(value: .unknownTool)
        /// The tool's confinement refused the call (outside the workspace, a refused URL, a secret's
        /// policy that does not allow this tool or host).
        public static let refused = Code(value: .refused)
        /// The call ran and failed (a command's launch, a network error, a limit reached).
        public static let failed = Code(value: .failed)

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

extension ToolError: ClassifiedError {
    public var kind: FailureKind {
        switch code {
        case .invalidArguments: .invalidInput
        case .unknownTool: .notFound
        case .refused: .forbidden
        default: .failure
        }
    }
}
