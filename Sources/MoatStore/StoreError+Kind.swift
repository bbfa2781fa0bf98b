public import MoatCore

extension StoreError: ClassifiedError {
    /// Unsafe modes and an unknown home are for the owner to fix (78); a file that is not Moat's
    /// database, or is damaged or newer, is bad data (65); an I/O error is a failure.
    public var kind: FailureKind {
        switch code {
        case .unsafePermissions, .homeUnknown: .configuration
        case .io: .failure
        default: .dataError
        }
    }
}
