public import MoatCore

extension AuditError: ClassifiedError {
    /// A malformed event or checkpoint is bad input; a failed append or read is a failure.
    public var kind: FailureKind {
        switch code {
        case .invalidEvent, .invalidCheckpoint: .invalidInput
        default: .failure
        }
    }
}
