import Foundation
import MoatSandbox
import MoatTestSupport
import Testing

/// A sandbox that cannot be set up never runs the command: every failure below leaves a marker file
/// that the command would have created on the host unwritten.
@Suite struct FailClosedTests {
    /// A command that, if it ever ran outside the sandbox, would leave `marker` on the host.
    static func markerCommand(_ marker: String) -> [String] { ["/bin/sh", "-c", "echo ran > \(marker)"] }

    /// Writes an executable shell script with a close-on-exec descriptor.
    static func script(_ path: String, _ body: String) throws -> String {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        let text = Array("#!/bin/sh\n\(body)\n".utf8)
        _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return path
    }

    /// Other tests spawn processes concurrently; one forked in the instant the script was open for writing
    /// holds that descriptor until it execs, and exec of the script then fails with ETXTBSY. Retry that.
    static func runRetryingBusyText(_ sandbox: Sandbox, _ spec: SandboxSpec) async throws -> SandboxResult {
        for _ in 0..<50 {
            do {
                return try await sandbox.run(spec)
            } catch let error as SandboxError where error.message.contains("Text file busy") {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        return try await sandbox.run(spec)
    }

    @Test("a missing launcher is an error that says where it was looked for, and nothing runs")
    func missingLauncher() throws {
        let temp = TemporaryDirectory("moat-sandbox-missing")
        let error = #expect(throws: SandboxError.self) {
            try Sandbox(launcherPath: temp.file("moat-sandbox"))
        }
        #expect(error?.code == .launcherMissing)
        #expect(error?.message.contains("install.sh") == true)
    }

    @Test("a launcher others could rewrite is refused")
    func unsafeLauncher() throws {
        let temp = TemporaryDirectory("moat-sandbox-unsafe")
        let path = try temp.write("moat-sandbox", "#!/bin/sh\nexit 0\n", mode: 0o777)
        TemporaryDirectory.chmod(path, 0o777)
        let error = #expect(throws: SandboxError.self) { try Sandbox(launcherPath: path) }
        #expect(error?.code == .launcherUnsafe)
    }

    @Test("when user namespaces cannot be set up the launcher reports a setup error and the command never runs")
    func setupFailure() async throws {
        let temp = TemporaryDirectory("moat-sandbox-setup")
        // The real launcher, started inside a user namespace with no id mapping: it cannot build its own.
        let wrapper = try Self.script(
            temp.file("moat-sandbox"),
            "exec /usr/bin/unshare --user \(Sandbox.defaultLauncherPath()) \"$@\""
        )
        let marker = temp.file("ran")
        let sandbox = try Sandbox(launcherPath: wrapper)
        let error = await #expect(throws: SandboxError.self) {
            try await Self.runRetryingBusyText(sandbox, SandboxSpec(Self.markerCommand(marker)))
        }
        #expect(error?.code == .setupFailed, "\(String(describing: error))")
        #expect(error?.message.contains("sandbox setup failed") == true)
        #expect(error?.message.contains("was not run") == true)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("a launcher that dies without a result is an error, not a result")
    func launcherWithoutResult() async throws {
        let temp = TemporaryDirectory("moat-sandbox-dies")
        let launcher = try Self.script(temp.file("moat-sandbox"), "echo broken >&2; exit 9")
        let marker = temp.file("ran")
        let error = await #expect(throws: SandboxError.self) {
            try await Self.runRetryingBusyText(Sandbox(launcherPath: launcher), SandboxSpec(Self.markerCommand(marker)))
        }
        #expect(error?.code == .launcherFailed)
        #expect(error?.message.contains("status 9") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("a missing bind source fails the setup and the command never runs")
    func missingBindSource() async throws {
        let temp = TemporaryDirectory("moat-sandbox-bind")
        let marker = temp.file("ran")
        var spec = SandboxSpec(Self.markerCommand(marker))
        spec.readOnlyBinds = [BindMount(temp.file("absent"))]
        let error = await #expect(throws: SandboxError.self) { try await Launcher.sandbox().run(spec) }
        #expect(error?.code == .setupFailed)
        #expect(error?.message.contains(temp.path) == false)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("invalid specs are refused before anything starts, naming the field and not the value")
    func validation() async throws {
        let sandbox = try Launcher.sandbox()
        var cases: [SandboxSpec] = []
        cases.append(SandboxSpec([]))
        cases.append(SandboxSpec([""]))
        cases.append(SandboxSpec(["echo", "a\u{0}b"]))
        cases.append(SandboxSpec(["env"], environment: ["A=B": "secret-value"]))
        cases.append(SandboxSpec(["true"], readOnlyBinds: [BindMount("relative/path")]))
        cases.append(SandboxSpec(["true"], writableBinds: [BindMount("/tmp", at: "inside")]))
        cases.append(SandboxSpec(["true"], workingDirectory: "work"))
        cases.append(SandboxSpec(["true"], limits: SandboxLimits(memoryBytes: 1 << 20)))
        cases.append(SandboxSpec(["true"], limits: SandboxLimits(cpus: 0)))
        cases.append(SandboxSpec(["true"], limits: SandboxLimits(processes: 0)))
        cases.append(SandboxSpec(["true"], limits: SandboxLimits(tmpBytes: 1)))
        cases.append(SandboxSpec(["true"], timeout: .zero))
        cases.append(SandboxSpec(["true"], timeout: .seconds(8 * 86400)))
        for spec in cases {
            let error = await #expect(throws: SandboxError.self) { try await sandbox.run(spec) }
            #expect(error?.code == .invalidSpec)
            #expect(error?.message.hasPrefix("invalid sandbox spec: ") == true)
            #expect(error?.message.contains("secret-value") == false)
        }
    }

    @Test("a launcher whose starter is already gone (parent_pid is not its parent) runs nothing")
    func starterGone() async throws {
        let temp = TemporaryDirectory("moat-sandbox-orphan")
        let marker = temp.file("ran")
        // pid 1 stands for a starter that exited before the launcher armed its parent-death signal.
        let spec: [String: Any] = ["argv": Self.markerCommand(marker), "parent_pid": 1]
        let file = temp.file("spec.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: file))
        let (status, result) = try await Launcher.runDirectly(["--spec", file])
        #expect(status == 125, "\(result)")
        #expect(result.contains("the process that started the launcher has exited"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("a spec the launcher itself rejects (a bind from /proc) is an invalid-spec error")
    func launcherRejectsSpec() async throws {
        let spec = SandboxSpec(["true"], readOnlyBinds: [BindMount("/proc/self", at: "/host-proc")])
        let error = await #expect(throws: SandboxError.self) { try await Launcher.sandbox().run(spec) }
        #expect(error?.code == .invalidSpec)
        #expect(error?.message.contains("ro_binds") == true)
    }
}
