public import MoatCore

extension SandboxError: ClassifiedError {
    /// A malformed spec is bad input; a missing or unsafe launcher is the installation's to fix.
    public var kind: FailureKind {
        switch code {
        case .invalidSpec: .invalidInput
        case .launcherMissing, .launcherUnsafe: .configuration
        default: .failure
        }
    }
}
