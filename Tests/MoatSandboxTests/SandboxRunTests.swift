import Foundation
import MoatSandbox
import MoatTestSupport
import Testing

@Suite struct SandboxRunTests {
    @Test("a command runs, its output is captured and its exit code returned")
    func runsCommand() async throws {
        let sandbox = try Launcher.sandbox()
        let result = try await sandbox.run(SandboxSpec(["sh", "-c", "echo out; echo err >&2; exit 3"]))
        #expect(result.status == .exited)
        #expect(result.exitCode == 3)
        #expect(result.standardOutput == "out\n")
        #expect(result.standardError == "err\n")
        #expect(["rlimit", "cgroup2"].contains(result.limitsMode))
    }

    @Test("the command sees only the spec's environment, never Moat's")
    func environment() async throws {
        // Moat's own environment is this test process's (no `setenv`: other tests read the environment while
        // they start processes): none of its variables may reach the command.
        let spec = SandboxSpec(["env"], environment: ["PATH": "/usr/bin:/bin", "ONLY": "this"])
        let result = try await Launcher.sandbox().run(spec)
        #expect(result.standardOutput.contains("ONLY=this"))
        let seen = Set(result.standardOutput.split(separator: "\n").map { String($0.prefix { $0 != "=" }) })
        let parent = Set(ProcessInfo.processInfo.environment.keys).subtracting(["PATH", "ONLY"])
        #expect(!parent.isEmpty)
        #expect(seen.intersection(parent).isEmpty, "\(seen.intersection(parent)) reached the sandbox")
    }

    @Test("a missing program is exit 127 with a message, inside the sandbox")
    func notFound() async throws {
        let result = try await Launcher.sandbox().run(SandboxSpec(["no-such-program-here"]))
        #expect(result.exitCode == 127)
        #expect(result.message?.contains("not found") == true)
    }

    @Test("several MiB of output come back whole when the cap allows it")
    func largeOutput() async throws {
        let size = 6 << 20
        var spec = Launcher.probeSpec("flood", ["\(size)"])
        spec.limits.outputBytes = 8 << 20
        let result = try await Launcher.sandbox().run(spec)
        #expect(result.exitCode == 0)
        #expect(result.standardOutput.utf8.count == size)
        #expect(!result.standardOutputTruncated)
    }

    @Test("the workspace profile gives one writable directory at /workspace and nothing else")
    func workspaceProfile() async throws {
        let temp = TemporaryDirectory("moat-sandbox-ws")
        Launcher.makeWritableBySandbox(temp.path)
        let profile = SandboxProfile.workspace(temp.path)
        let write = try await Launcher.sandbox().run(profile.spec(["sh", "-c", "pwd; echo made > note.txt"]))
        #expect(write.exitCode == 0, "\(write.standardError)")
        #expect(write.standardOutput == "/workspace\n")
        #expect(try String(contentsOfFile: temp.file("note.txt"), encoding: .utf8) == "made\n")

        let elsewhere = try await Launcher.sandbox().run(profile.spec(["sh", "-c", "echo x > /etc/x"]))
        #expect(elsewhere.exitCode != 0)
        #expect(elsewhere.standardError.contains("Read-only file system"))

        let standard = try await Launcher.sandbox().run(SandboxProfile.default.spec(["sh", "-c", "echo x > /x"]))
        #expect(standard.exitCode != 0)
    }

    @Test("profiles are found by name; workspace needs a directory; unknown names are errors")
    func profileNames() throws {
        #expect(try SandboxProfile.named("default", workspace: nil) == .default)
        #expect(try SandboxProfile.named("workspace", workspace: "/srv").name == "workspace")
        #expect(throws: SandboxError.self) { try SandboxProfile.named("workspace", workspace: nil) }
        #expect(throws: SandboxError.self) { try SandboxProfile.named("root", workspace: nil) }
    }

    @Test("the spec's defaults are the issue's: 256 MiB, 1 CPU, 64 processes, 30 s, 64 MiB /tmp, 1 MiB output")
    func defaults() {
        let spec = SandboxSpec(["true"])
        #expect(spec.limits.memoryBytes == 256 << 20)
        #expect(spec.limits.cpus == 1)
        #expect(spec.limits.processes == 64)
        #expect(spec.timeout == .seconds(30))
        #expect(spec.limits.tmpBytes == 64 << 20)
        #expect(spec.limits.outputBytes == 1 << 20)
        #expect(spec.readOnlyBinds.isEmpty && spec.writableBinds.isEmpty)
    }

    @Test("the capability probe reports user namespaces, seccomp, the limits mode and Landlock")
    func capabilities() async throws {
        let capabilities = try await Launcher.sandbox().capabilities()
        #expect(capabilities.userNamespaces)
        #expect(capabilities.seccomp)
        #expect(["rlimit", "cgroup2"].contains(capabilities.limitsMode))
        #expect(capabilities.landlockABI >= 0)
    }

    @Test("cancelling the calling task kills the sandbox")
    func cancellation() async throws {
        let sandbox = try Launcher.sandbox()
        // A run-specific sleep length marks this run's sandboxed process (another test run may be going on).
        let command = ["sleep", "\(Int.random(in: 100_000...999_999))"]
        let task = Task { try await sandbox.run(SandboxSpec(command, timeout: .seconds(3600))) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let error = await #expect(throws: SandboxError.self) { try await task.value }
        #expect(error?.code == .cancelled)
        // The run threw `.cancelled` instead of returning a result, and its sleep is gone long before its
        // own end or the hour's timeout: the sandbox was killed. (Wall-clock bounds on the run measured
        // the machine's load, not cancellation: 8.3 s and 97 s were seen with both cores busy.)
        #expect(await Launcher.eventually(within: 120) { Launcher.hostProcesses(commandLine: command).isEmpty })
    }
}
