public import MoatCore

extension NetError: ClassifiedError {
    /// A refused URL is a refusal (403 over HTTP), a failed fetch a failure.
    public var kind: FailureKind { code == .urlRefused ? .forbidden : .failure }
}
