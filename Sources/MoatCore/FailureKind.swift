/// What kind of failure an error is, independent of the module that raised it: the one
/// classification that is mapped once to a process exit code (``exitCode``) and once to an HTTP
/// status (MoatHTTP's `APIError`).
public struct FailureKind: Hashable, Sendable, CustomStringConvertible {
    fileprivate enum Value: Hashable, Sendable {
        case invalidInput, configuration, setupRequired, dataError, unauthorized, forbidden, notFound, conflict
        case rateLimited, failure
    }
    fileprivate let value: Value

    /// The caller's input is malformed (exit 64, HTTP 400).
    public static let invalidInput = FailureKind(value: .invalidInput)
    /// The configuration, a flag or a file mode must be fixed by the owner (exit 78, HTTP 500).
    public static let configuration = FailureKind(value: .configuration)
    /// The installation has no owner yet (exit 78, HTTP 503).
    public static let setupRequired = FailureKind(value: .setupRequired)
    /// Data on disk is damaged, tampered with or not Moat's (exit 65, HTTP 500).
    public static let dataError = FailureKind(value: .dataError)
    /// No valid credential (exit 1, HTTP 401).
    public static let unauthorized = FailureKind(value: .unauthorized)
    /// A credential without the right to do this (exit 1, HTTP 403).
    public static let forbidden = FailureKind(value: .forbidden)
    /// The thing named does not exist (exit 1, HTTP 404).
    public static let notFound = FailureKind(value: .notFound)
    /// The state changed or the thing exists already (exit 1, HTTP 409).
    public static let conflict = FailureKind(value: .conflict)
    /// Too many attempts; try again later (exit 1, HTTP 429).
    public static let rateLimited = FailureKind(value: .rateLimited)
    /// Anything else: a storage error, a refused start, a failed operation (exit 1, HTTP 500).
    public static let failure = FailureKind(value: .failure)

    public var description: String { "\(value)" }

    /// The process exit code for this kind (BSD `sysexits.h` where one fits).
    public var exitCode: Int32 {
        switch value {
        case .invalidInput: ExitStatus.usage
        case .configuration, .setupRequired: ExitStatus.configuration
        case .dataError: ExitStatus.dataError
        case .unauthorized, .forbidden, .notFound, .conflict, .rateLimited, .failure: ExitStatus.failure
        }
    }
}

/// An error whose message the owner can act on, with its ``FailureKind``. Every module's error type
/// conforms, so commands and routes map errors in one place each.
public protocol ClassifiedError: Error, CustomStringConvertible {
    /// What failed and how to fix it; never a secret or raw input.
    var message: String { get }
    /// The kind of failure, for the exit code and the HTTP status.
    var kind: FailureKind { get }
}

extension ExitStatus {
    /// The exit code a command ends with for `error`: its kind's, or 1 for an unclassified error.
    public static func code(for error: any Error) -> Int32 {
        (error as? any ClassifiedError)?.kind.exitCode ?? failure
    }

    /// The text printed for `error`: its message, or its description when it has no kind.
    public static func message(for error: any Error) -> String {
        (error as? any ClassifiedError)?.message ?? "\(error)"
    }
}
