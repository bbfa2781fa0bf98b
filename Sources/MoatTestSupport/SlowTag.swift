public import Testing

extension Tag {
    /// Suites that take seconds each: child processes killed in loops, real `moat serve` processes, the
    /// launcher's escape suite, a real browser. CI runs them all; locally, leave them out with
    /// `swift test --skip-build --filter '…'` as README.md (Development) shows.
    @Tag public static var slow: Self
}
