public import MoatCore

extension PolicyError: ClassifiedError {
    /// Each code's kind (for the exit code and the HTTP status).
    public var kind: FailureKind {
        switch code {
        case .invalidInput: .invalidInput
        case .notFound: .notFound
        case .alreadyDecided, .alreadyUsed, .conflict, .expired, .requestMismatch, .notApproved: .conflict
        case .evidenceMissing: .forbidden
        default: .failure
        }
    }
}
