import Foundation
import MoatCore
import MoatTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `moat sandbox` through the real `moat` binary, which finds `moat-sandbox` beside itself.
@Suite struct SandboxCommandTests {
    @Test("moat sandbox run -- echo hi prints hi and exits 0")
    func echo() async throws {
        let result = try await MoatBinary.run(["sandbox", "run", "--", "echo", "hi"], home: nil, timeout: 20)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "hi\n")
    }

    @Test("writing to /etc fails cleanly: the shell's error, a non-zero exit, nothing written")
    func writeEtc() async throws {
        let result = try await MoatBinary.run(
            ["sandbox", "run", "--", "sh", "-c", "echo hi > /etc/x"],
            home: nil,
            timeout: 20
        )
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("Read-only file system"), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/x"))
    }

    @Test("the command's exit code, stderr and the timeout are passed through")
    func exitCodes() async throws {
        let failing = try await MoatBinary.run(
            ["sandbox", "run", "--", "sh", "-c", "echo oops >&2; exit 7"], home: nil)
        #expect(failing.status == 7)
        #expect(failing.stderr.hasPrefix("oops\n"))

        let slow = try await MoatBinary.run(["sandbox", "run", "--timeout", "300ms", "--", "sleep", "10"], home: nil)
        #expect(slow.status == 124)
        #expect(slow.stderr.contains("timed out"))
    }

    @Test("--profile workspace --rw DIR makes that directory writable at /workspace")
    func workspace() async throws {
        let temp = TemporaryDirectory("moat-sandbox-cli")
        Launcher.makeWritableBySandbox(temp.path)
        let result = try await MoatBinary.run(
            [
                "sandbox", "run", "--profile", "workspace", "--rw", temp.path, "--memory", "128M", "--",
                "sh", "-c", "echo kept > out.txt && pwd",
            ],
            home: nil
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "/workspace\n")
        #expect(try String(contentsOfFile: temp.file("out.txt"), encoding: .utf8) == "kept\n")
    }

    @Test("killing moat with SIGKILL ends its launcher and everything in the sandbox")
    func diesWithParent() async throws {
        // A run-specific sleep length marks this run's sandboxed process.
        let sandboxed = ["sleep", "\(Int.random(in: 100_000...999_999))"]
        let moat = try ChildProcess(
            MoatBinary.path, ["sandbox", "run", "--timeout", "120s", "--"] + sandboxed,
            environment: MoatBinary.environment(home: nil))
        defer { if moat.isRunning { moat.terminate() } }

        #expect(await Launcher.eventually(within: 20) { !Launcher.hostProcesses(commandLine: sandboxed).isEmpty })
        let launchers = Launcher.children(of: moat.processIdentifier)
        #expect(!launchers.isEmpty)
        kill(moat.processIdentifier, SIGKILL)
        // Polled before waiting for moat, so the check does not depend on how its end is reported.
        let gone = await Launcher.eventually(within: 20) {
            Launcher.hostProcesses(commandLine: sandboxed).isEmpty && !launchers.contains(where: Launcher.isRunning)
        }
        #expect(gone, "the launcher or the sandboxed sleep outlived moat")
        await offCooperativePool { moat.waitUntilExit() }
    }

    @Test("--file-size caps each file the command writes")
    func fileSize() async throws {
        let result = try await MoatBinary.run(
            [
                "sandbox", "run", "--file-size", "1M", "--", "sh", "-c",
                "head -c 2097152 /dev/zero > /tmp/f; stat -c %s /tmp/f",
            ],
            home: nil
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "1048576\n")
    }

    @Test("bad flags are usage errors that name the flag")
    func usage() async throws {
        let memory = try await MoatBinary.run(["sandbox", "run", "--memory", "lots", "--", "true"], home: nil)
        #expect(memory.status == 64)
        #expect(memory.stderr.contains("--memory"))
        let noCommand = try await MoatBinary.run(["sandbox", "run"], home: nil)
        #expect(noCommand.status == 64)
        #expect(noCommand.stderr.contains("after --"))
        let workspace = try await MoatBinary.run(["sandbox", "run", "--profile", "workspace", "--", "true"], home: nil)
        #expect(workspace.status == 64)
        let tiny = try await MoatBinary.run(["sandbox", "run", "--memory", "1M", "--", "true"], home: nil)
        #expect(tiny.status == 64)
        #expect(tiny.stderr.contains("memory limit"))
    }

    @Test("moat sandbox check prints pass/warn/fail lines for each capability")
    func check() async throws {
        let result = try await MoatBinary.run(["sandbox", "check"], home: nil)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("pass  user namespaces"))
        #expect(result.stdout.contains("pass  seccomp"))
        #expect(result.stdout.contains("  limits: "))
        #expect(result.stdout.contains("  landlock: "))
    }
}
