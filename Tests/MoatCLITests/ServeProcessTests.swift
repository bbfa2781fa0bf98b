import Foundation
import MoatCore
import MoatTestSupport
import MoatVault
import Testing

/// What the `moat serve` process itself withstands: memory readers and descriptor exhaustion.
@Suite(.serialized, .tags(.slow)) struct ServeProcessTests {
    /// As root, run a command without `CAP_SYS_PTRACE`: with it, root may read any process's memory
    /// whatever the process asked for. Run as another user, nothing is needed.
    static var withoutPtrace: [String] {
        getuid() == 0 ? ["/usr/bin/setpriv", "--bounding-set=-sys_ptrace", "--"] : []
    }

    /// A state directory with an owner and a `read` API token (set up offline, before the test's server).
    static func installation(_ temp: TemporaryDirectory) async throws -> (home: String, token: String) {
        let home = temp.file("home")
        _ = try await RunningServer.start(arguments: [], home: home).stop()
        let setup = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home, stdin: "a long owner passphrase\n")
        try #require(setup.status == 0, "\(setup.stderr)")
        let created = try await MoatBinary.run(["token", "create", "probe", "--scope", "read"], home: home)
        try #require(created.status == 0, "\(created.stderr)")
        return (home, created.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Runs `argv` (through ``withoutPtrace`` unless `asIs`) and returns its exit status.
    static func status(_ argv: [String], asIs: Bool = false) async throws -> Int32 {
        let command = asIs ? argv : withoutPtrace + argv
        return try await offCooperativePool {
            let process = try ChildProcess(command[0], Array(command.dropFirst()))
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    /// The line of `/proc/PID/limits` that starts with `name`, its columns split.
    static func limit(_ name: String, pid: Int32) throws -> [String] {
        let text = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        let line = text.split(separator: "\n").first { $0.hasPrefix(name) } ?? ""
        return line.dropFirst(name.count).split(separator: " ").map(String.init)
    }

    @Test(
        "moat serve is non-dumpable: a process of its own user can neither open its memory nor gcore it, and its core limit is 0"
    )
    func nonDumpable() async throws {
        let temp = TemporaryDirectory()
        let server = try await RunningServer.start(arguments: [], home: temp.file("home"), launcher: Self.withoutPtrace)
        let pid = server.process.processIdentifier
        // /proc/PID/mem is what debuggers and gcore read; the kernel lets a process of the same user
        // (without CAP_SYS_PTRACE) open it only while the target is dumpable.
        #expect(try await Self.status(["/bin/sh", "-c", "exec 3</proc/\(pid)/mem"]) != 0)
        #expect(try Self.limit("Max core file size", pid: pid).prefix(2) == ["0", "0"])
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/gcore") {
            let core = temp.file("core")
            _ = try await Self.status(["/usr/bin/timeout", "60", "/usr/bin/gcore", "-o", core, "\(pid)"])
            #expect(!FileManager.default.fileExists(atPath: "\(core).\(pid)"), "gcore wrote a dump of moat serve")
        }
        await #expect(server.stop().status == 0)
    }

    @Test("a CLI command is non-dumpable too, from before it reads anything")
    func cliNonDumpable() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        _ = try await RunningServer.start(arguments: [], home: home).stop()
        // `moat owner setup` waits for the password on its standard input: a live CLI process to look at.
        let command = Self.withoutPtrace + [MoatBinary.path, "owner", "setup", "--owner-password-stdin"]
        let input = Pipe()
        let process = try ChildProcess(
            command[0], Array(command.dropFirst()), environment: MoatBinary.environment(home: home),
            standardInput: .pipe(input))
        let pid = process.processIdentifier
        // Wait for the hardening itself (an event, not a guessed time): moat makes itself non-dumpable,
        // then sets its core limit to 0, before it reads any input.
        let deadline = Date().addingTimeInterval(60)
        while (try? Self.limit("Max core file size", pid: pid).prefix(2)) != ["0", "0"] && Date() < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(process.isRunning)
        #expect(try await Self.status(["/bin/sh", "-c", "exec 3</proc/\(pid)/mem"]) != 0)
        #expect(try Self.limit("Max core file size", pid: pid).prefix(2) == ["0", "0"])
        try input.fileHandleForWriting.close()
        await offCooperativePool { process.waitUntilExit() }
    }

    @Test(
        "a core dump root takes of moat serve holds none of the long-lived vault keys (audit seed and HMAC key, row-MAC keys)",
        .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/gcore"))
    )
    func dumpLacksKeys() async throws {
        let temp = TemporaryDirectory()
        let (home, token) = try await Self.installation(temp)
        let server = try await RunningServer.start(arguments: [], home: home)
        let port = try #require(server.port)
        // Use the keys: an authenticated request (token lookup, row MACs) and refusals (audit entries).
        let session = try await RawHTTP.send(
            RawHTTP.request(
                "GET", "/api/auth/session",
                headers: [("Host", "127.0.0.1:\(port)"), ("Authorization", "Bearer \(token)")]),
            port: port)
        #expect(session.status == 200)
        let pid = server.process.processIdentifier
        let core = temp.file("core")
        // As root, with CAP_SYS_PTRACE: the dump is taken whatever the process asked for; what it holds is
        // what MADV_DONTDUMP and short-lived crypto copies leave out.
        let status = try await Self.status(
            ["/usr/bin/timeout", "120", "/usr/bin/gcore", "-o", core, "\(pid)"], asIs: true)
        try #require(status == 0, "gcore failed")
        let dumpPath = "\(core).\(pid)"
        // The binary sealed with the tests' own systemd host key (MoatBinary.environment): open it with the same.
        let machine = SealMachine(
            fingerprint: .current(),
            hostKey: SystemdCredentials.installed().map {
                SystemdCredentials(tool: $0.tool, hostKeyFile: MoatBinary.testHostKey, useTPM: $0.useTPM)
            })
        // Searching a dump of hundreds of MiB takes seconds of CPU: on a thread of its own, not a cooperative one.
        let (size, checked, found) = try await atLowestPriority {
            let dump = try Data(contentsOf: URL(fileURLWithPath: dumpPath), options: .alwaysMapped)
            let vault = try UnlockedVault.unseal(paths: VaultPaths(stateDirectory: home), pin: nil, machine: machine)
            var checked: [String] = []
            var found: [String] = []
            for name in [
                "MOAT_AUDIT_SIGNING_KEY", "MOAT_AUDIT_FINGERPRINT_KEY", "MOAT_AUTH_MAC_KEY", "MOAT_POLICY_MAC_KEY",
            ] {
                guard let key = try vault.value(named: name) else { continue }
                let bytes = key.withUnsafeBytes { Data($0) }
                if bytes.count >= 32 { checked.append(name) }
                if dump.range(of: bytes) != nil { found.append(name) }
            }
            return (dump.count, checked, found)
        }
        #expect(size > 1_000_000)
        #expect(!checked.isEmpty, "no key of 32 bytes or more was checked")
        #expect(found.isEmpty, "\(found) in the core dump")
        await #expect(server.stop().status == 0)
    }

    @Test("serve raises its soft open-file limit to the hard limit and caps connections below it")
    func raisesOpenFileLimit() async throws {
        let temp = TemporaryDirectory()
        let server = try await RunningServer.start(
            arguments: [], home: temp.file("home"), launcher: ["/usr/bin/prlimit", "--nofile=1024:4096", "--"])
        #expect(try Self.limit("Max open files", pid: server.process.processIdentifier).prefix(2) == ["4096", "4096"])
        #expect(server.log.contains(#""max_connections":"1024""#), "\(server.log)")
        await #expect(server.stop().status == 0)
    }

    @Test(
        "1,100 held connections with pipelined requests at a 1,024 open-file limit: serve stays up, answers the owner, logs the refusals and closes idle connections"
    )
    func heldConnections() async throws {
        let temp = TemporaryDirectory()
        let (home, token) = try await Self.installation(temp)
        let server = try await RunningServer.start(
            arguments: [], home: home, launcher: ["/usr/bin/prlimit", "--nofile=1024:1024", "--"])
        let port = try #require(server.port)
        // The attack: 1,100 held connections, each with pipelined unauthenticated requests whose answers are
        // never read. They are held by a child process (moat-test-helper), not by this one, where 1,100 more
        // descriptors would crowd the other tests' in-process servers.
        let request = "GET /api/tokens HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n"
        let holder = try WatchedProcess(
            MoatBinary.helperPath, ["hold-connections", "\(port)", "1100", request + request])
        #expect(await holder.waitForLines(within: 180) { $0.contains("sent") }, "\(holder.lines)")
        let opened = holder.lines.first { $0.hasPrefix("opened ") }.flatMap { Int($0.dropFirst(7)) } ?? 0
        #expect(opened > 1_000, "only \(opened) connections opened")

        let health = try await RawHTTP.send(RawHTTP.request(headers: [("Host", "127.0.0.1:\(port)")]), port: port)
        #expect(health.status == 200)
        let session = try await RawHTTP.send(
            RawHTTP.request(
                "GET", "/api/auth/session",
                headers: [("Host", "127.0.0.1:\(port)"), ("Authorization", "Bearer \(token)")]),
            port: port)
        #expect(session.status == 200, "\(session.body)")
        #expect(server.process.isRunning)
        #expect(server.log.contains("connection limit reached"), "the refusals were not logged")

        // Idle connections do not stay: every held one is closed by the server (30 s idle timeout); the
        // holder waits up to 120 s and prints how many are still open.
        #expect(await holder.waitForLines(within: 240) { $0.contains { $0.hasPrefix("open ") } }, "\(holder.lines)")
        #expect(holder.lines.last == "open 0", "idle connections still open after 120 s: \(holder.lines)")
        _ = await holder.kill()
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(log.contains("\"stopped\""))
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "5"], home: home)
        #expect(audit.stdout.contains("gateway.stop"), "\(audit.stdout)\(audit.stderr)")
    }
}
