public import Foundation
import MoatCore

/// Runs a host program (not `moat`) to completion, for tests that need a tool such as `unshare` or
/// `setpriv` around the real binary.
public enum HostCommand {
    /// Runs `executable ARGUMENTS` with `environment` (the test's own when nil) and returns its exit
    /// status and everything it wrote to stdout and stderr, interleaved.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil
    ) throws -> (status: Int32, output: String) {
        let output = Pipe()
        let process = try ChildProcess(
            executable, arguments, environment: environment, standardOutput: .pipe(output),
            standardError: .pipe(output))
        let data = output.fileHandleForReading.readAll()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
