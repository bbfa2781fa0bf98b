public import MoatCore

extension VaultError: ClassifiedError {
    /// Bad input on the command line (exit 64), a damaged or unreadable file (65), otherwise a failure (1).
    public var kind: FailureKind {
        let invalid: Set<Code> = [
            .invalidName, .invalidPolicy, .invalidValue, .badInput, .noTerminal, .invalidPlaceholder,
        ]
        let damaged: Set<Code> = [.corrupt, .unsupportedVersion, .weakParameters]
        if invalid.contains(code) { return .invalidInput }
        if damaged.contains(code) { return .dataError }
        if code == .notFound || code == .unknownSecret { return .notFound }
        if code == .alreadyExists || code == .duplicateSecret || code == .changedElsewhere { return .conflict }
        return .failure
    }
}
