import Foundation
import MoatSandbox
import MoatTestSupport
import Testing

/// The escape suite of issue 5, run through the real launcher: each attempt is one of the probes of the
/// test-only `moat-sandbox-probe`, run as the sandboxed command, which prints `held: …` (exit 0) or
/// `ESCAPED: …` (exit 1).
@Suite(.tags(.slow)) struct EscapeSuiteTests {
    /// Probes that take no argument and judge themselves, with the errors they must see.
    static let selfJudgingProbes: [(name: String, expected: [String])] = [
        ("write-etc", ["EROFS"]),
        ("write-usr-bin-true", ["EACCES", "EROFS"]),
        ("socket-packet", ["EAFNOSUPPORT", "EPERM"]),
        ("socket-alg", ["EAFNOSUPPORT", "EPERM"]),
        ("ptrace", ["EPERM"]),
        ("mount", ["EPERM"]),
        ("umount-proc", ["EPERM"]),
        ("unshare-user", ["EPERM"]),
        ("clone-newuser", ["EPERM"]),
        ("clone3", ["ENOSYS"]),
        ("setns", ["EPERM"]),
        ("chroot", ["EPERM"]),
        ("keyctl", ["EPERM"]),
        ("bpf", ["EPERM"]),
        ("perf_event_open", ["EPERM"]),
        ("userfaultfd", ["EPERM"]),
        ("io_uring_setup", ["EPERM"]),
        ("io_setup", ["EPERM"]),
        ("inotify_init", ["EPERM"]),
        ("mq_open", ["EPERM"]),
        ("dev-shm", ["ENOENT"]),
        ("tiocsti", ["EPERM"]),
        ("mknod-block", ["EPERM"]),
        ("open_by_handle_at", ["EPERM"]),
        ("personality", ["EPERM"]),
        ("host-dirs", ["ENOENT"]),
        ("write-proc-sys", ["refused writing"]),
        ("proc1", ["moat-init"]),
        ("kill-all", []),
        ("spoof-stop", ["delivered"]),
        ("write-proc1-exe", []),
        ("fds", []),
        ("privileges", []),
        ("setuid-binary", []),
        ("setid-bits", ["EPERM"]),
        ("timer-list", []),
        ("sysrq", []),
        ("net-ifaces", []),
    ]

    @Test("each escape attempt is held with the expected error", arguments: EscapeSuiteTests.selfJudgingProbes)
    func held(probe: (name: String, expected: [String])) async throws {
        let result = try await Launcher.probe(probe.name)
        let output = result.standardOutput + result.standardError
        #expect(result.status == .exited, "\(probe.name): \(output)")
        #expect(result.exitCode == 0, "\(probe.name): \(output)")
        #expect(output.hasPrefix("held: \(probe.name):"), "\(output)")
        if !probe.expected.isEmpty {
            #expect(probe.expected.contains { output.contains($0) }, "\(probe.name): \(output)")
        }
    }

    @Test("a listener on the host's 127.0.0.1 cannot be reached from inside")
    func hostLoopback() async throws {
        let listener = try HostListener.tcp()
        let result = try await Launcher.probe("connect-tcp", ["127.0.0.1", "\(listener.port)"])
        #expect(result.exitCode == 0, "\(result.standardOutput)")
        #expect(result.standardOutput.contains("ENETUNREACH") || result.standardOutput.contains("ECONNREFUSED"))
    }

    @Test("the internet (1.1.1.1) is unreachable")
    func internet() async throws {
        let result = try await Launcher.probe("connect-tcp", ["1.1.1.1", "443"])
        #expect(result.exitCode == 0, "\(result.standardOutput)")
        #expect(result.standardOutput.contains("ENETUNREACH"))
    }

    @Test("a host abstract unix socket is refused")
    func abstractSocket() async throws {
        let name = "moat-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let listener = try HostListener.abstract(name)
        let result = try await Launcher.probe("connect-abstract", [name])
        #expect(result.exitCode == 0, "\(result.standardOutput)")
        #expect(result.standardOutput.contains("ECONNREFUSED"))
        withExtendedLifetime(listener) {}
    }

    @Test("a foreign-ABI syscall (i386 int 0x80, x32) kills the process with SIGSYS", arguments: ["int80", "x32"])
    func foreignABI(probe: String) async throws {
        let result = try await Launcher.probe(probe)
        #expect(result.status == .signaled, "\(result.standardOutput)")
        #expect(result.signal == SIGSYS)
        #expect(result.exitCode == 128 + SIGSYS)
    }

    @Test("filling /tmp stops with ENOSPC at its size")
    func fillTmp() async throws {
        let size: UInt64 = 8 << 20
        let result = try await Launcher.probe("fill-tmp", ["\(size)"], limits: SandboxLimits(tmpBytes: size))
        #expect(result.exitCode == 0, "\(result.standardOutput)")
        #expect(result.standardOutput.contains("ENOSPC"))
    }

    @Test("a fork bomb is held at the process limit")
    func forkBomb() async throws {
        let result = try await Launcher.probe("fork-bomb", ["16"], limits: SandboxLimits(processes: 16))
        #expect(result.exitCode == 0, "\(result.standardOutput)")
        #expect(result.standardOutput.contains("EAGAIN"))
    }

    @Test("a memory bomb is stopped at the memory limit")
    func memoryBomb() async throws {
        let limit: UInt64 = 64 << 20
        let result = try await Launcher.probe("memory-bomb", ["\(limit)"], limits: SandboxLimits(memoryBytes: limit))
        // rlimit mode: allocations fail and the probe judges; cgroup2 mode: the kernel kills it (oom).
        if result.limitsMode == "cgroup2" {
            #expect(result.status == .outOfMemory || result.exitCode == 0)
        } else {
            #expect(result.exitCode == 0, "\(result.standardOutput)")
        }
    }

    @Test(
        "memory RLIMIT_AS does not see (memfds, SysV IPC, enlarged socket and pipe buffers) is refused or bounded in rlimit mode",
        arguments: ["memfd-fill", "sysv-shm-fill", "sysv-msg-sem", "buffer-fill"]
    )
    func memoryOutsideAddressSpace(probe: String) async throws {
        let limit: UInt64 = 64 << 20
        let result = try await Launcher.probe(probe, ["\(8 * limit)"], limits: SandboxLimits(memoryBytes: limit))
        if result.limitsMode == "cgroup2" {
            // The memory cgroup counts these pages: a fill ends at memory.max.
            #expect(result.status == .outOfMemory || result.status == .exited, "\(result.standardOutput)")
        } else {
            #expect(result.exitCode == 0, "\(result.standardOutput)")
            #expect(result.standardOutput.hasPrefix("held: \(probe): "), "\(result.standardOutput)")
            #expect(result.standardOutput.contains("EPERM"), "\(result.standardOutput)")
        }
    }

    @Test("a run killed at its timeout reports the CPU time its processes used")
    func cpuAfterTimeout() async throws {
        let result = try await Launcher.probe("busy", ["1", "600000", "1"], timeout: .seconds(2))
        #expect(result.status == .timeout)
        // A generous floor: one busy loop for 2 s gets far more than this even on a loaded machine.
        #expect(result.cpuTime >= .milliseconds(50), "\(result.cpuTime)")
    }

    @Test("two busy loops get about one CPU")
    func busyLoops() async throws {
        let result = try await Launcher.probe("busy", ["2", "500", "1"])
        #expect(result.exitCode == 0, "\(result.standardOutput)")
        #expect(result.cpuTime <= .milliseconds(500 + 250 + 100), "\(result.standardOutput)")
    }

    @Test("sleep with a double-forked orphan ends at the timeout with 124 and leaves nothing running")
    func orphanAtTimeout() async throws {
        // A run-specific sleep length marks this run's processes (another test run may be going on).
        let seconds = Int.random(in: 100...99_999)
        let result = try await Launcher.probe("orphan", ["\(seconds)"], timeout: .seconds(2))
        #expect(result.status == .timeout)
        #expect(result.exitCode == 124)
        // The probe sleeps `seconds` (at least 100 s) and its orphan ten times that: a run that returned
        // before the probe's own sleep could end was ended by the launcher, at its timeout. (A bound near
        // the 2 s timeout measured the machine's load instead.)
        #expect(result.wallTime < .seconds(seconds), "\(result.wallTime)")
        #expect(Launcher.hostProcesses(commandLine: [Launcher.probeInsidePath, "orphan", "\(seconds)"]).isEmpty)
    }

    @Test("10 MiB on stdout is truncated at the 1 MiB cap with the flag set")
    func outputCap() async throws {
        let result = try await Launcher.probe("flood", ["\(10 << 20)"])
        #expect(result.standardOutput.utf8.count == 1 << 20)
        #expect(result.standardOutputTruncated)
        #expect(!result.standardErrorTruncated)
    }

    @Test("the launcher's stored seccomp programs match the rules (moat-sandbox --verify-filter)")
    func verifyFilter() async throws {
        let (status, output) = try await Launcher.sandbox().verifyFilter()
        #expect(status == 0, "\(output)")
    }
}
