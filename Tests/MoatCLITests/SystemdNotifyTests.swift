import Foundation
import MoatTestSupport
import Testing

/// A unix datagram socket standing in for systemd's notification socket: bound at a path or, for an
/// `@name`, in the abstract namespace, exactly as the manager binds it; it reads what arrives.
final class NotifySocket: @unchecked Sendable {
    let fd: Int32
    /// The value for `NOTIFY_SOCKET`.
    let name: String

    init(name: String) throws {
        self.name = name
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var bytes = Array(name.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        guard bound == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    deinit { close(fd) }

    /// The next datagram, or nil when none arrives within `seconds`.
    func receive(within seconds: Double = 60) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(seconds * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count < 0 ? nil : String(decoding: buffer.prefix(count), as: UTF8.self)
    }

    /// Every datagram until one contains `line` (that one included), or nil when it never comes.
    func receive(until line: String, within seconds: Double = 60) -> [String]? {
        var messages: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            guard let message = receive(within: max(0.1, deadline.timeIntervalSinceNow)) else { return nil }
            messages.append(message)
            if message.split(separator: "\n").contains(Substring(line)) { return messages }
        }
        return nil
    }
}

/// `moat serve` under a service manager: the sd_notify protocol written directly to `NOTIFY_SOCKET`.
@Suite(.serialized, .tags(.slow)) struct SystemdNotifyTests {
    static func lines(_ messages: [String]) -> [String] {
        messages.flatMap { $0.split(separator: "\n").map(String.init) }
    }

    @Test(
        "moat serve says READY=1 once /healthz answers, then WATCHDOG=1 every half WATCHDOG_USEC, then STOPPING=1 on SIGTERM"
    )
    func readyWatchdogStopping() async throws {
        let home = try await ServedHome.copy()
        let notify = try NotifySocket(name: home.file("notify.sock"))
        let server = try await RunningServer.start(
            arguments: [], home: home.path,
            extraEnvironment: ["NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "200000"])
        let ready = try #require(notify.receive(until: "READY=1"), "no READY=1; log:\n\(server.log)")
        // READY=1 is the first message, and it carries the listening address as the status line.
        #expect(ready.count == 1)
        #expect(ready[0].contains("STATUS=listening on http://127.0.0.1:\(server.port ?? 0)"))
        let health = try await HostCommand.run(
            "/usr/bin/curl",
            ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.port!)/healthz"])
        #expect(health.output == "200")
        // Two pings: the task keeps pinging, not only once.
        #expect(notify.receive(until: "WATCHDOG=1") != nil)
        #expect(notify.receive(until: "WATCHDOG=1") != nil)
        let (status, log) = await server.stop()
        #expect(status == 0, "\(log)")
        let after = Self.lines(try #require(notify.receive(until: "STOPPING=1"), "no STOPPING=1; log:\n\(log)"))
        #expect(after.allSatisfy { $0 == "WATCHDOG=1" || $0 == "STOPPING=1" }, "\(after)")
    }

    @Test("an abstract NOTIFY_SOCKET (@name) gets READY=1 and STOPPING=1; without WATCHDOG_USEC no ping is sent")
    func abstractSocketWithoutWatchdog() async throws {
        let home = try await ServedHome.copy()
        let notify = try NotifySocket(name: "@moat-notify-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let server = try await RunningServer.start(
            arguments: [], home: home.path, extraEnvironment: ["NOTIFY_SOCKET": notify.name])
        #expect(notify.receive(until: "READY=1") != nil, "\(server.log)")
        let (status, log) = await server.stop()
        #expect(status == 0, "\(log)")
        let rest = try #require(notify.receive(until: "STOPPING=1"), "no STOPPING=1; log:\n\(log)")
        #expect(!Self.lines(rest).contains("WATCHDOG=1"))
    }

    @Test("a WATCHDOG_USEC meant for another process (WATCHDOG_PID) is ignored: READY=1 and STOPPING=1, never a ping")
    func watchdogForAnotherProcess() async throws {
        let home = try await ServedHome.copy()
        let notify = try NotifySocket(name: home.file("notify.sock"))
        let server = try await RunningServer.start(
            arguments: [], home: home.path,
            extraEnvironment: ["NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "20000", "WATCHDOG_PID": "1"])
        #expect(notify.receive(until: "READY=1") != nil, "\(server.log)")
        // Pinging every 10 ms, the server would have sent many pings while /healthz answers twice.
        for _ in 0..<2 {
            let health = try await HostCommand.run(
                "/usr/bin/curl",
                ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.port!)/healthz"])
            #expect(health.output == "200")
        }
        let (status, log) = await server.stop()
        #expect(status == 0, "\(log)")
        let rest = try #require(notify.receive(until: "STOPPING=1"), "no STOPPING=1; log:\n\(log)")
        #expect(!Self.lines(rest).contains("WATCHDOG=1"))
    }

    @Test("a NOTIFY_SOCKET Moat cannot use (vsock:, relative) is logged with the reason and the server still serves")
    func unusableSocket() async throws {
        let home = try await ServedHome.copy()
        let server = try await RunningServer.start(
            arguments: [], home: home.path, extraEnvironment: ["NOTIFY_SOCKET": "vsock:2:1234"])
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(log.contains("not telling the service manager of readiness"))
        #expect(log.contains("neither an absolute path nor an abstract name"))
    }
}
