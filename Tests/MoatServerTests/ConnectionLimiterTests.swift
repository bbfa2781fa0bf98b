import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTesting
import HummingbirdWebSocket
import Logging
import MoatAdmin
import MoatApp
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatTestSupport
import NIOCore
import Testing

/// The connection cap and timeouts on a real socket, with limits small enough to reach in a test.
@Suite struct ConnectionLimiterTests {
    /// Runs the gateway's router with `limiter` on every connection and calls `body` with the port.
    /// With `upgrading`, the server is the one `moat serve` runs when the chat socket is wired: HTTP/1.1
    /// that can upgrade to a WebSocket (here it never does), whose HTTP handlers exist only once a
    /// connection's first request head is read.
    static func serve(
        _ limiter: ConnectionLimiter, idleTimeout: TimeAmount, upgrading: Bool = false,
        _ body: @escaping @Sendable (Int) async throws -> Void
    ) async throws {
        let hostGuard = HostGuard(boundAddress: IPAddress("127.0.0.1")!, port: 0, tls: false, allowedHosts: [])
        let server: HTTPServerBuilder =
            upgrading
            ? limiter.http1WebSocket(idleTimeout: idleTimeout) { _ in .dontUpgrade }
            : .http1(configuration: limiter.http1Configuration(idleTimeout: idleTimeout))
        let app = Application(
            router: GatewayApplication.makeRouter(hostGuard: hostGuard),
            server: server,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            hostGuard.setBoundPort(port)
            try await body(port)
        }
    }

    /// Whether the server closed `fd` within `seconds` (reading and discarding whatever it sent first).
    static func closedByServer(_ fd: Int32, within seconds: TimeInterval) async -> Bool {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let deadline = Date().addingTimeInterval(seconds)
                while Date() < deadline {
                    let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                    if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                        return continuation.resume(returning: true)
                    }
                    if count < 0 { usleep(50_000) }
                }
                continuation.resume(returning: false)
            }
        }
    }

    static func write(_ text: String, to fd: Int32) {
        _ = Array(text.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    @Test(
        "the cap leaves descriptors for everything else: at most 1,024, 768 at the common limit of 1,024",
        arguments: [(1024, 768), (4096, 1024), (1_048_576, 1024), (256, 128), (20, 10), (4, 8)])
    func cap(_ openFiles: Int, _ expected: Int) {
        #expect(ConnectionLimiter.cap(openFiles: openFiles) == expected)
    }

    @Test(
        "at the cap, a new connection closes the quietest idle one and is answered (plain and WebSocket-capable server)",
        arguments: [false, true])
    func evictsQuietest(upgrading: Bool) async throws {
        let limiter = ConnectionLimiter(limit: 2, logger: Logger(label: "test"))
        try await Self.serve(limiter, idleTimeout: .seconds(60), upgrading: upgrading) { port in
            let oldest = try RawHTTP.connect(port: port)
            defer { close(oldest) }
            try await Task.sleep(for: .milliseconds(300))
            let newer = try RawHTTP.connect(port: port)
            defer { close(newer) }
            try await Task.sleep(for: .milliseconds(300))
            let answer = try await RawHTTP.sendOffPool(
                RawHTTP.request(headers: [("Host", "127.0.0.1:\(port)")]), port: port)
            #expect(answer.status == 200)
            #expect(await Self.closedByServer(oldest, within: 10))
            #expect(await !Self.closedByServer(newer, within: 0.5))
        }
    }

    @Test(
        "a request head that never completes, or never starts, is closed after the idle timeout (plain and WebSocket-capable server)",
        arguments: [false, true])
    func slowHead(upgrading: Bool) async throws {
        let limiter = ConnectionLimiter(limit: 8, logger: Logger(label: "test"))
        try await Self.serve(limiter, idleTimeout: .seconds(1), upgrading: upgrading) { port in
            let fd = try RawHTTP.connect(port: port)
            defer { close(fd) }
            Self.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nX-Slow: a", to: fd)
            let silent = try RawHTTP.connect(port: port)
            defer { close(silent) }
            #expect(await Self.closedByServer(fd, within: 20))
            #expect(await Self.closedByServer(silent, within: 20))
            // A complete request on a fresh connection is still answered.
            let answer = try await RawHTTP.sendOffPool(
                RawHTTP.request(headers: [("Host", "127.0.0.1:\(port)")]), port: port)
            #expect(answer.status == 200)
        }
    }

    @Test("a request whose body does not arrive within the request-read timeout is closed")
    func slowBody() async throws {
        let limiter = ConnectionLimiter(limit: 8, requestReadTimeout: .seconds(1), logger: Logger(label: "test"))
        try await Self.serve(limiter, idleTimeout: .seconds(60)) { port in
            let fd = try RawHTTP.connect(port: port)
            defer { close(fd) }
            Self.write(
                "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 100\r\n\r\n{\"a", to: fd)
            #expect(await Self.closedByServer(fd, within: 20))
        }
    }
}
