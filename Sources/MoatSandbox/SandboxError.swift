/// An error from the sandbox: the launcher is missing, a spec is invalid, or the sandbox could not be set up.
///
/// Every one of these means the command did **not** run: the sandbox fails closed. `message` says what
/// failed and how to fix it; it never quotes spec input (arguments, environment values, paths given by
/// the model), which may hold secrets.
public struct SandboxError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is, for callers that branch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case launcherMissing, launcherUnsafe, invalidSpec, setupFailed, launcherFailed, cancelled
        }
        fileprivate let value: Value

        /// `moat-sandbox` is not where Moat looks for it (beside the `moat` executable).
        public static let launcherMissing = Code(value: .launcherMissing)
        /// `moat-sandbox` exists but others could replace it (group- or world-writable, or not a regular file).
        public static let launcherUnsafe = Code(value: .launcherUnsafe)
        /// The spec was rejected before anything ran (by this module or by the launcher's parser).
        public static let invalidSpec = Code(value: .invalidSpec)
        /// The launcher could not build the sandbox on this machine (for example user namespaces are off).
        public static let setupFailed = Code(value: .setupFailed)
        /// The launcher could not be started, died, or wrote something that is not a result.
        public static let launcherFailed = Code(value: .launcherFailed)
        /// The calling task was cancelled; the launcher and everything in the sandbox were killed.
        public static let cancelled = Code(value: .cancelled)

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
