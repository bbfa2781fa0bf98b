public import MoatCore

extension AuthError: ClassifiedError {
    /// Each code's kind; MoatHTTP maps kinds to statuses (400, 503, 409, 401, 403, 429, 500, 404).
    public var kind: MoatCore.FailureKind {
        switch code {
        case .invalidInput: .invalidInput
        case .setupRequired: .setupRequired
        case .alreadySetUp: .conflict
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .rateLimited: .rateLimited
        case .tampered: .dataError
        case .notFound: .notFound
        case .storage: .failure
        }
    }
}
