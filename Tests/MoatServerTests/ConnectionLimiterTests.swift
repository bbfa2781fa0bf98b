import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import MoatAdmin
import MoatApp
import MoatConfig
import MoatConsole
import MoatCore
import MoatNet
import MoatTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import ServiceLifecycle
import Testing

@testable import MoatHTTP

/// The connection cap and timeouts on a real socket, with limits small enough to reach in a test.
@Suite(.promptScheduling) struct ConnectionLimiterTests {
    /// Runs the gateway's router with `limiter` on every connection and calls `body` with the port.
    /// With `upgrading`, the server is the one `moat serve` runs when the chat socket is wired: HTTP/1.1
    /// that can upgrade to a WebSocket (here it never does), whose HTTP handlers exist only once a
    /// connection's first request head is read. No connection but the test's own reaches the server
    /// (a test client would open one whenever its event loop got to it, and be counted).
    static func serve(
        _ limiter: ConnectionLimiter, idleTimeout: TimeAmount, upgrading: Bool = false,
        _ body: @escaping @Sendable (Int) async throws -> Void
    ) async throws {
        let hostGuard = HostGuard(boundAddress: IPAddress("127.0.0.1")!, port: 0, tls: false, allowedHosts: [])
        let server: HTTPServerBuilder =
            upgrading
            ? limiter.http1WebSocket(idleTimeout: idleTimeout) { _ in .dontUpgrade }
            : .http1(configuration: limiter.http1Configuration(idleTimeout: idleTimeout))
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: GatewayApplication.makeRouter(hostGuard: hostGuard),
            server: server,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { portSink.yield($0.localAddress?.port ?? 0) })
        let services = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var running = ports.makeAsyncIterator()
            do {
                let port = try #require(await running.next())
                hostGuard.setBoundPort(port)
                try await body(port)
            } catch {
                await services.triggerGracefulShutdown()
                throw error
            }
            await services.triggerGracefulShutdown()
        }
    }

    /// A connection to `port`, returned once `limiter` counts `open` connections: the server admits a
    /// connection when its event loop gets to it, which on a loaded machine can be seconds after the
    /// kernel accepted it (a wait, bounded only to end a broken run).
    static func connect(port: Int, thenOpen open: Int, in limiter: ConnectionLimiter) async throws -> Int32 {
        let fd = try await offCooperativePool { try RawHTTP.connect(port: port) }
        for _ in 0..<6000 where limiter.openCount != open {
            try await Task.sleep(for: .milliseconds(20))
        }
        let admitted = limiter.openCount == open
        if !admitted { close(fd) }
        try #require(admitted, "the server did not admit the connection: \(limiter.openCount) open, not \(open)")
        return fd
    }

    /// Whether the server closed `fd` within `seconds` (reading and discarding whatever it sent first).
    static func closedByServer(_ fd: Int32, within seconds: TimeInterval) async -> Bool {
        let closed = try? await offCooperativePool {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let deadline = Date().addingTimeInterval(seconds)
            while deadline.timeIntervalSinceNow > 0 {
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, Int32(min(deadline.timeIntervalSinceNow, 1) * 1000)) > 0 else { continue }
                let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return true }
            }
            return false
        }
        return closed ?? false
    }

    /// Sends `request` on the open connection `fd` and reads the answer until the server closes.
    static func exchange(_ request: String, on fd: Int32) async throws -> String {
        write(request, to: fd)
        return try await offCooperativePool {
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while case let count = read(fd, &buffer, buffer.count), count > 0 {
                received += buffer[0..<count]
            }
            return String(decoding: received, as: UTF8.self)
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
            let request = RawHTTP.request(headers: [("Host", "127.0.0.1:\(port)")])
            let oldest = try await Self.connect(port: port, thenOpen: 1, in: limiter)
            defer { close(oldest) }
            let newer = try await Self.connect(port: port, thenOpen: 2, in: limiter)
            defer { close(newer) }
            let answer = try await RawHTTP.sendOffPool(request, port: port)
            #expect(answer.status == 200)
            #expect(await Self.closedByServer(oldest, within: 120))
            // The newer idle connection was kept: a request on it is still answered.
            let onNewer = try await Self.exchange(request, on: newer)
            #expect(onNewer.hasPrefix("HTTP/1.1 200 "), "\(onNewer.prefix(80))")
        }
    }

    /// Accepts an in-memory connection through `handlers`; `HeldClose` first, so a close the limiter
    /// asks for is recorded and held back (as on a real connection whose event loop has not run it yet).
    static func accept(_ handlers: [any ChannelHandler]) throws -> (EmbeddedChannel, HeldClose) {
        let held = HeldClose()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([held] + handlers)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, held)
    }

    @Test(
        "a connection evicted while its first request head is read is not admitted again when its HTTP handlers are added (which closed a second idle connection)"
    )
    func evictedNotReadmitted() throws {
        let limiter = ConnectionLimiter(limit: 1, logger: Logger(label: "test"))
        let (first, firstClose) = try Self.accept([FirstRequestGuard(limiter, headTimeout: .seconds(60))])
        let (_, secondClose) = try Self.accept([FirstRequestGuard(limiter, headTimeout: .seconds(60))])
        #expect(firstClose.asked == 1, "at the cap, the idle first connection is closed for the second")
        // The first connection's head was read before its close ran: the WebSocket-capable server adds
        // the HTTP handlers.
        try first.pipeline.syncOperations.addHandler(ConnectionLimitHandler(limiter))
        #expect(secondClose.asked == 0, "the second connection was closed for a connection already evicted")
        #expect(limiter.openCount == 1)
    }

    @Test("a connection held open (an upgraded chat socket) is never the one closed to make room")
    func heldOpenNotEvicted() throws {
        let limiter = ConnectionLimiter(limit: 1, logger: Logger(label: "test"))
        let (socket, socketClose) = try Self.accept([FirstRequestGuard(limiter, headTimeout: .seconds(60))])
        limiter.holdOpen(socket)
        socket.embeddedEventLoop.run()
        let (_, newClose) = try Self.accept([FirstRequestGuard(limiter, headTimeout: .seconds(60))])
        #expect(socketClose.asked == 0 && newClose.asked == 0, "past the cap while every connection is busy")
        #expect(limiter.openCount == 2)
        // Not held: the idle one is closed for the next.
        let (_, thirdClose) = try Self.accept([FirstRequestGuard(limiter, headTimeout: .seconds(60))])
        #expect(newClose.asked == 1 && socketClose.asked == 0 && thirdClose.asked == 0)
    }

    @Test(
        "hundreds of connections opened and closed leave none counted, and at the cap the connection touched longest ago is closed, not one touched since (plain and WebSocket-capable handlers)",
        arguments: [false, true])
    func churnThenEvict(upgrading: Bool) throws {
        let limiter = ConnectionLimiter(limit: 2, logger: Logger(label: "test"))
        func handlers() -> [any ChannelHandler] {
            upgrading
                ? [FirstRequestGuard(limiter, headTimeout: .seconds(60)), ConnectionLimitHandler(limiter)]
                : [ConnectionLimitHandler(limiter)]
        }
        for _ in 0..<300 {
            let (channel, held) = try Self.accept(handlers())
            held.holding = false
            try channel.close().wait()
        }
        #expect(limiter.openCount == 0)
        let (older, olderClose) = try Self.accept(handlers())
        let (_, newerClose) = try Self.accept(handlers())
        // A request part on the older connection after the newer one connected: now the newer one has
        // been quiet longest.
        let context = try older.pipeline.syncOperations.context(handlerType: ConnectionLimitHandler.self)
        let head = HTTPRequestPart.head(HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/"))
        (context.handler as? ConnectionLimitHandler)?.channelRead(context: context, data: NIOAny(head))
        let (_, thirdClose) = try Self.accept(handlers())
        #expect(newerClose.asked == 1)
        #expect(olderClose.asked == 0 && thirdClose.asked == 0)
        #expect(limiter.openCount == 2)
    }

    @Test(
        "a request head that never completes, or never starts, is closed after the idle timeout (plain and WebSocket-capable server)",
        arguments: [false, true])
    func slowHead(upgrading: Bool) async throws {
        let limiter = ConnectionLimiter(limit: 8, logger: Logger(label: "test"))
        try await Self.serve(limiter, idleTimeout: .seconds(1), upgrading: upgrading) { port in
            let fd = try await offCooperativePool { try RawHTTP.connect(port: port) }
            defer { close(fd) }
            Self.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nX-Slow: a", to: fd)
            let silent = try await offCooperativePool { try RawHTTP.connect(port: port) }
            defer { close(silent) }
            #expect(await Self.closedByServer(fd, within: 120))
            #expect(await Self.closedByServer(silent, within: 120))
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
            let fd = try await offCooperativePool { try RawHTTP.connect(port: port) }
            defer { close(fd) }
            Self.write(
                "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 100\r\n\r\n{\"a", to: fd)
            #expect(await Self.closedByServer(fd, within: 120))
        }
    }
}

/// Records the closes asked of a connection and, while `holding`, holds them back.
final class HeldClose: ChannelOutboundHandler {
    typealias OutboundIn = Any
    private(set) var asked = 0
    var holding = true

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        asked += 1
        if holding {
            promise?.fail(ChannelError.alreadyClosed)
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}
