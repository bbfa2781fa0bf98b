public import Foundation

/// A state directory after one real `moat serve` start and stop: a sealed vault, a migrated database and
/// the audit log's first entries (gateway.start, config.loaded, gateway.stop).
///
/// The first start creates the vault with the production Argon2 parameters, which is most of its cost; one
/// such home is made per test process and each test gets a copy (`cp -a`, so modes stay as moat made them).
///
/// The template is built once, by a task whose start and stop wait on a thread of their own: the tests
/// that need it await it instead of waiting in a `static let`'s initialiser, which would hold one of the
/// cooperative pool's two threads (on the CI machine) for the whole start of `moat serve`.
public enum ServedHome {
    private static let template = Task.detached { () async throws -> TemporaryDirectory in
        let temp = TemporaryDirectory("moat-served-template")
        let (status, log) = try await RunningServer.start(arguments: [], home: temp.path).stop()
        guard status == 0 else { throw ServerDidNotStart(stderr: log) }
        return temp
    }

    /// A fresh copy of the served home, removed when the returned directory goes.
    public static func copy() async throws -> TemporaryDirectory {
        let source = try await template.value
        let copy = TemporaryDirectory()
        let (status, output) = try await HostCommand.run("/bin/cp", ["-a", source.path + "/.", copy.path])
        guard status == 0 else { throw ServerDidNotStart(stderr: "copying the served home failed: \(output)") }
        return copy
    }
}
