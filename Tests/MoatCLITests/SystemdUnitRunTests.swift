import Foundation
import MoatTestSupport
import Testing

/// A real systemd user manager of the tests' own, for running the unit `moat service install` writes.
///
/// This machine's PID 1 is not systemd, so `systemctl --user` has no manager to talk to. A user manager
/// still runs here: `systemd --user` only refuses when `/run/systemd/system` is missing, so it is started
/// in a private mount namespace (`unshare -m`, root only) with a fresh tmpfs on `/run` holding that
/// directory. Its runtime directory (and so its control socket) is in a test directory the test's own
/// `systemctl --user` reaches with `XDG_RUNTIME_DIR`.
final class UserSystemd: @unchecked Sendable {
    static let manager = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static let tools = ["/usr/bin/unshare", "/usr/bin/systemctl", "/usr/bin/curl"]

    /// Why the test cannot run here, or nil when it can.
    static var unavailable: String? {
        if getuid() != 0 { return "a private mount namespace for the user manager needs root" }
        if manager == nil { return "systemd is not installed" }
        if let missing = tools.first(where: { !FileManager.default.isExecutableFile(atPath: $0) }) {
            return "\(missing) is not installed"
        }
        return nil
    }

    let base: String
    /// The manager's process id. It is started detached (through `sh -c '… &'`), so that it is not a
    /// child of the test process: a long-running Foundation `Process` child stalled the reaping of the
    /// test's later short-lived children here.
    let pid: Int32

    init(base: String) async throws {
        self.base = base
        try FileManager.default.createDirectory(
            atPath: base + "/run", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let inner =
            "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/systemd/system && exec \(Self.manager!) --user"
        let launched = try await HostCommand.run(
            "/bin/sh",
            [
                "-c",
                "/usr/bin/unshare -m /bin/sh -c '\(inner)' </dev/null >'\(base)/manager.log' 2>&1 & echo $!",
            ],
            environment: Self.environment(base))
        guard launched.status == 0, let pid = Int32(launched.output.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            throw ManagerDidNotStart(description: "could not start the user manager: \(launched.output)")
        }
        self.pid = pid
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let state = try await systemctl(["show", "-p", "SystemState", "--value"]).output
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if state == "running" || state == "degraded" { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop()
        throw ManagerDidNotStart(description: "the user manager did not start: \(managerLog)")
    }

    var environment: [String: String] { Self.environment(base) }

    static func environment(_ base: String) -> [String: String] {
        [
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": base, "XDG_RUNTIME_DIR": base + "/run",
            "XDG_CONFIG_HOME": base + "/xdg",
            // systemctl cannot read /proc/1/root here (PID 1 is not ours), takes that for a chroot and
            // then refuses start/stop: this says it is not one.
            "SYSTEMD_IGNORE_CHROOT": "1",
        ]
    }

    var managerLog: String { (try? String(contentsOfFile: base + "/manager.log", encoding: .utf8)) ?? "" }

    func systemctl(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await HostCommand.run("/usr/bin/systemctl", ["--user"] + arguments, environment: environment)
    }

    /// Stops the manager as a shutdown would (SIGTERM: it stops every unit, then exits).
    func stop() {
        guard kill(pid, SIGTERM) == 0 else { return }
        let deadline = Date().addingTimeInterval(60)
        while Self.alive(pid) && Date() < deadline { usleep(50_000) }
        if Self.alive(pid) { kill(pid, SIGKILL) }
    }

    /// ``stop()`` waiting on a thread of its own (the sync form is for `deinit`).
    func stop() async {
        await offCooperativePool { self.stop() }
    }

    /// Whether `pid` still runs (a zombie waiting for its reaper counts as gone).
    static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        guard let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    deinit { stop() }
}

struct ManagerDidNotStart: Error, CustomStringConvertible {
    let description: String
}

/// The unit `moat service install --user` writes, run for real by a systemd user manager.
@Suite(.serialized, .tags(.slow)) struct SystemdUnitRunTests {
    static func healthz(_ port: Int) async throws -> String {
        try await HostCommand.run(
            "/usr/bin/curl",
            ["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/healthz"]
        ).output
    }

    /// A directory beside the test bundle: the unit's PrivateTmp= hides /tmp and /var/tmp from the service,
    /// so its state cannot live there.
    static func makeBase() throws -> String {
        let parent = URL(fileURLWithPath: MoatBinary.path).deletingLastPathComponent().path
        var template = Array((parent + "/systemd-run-test-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw POSIXError(.EIO)
        }
        return String(cString: made)
    }

    @Test(
        "the installed unit starts moat serve under systemd (READY=1, /healthz answers, the sandbox runs under the unit's hardening) and starts again with a fresh manager, as after a reboot",
        .enabled(if: UserSystemd.unavailable == nil, "\(UserSystemd.unavailable ?? "")")
    )
    func installedUnitRuns() async throws {
        let base = try Self.makeBase()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let served = try await ServedHome.copy()
        let home = base + "/home"
        #expect(try await HostCommand.run("/bin/cp", ["-a", served.path, home]).status == 0)
        // The seal was made with the tests' systemd credential host key: the service gets the same key
        // (a path, not a secret) through the manager's environment (environment.d), not through the unit.
        let hostKey = base + "/host-key.secret"
        try FileManager.default.copyItem(atPath: MoatBinary.testHostKey, toPath: hostKey)
        let port = try LoopbackPort.free()
        try Data("gateway:\n  port: \(port)\n".utf8).write(to: URL(fileURLWithPath: home + "/config.yaml"))

        // environment.d is read by every new manager, so the key also reaches the unit after the "reboot".
        try FileManager.default.createDirectory(atPath: base + "/xdg/environment.d", withIntermediateDirectories: true)
        try Data("SYSTEMD_CREDENTIAL_SECRET=\(hostKey)\n".utf8)
            .write(to: URL(fileURLWithPath: base + "/xdg/environment.d/moat-test.conf"))
        var manager: UserSystemd? = try await UserSystemd(base: base)
        let install = try await MoatBinary.run(
            ["service", "install", "--user", "--home", home], home: nil,
            extraEnvironment: ["XDG_CONFIG_HOME": base + "/xdg"])
        try #require(install.status == 0, "\(install.stderr)")
        await #expect(try manager!.systemctl(["daemon-reload"]).status == 0)
        // Type=notify: `start` returns only once moat serve said READY=1.
        let started = try await manager!.systemctl(["enable", "--now", "moat"])
        #expect(started.status == 0, "\(started.output)\n\(manager!.managerLog)")
        await #expect(try Self.healthz(port) == "200")
        let shown = try await manager!.systemctl([
            "show", "moat", "-p", "ActiveState", "-p", "StatusText", "-p", "WatchdogUSec", "-p", "NRestarts",
        ]).output
        #expect(shown.contains("ActiveState=active"), "\(shown)")
        #expect(shown.contains("StatusText=listening on http://127.0.0.1:\(port)"), "\(shown)")
        #expect(shown.contains("WatchdogUSec=30s"), "\(shown)")

        // The sandbox under exactly the unit's [Service] settings: a oneshot copy of the unit.
        let unit = try String(contentsOfFile: base + "/xdg/systemd/user/moat.service", encoding: .utf8)
        let out = home + "/sandbox-check.out"
        let check = unit.split(separator: "\n", omittingEmptySubsequences: false).compactMap { line -> String? in
            if line.hasPrefix("Type=") { return "Type=oneshot\nStandardOutput=file:\(out)\nStandardError=file:\(out)" }
            if line.hasPrefix("ExecStart=") {
                return "ExecStart=\(MoatBinary.path) sandbox run -- /bin/sh -c 'echo sandboxed as $(id -u)'"
            }
            if ["WatchdogSec=", "NotifyAccess=", "Restart", "[Install]", "WantedBy="].contains(where: line.hasPrefix) {
                return nil
            }
            return String(line)
        }.joined(separator: "\n")
        try Data(check.utf8).write(to: URL(fileURLWithPath: base + "/xdg/systemd/user/moat-sandbox-check.service"))
        await #expect(try manager!.systemctl(["daemon-reload"]).status == 0)
        let sandboxed = try await manager!.systemctl(["start", "moat-sandbox-check"])
        let output = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(sandboxed.status == 0 && output.contains("sandboxed as 1000"), "\(sandboxed.output)\n\(output)")

        // A reboot: the manager stops (and with it moat serve, cleanly), a new one starts the enabled unit.
        await manager!.stop()
        await #expect(try Self.healthz(port) != "200")
        manager = nil
        let rebooted = try await UserSystemd(base: base)
        var answered = false
        let deadline = Date().addingTimeInterval(120)
        while !answered && Date() < deadline {
            answered = try await Self.healthz(port) == "200"
            if !answered { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(answered, "\(rebooted.managerLog)")
        await #expect(try rebooted.systemctl(["stop", "moat"]).status == 0)
        await rebooted.stop()
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "30"], home: home)
        #expect(audit.stdout.components(separatedBy: "gateway.stop").count - 1 >= 2, "\(audit.stdout)")
    }
}
