import Foundation
import MoatCore
import MoatTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import Testing

@testable import MoatNet

/// A small HTTP(S) server on 127.0.0.1 that records what reaches it.
final class RecordingServer: Sendable {
    let seen = Mutex<[String]>([])
    let serverNames = Mutex<[String]>([])
    /// Client connections that have closed.
    let closed = Mutex(0)
    private let channel = Mutex<(any Channel)?>(nil)

    /// Starts on a free port; with `tls`, serves that certificate and records each client's SNI.
    func start(tls: NIOSSLContext? = nil) async throws -> Int {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let http: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(Responder(server: self))
                    }
                }
                guard let tls else { return http(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    let sni = ByteToMessageHandler(
                        SNIHandler { result in
                            if case .hostname(let name) = result { self.serverNames.withLock { $0.append(name) } }
                            return channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                            }.flatMap { http(channel) }
                        })
                    try channel.pipeline.syncOperations.addHandler(sni)
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        channel.withLock { $0 = server }
        return server.localAddress?.port ?? 0
    }

    func stop() async {
        try? await channel.withLock { $0 }?.close()
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let server: RecordingServer
        var path = ""
        var received = 0

        init(server: RecordingServer) { self.server = server }

        func channelInactive(context: ChannelHandlerContext) {
            server.closed.withLock { $0 += 1 }
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                path = head.uri
                received = 0
                server.seen.withLock {
                    $0.append("\(head.method.rawValue) \(head.uri) Host=\(head.headers["Host"].first ?? "")")
                }
            case .body(let part):
                received += part.readableBytes
            case .end:
                respond(context: context)
            }
        }

        func respond(context: ChannelHandlerContext) {
            var status = HTTPResponseStatus.ok
            var headers = HTTPHeaders()
            var body = ByteBuffer(string: "hello from \(path)")
            switch path {
            case "/silent":
                return
            case "/redirect":
                status = .found
                headers.add(name: "Location", value: "http://169.254.169.254/latest/meta-data/")
                body = ByteBuffer()
            case "/echo-length":
                body = ByteBuffer(string: "received \(received) bytes")
            case "/big":
                body = ByteBuffer(repeating: UInt8(ascii: "x"), count: 6 << 20)
            default:
                break
            }
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

struct GuardRefused: Error {
    let url: String
}

@Suite(.promptScheduling) struct PinnedHTTPTransportTests {
    /// A guard that resolves only the test names, to 127.0.0.1, and allows them despite loopback.
    static func guardrail(port: Int) -> URLGuard {
        URLGuard(
            settings: SSRFSettings(allowHosts: ["rebind.test", "fetch.test", "127.0.0.1"], allowPorts: [port]),
            resolver: AddressResolver { name in
                ["rebind.test", "fetch.test"].contains(name) ? [IPAddress("127.0.0.1")!] : []
            })
    }

    static func checked(_ url: String, port: Int) async throws -> CheckedURL {
        guard case .allow(let checked) = await guardrail(port: port).check(url) else {
            throw GuardRefused(url: url)
        }
        return checked
    }

    /// A self-signed certificate for `name` (it is its own trust root in the tests).
    static func certificate(_ name: String, in directory: TemporaryDirectory, extra: [String] = []) async throws
        -> (NIOSSLCertificate, NIOSSLPrivateKey)
    {
        let cert = directory.file("\(name).crt")
        let key = directory.file("\(name).key")
        try await offCooperativePool {
            let process = try ChildProcess(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    key, "-out", cert, "-days", "2", "-subj", "/CN=\(name)", "-addext", "subjectAltName=DNS:\(name)",
                ])
            process.waitUntilExit()
        }
        return (try NIOSSLCertificate(file: cert, format: .pem), try NIOSSLPrivateKey(file: key, format: .pem))
    }

    static func serverContext(_ certificate: NIOSSLCertificate, _ key: NIOSSLPrivateKey, tls11Only: Bool = false)
        throws -> NIOSSLContext
    {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(certificate)], privateKey: .privateKey(key))
        if tls11Only {
            configuration.minimumTLSVersion = .tlsv1
            configuration.maximumTLSVersion = .tlsv11
        }
        return try NIOSSLContext(configuration: configuration)
    }

    static func failure(_ body: () async throws -> FetchResponse) async -> String? {
        do {
            _ = try await body()
            return nil
        } catch let error as NetError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test(
        "a cancelled request closes its connection at once, not at the time limit (a channel stopped by a config reload during a long poll)"
    )
    func cancelledRequestCloses() async throws {
        let server = RecordingServer()
        let port = try await server.start()
        defer { Task { await server.stop() } }
        var limits = PinnedHTTPTransport.Limits()
        limits.totalTimeout = .seconds(90)
        let transport = try PinnedHTTPTransport(limits: limits)
        let target = try await Self.checked("http://rebind.test:\(port)/silent", port: port)
        let request = Task { try await transport.send(target, method: "GET", headers: []) }
        for _ in 0..<6000 where server.seen.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.closed.withLock { $0 } == 0)
        request.cancel()
        // Ended by the cancellation, not by the time limit (which a transport deaf to it waits out).
        let error = await #expect(throws: NetError.self) { try await request.value }
        #expect(error?.message.contains("time limit") == false, "\(String(describing: error))")
        for _ in 0..<6000 where server.closed.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.closed.withLock { $0 } == 1)
    }

    @Test("plain HTTP: the connection goes to the checked address, Host is the name, nothing resolves again")
    func pinnedPlain() async throws {
        let server = RecordingServer()
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let transport = try PinnedHTTPTransport()
        // rebind.test resolves nowhere: only the pinned address can have been used.
        let target = try await Self.checked("http://rebind.test:\(port)/ok?x=1", port: port)
        let response = try await transport.send(target, method: "GET", headers: [("X-Test", "1")])
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "hello from /ok?x=1")
        #expect(server.seen.withLock { $0 } == ["GET /ok?x=1 Host=rebind.test:\(port)"])
        // A redirect comes back unfollowed.
        let redirect = try await transport.send(
            try await Self.checked("http://rebind.test:\(port)/redirect", port: port), method: "GET", headers: [])
        #expect(redirect.status == 302 && redirect.header("location") == "http://169.254.169.254/latest/meta-data/")
        // Too large, and too slow.
        let big = await Self.failure {
            try await transport.send(
                try await Self.checked("http://rebind.test:\(port)/big", port: port), method: "GET", headers: [])
        }
        #expect(big?.contains("larger than 5 MiB") == true)
        // Only the silent case gets a short total time limit.
        var limits = PinnedHTTPTransport.Limits()
        limits.totalTimeout = .seconds(2)
        let impatient = try PinnedHTTPTransport(limits: limits)
        let silent = await Self.failure {
            try await impatient.send(
                try await Self.checked("http://rebind.test:\(port)/silent", port: port), method: "GET", headers: [])
        }
        #expect(silent?.contains("did not answer within the time limit") == true)
    }

    @Test(
        "a reader that pauses for longer than the idle limit is not a silent server: the whole body arrives, unchanged"
    )
    func slowReaderIsNotSilence() async throws {
        // 2 MiB: far more than the stream buffers before its back-pressure stops the channel's reads.
        // Made at the lowest priority: in a debug build it is half a second of CPU, and this suite's
        // high-priority threads are shared by every test in it.
        let body = await atLowestPriority {
            (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        }
        let server = try await LoopbackHTTPServer.start { _ in LoopbackHTTPServer.Response(bytes: body) }
        defer { Task { await server.stop() } }
        let target = try await Self.checked("http://127.0.0.1:\(server.port)/large", port: server.port)
        var limits = PinnedHTTPTransport.StreamLimits()
        // Long enough that a loaded 2-core machine does not stall the server's writes that long once the
        // reader goes on (it did at 1 s); the pause is twice it.
        limits.idleTimeout = .seconds(5)
        let received = try await PinnedHTTPTransport().stream(target, method: "GET", headers: [], limits: limits) {
            response in
            var bytes: [UInt8] = []
            var paused = false
            for try await chunk in response.body {
                bytes += chunk
                guard !paused else { continue }
                paused = true
                // The server has sent what the connection takes; the reader is the slow one here.
                try await Task.sleep(for: .seconds(10))
            }
            return bytes
        }
        let unchanged = await atLowestPriority { received == body }
        #expect(unchanged, "\(received.count) of \(body.count) bytes, or changed")
    }

    @Test("a request body is sent with its Content-Length; none is sent without one")
    func requestBody() async throws {
        let server = RecordingServer()
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let transport = try PinnedHTTPTransport()
        let target = try await Self.checked("http://rebind.test:\(port)/echo-length", port: port)
        let posted = try await transport.send(target, method: "POST", headers: [], body: Array("0123456789".utf8))
        #expect(String(decoding: posted.body, as: UTF8.self) == "received 10 bytes")
        let plain = try await transport.send(target, method: "GET", headers: [])
        #expect(String(decoding: plain.body, as: UTF8.self) == "received 0 bytes")
    }

    @Test("with GuardedFetcher: a redirect to the metadata address is refused before any connection")
    func guardedRedirect() async throws {
        let server = RecordingServer()
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let fetcher = GuardedFetcher(guardrail: Self.guardrail(port: port), transport: try PinnedHTTPTransport())
        do {
            _ = try await fetcher.fetch("http://rebind.test:\(port)/redirect")
            Issue.record("the redirect to 169.254.169.254 was followed")
        } catch {
            #expect(error.code == .urlRefused)
            #expect(error.message.contains("169.254.169.254"))
        }
        #expect(server.seen.withLock { $0 }.count == 1)
        let ok = try await fetcher.fetch("http://rebind.test:\(port)/ok")
        #expect(ok.response.status == 200 && ok.visited.count == 1)
    }

    @Test("HTTPS: SNI and certificate checks by name; unknown root, wrong name and TLS 1.1 fail")
    func tls() async throws {
        let directory = TemporaryDirectory("moat-pinned-tls")
        let (certificate, key) = try await Self.certificate("fetch.test", in: directory)
        let (otherCertificate, otherKey) = try await Self.certificate("other.test", in: directory)

        let server = RecordingServer()
        let port = try await server.start(tls: try Self.serverContext(certificate, key))
        defer { Task { await server.stop() } }
        let target = try await Self.checked("https://fetch.test:\(port)/secure", port: port)
        let trusting = try PinnedHTTPTransport(additionalTrustRoots: [certificate])
        let response = try await trusting.send(target, method: "GET", headers: [])
        #expect(response.status == 200 && String(decoding: response.body, as: UTF8.self) == "hello from /secure")
        #expect(server.serverNames.withLock { $0 } == ["fetch.test"])

        let untrusting = try PinnedHTTPTransport()
        let unknownRoot = await Self.failure { try await untrusting.send(target, method: "GET", headers: []) }
        #expect(
            unknownRoot?.contains("TLS with fetch.test failed") == true || unknownRoot?.contains("fetch.test") == true)
        #expect(unknownRoot != nil)
        // The system's roots are one context per process, shared by every transport; a transport with extra
        // roots has its own, and they never reach the shared one (the refusal above came after it was made).
        #expect(untrusting.tls === (try PinnedHTTPTransport()).tls)
        #expect(trusting.tls !== untrusting.tls)

        let wrongName = RecordingServer()
        let wrongPort = try await wrongName.start(tls: try Self.serverContext(otherCertificate, otherKey))
        defer { Task { await wrongName.stop() } }
        let both = try PinnedHTTPTransport(additionalTrustRoots: [certificate, otherCertificate])
        let mismatch = await Self.failure {
            try await both.send(
                try await Self.checked("https://fetch.test:\(wrongPort)/", port: wrongPort), method: "GET", headers: [])
        }
        #expect(mismatch != nil)
        #expect(wrongName.seen.withLock { $0 }.isEmpty)

        let old = RecordingServer()
        let oldPort = try await old.start(tls: try Self.serverContext(certificate, key, tls11Only: true))
        defer { Task { await old.stop() } }
        let tooOld = await Self.failure {
            try await trusting.send(
                try await Self.checked("https://fetch.test:\(oldPort)/", port: oldPort), method: "GET", headers: [])
        }
        #expect(tooOld != nil)
        #expect(old.seen.withLock { $0 }.isEmpty)

        // An https URL naming a bare IP address is refused: no name to check the certificate against.
        let literal = try await Self.checked("https://127.0.0.1:\(port)/", port: port)
        let bare = await Self.failure { try await trusting.send(literal, method: "GET", headers: []) }
        #expect(bare?.contains("bare IP address") == true)
    }
}
