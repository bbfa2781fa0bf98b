import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 server on a loopback address (any of 127.0.0.0/8 works on Linux without setup), for
/// tests of what the agent's web tools send and receive: it records every request as it arrived and
/// answers each with what `respond` returns.
///
/// Two of them on different loopback addresses stand for two hosts (a secret's policy names hosts, not
/// ports), so a test can show that one receives a secret and the other nothing.
public final class LoopbackHTTPServer: Sendable {
    /// One request as it arrived.
    public struct Request: Sendable {
        public let method: String
        public let target: String
        public let headers: [(name: String, value: String)]
        public let body: String

        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        /// The request line, every header and the body, as one text (for "this never arrived here").
        public var text: String {
            "\(method) \(target)\n" + headers.map { "\($0.name): \($0.value)\n" }.joined() + "\n" + body
        }
    }

    /// What the server answers.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public init(status: Int = 200, headers: [(name: String, value: String)] = [], body: String) {
            self.init(status: status, headers: headers, bytes: Array(body.utf8))
        }

        /// A body of any bytes (not necessarily UTF-8).
        public init(status: Int = 200, headers: [(name: String, value: String)] = [], bytes: [UInt8]) {
            self.status = status
            self.headers = headers
            self.body = bytes
        }
    }

    public let host: String
    public let port: Int
    /// `http://HOST:PORT`.
    public var origin: String { "http://\(host):\(port)" }

    private let channel: any Channel
    private let received = Mutex<[Request]>([])
    private let respond: @Sendable (Request) -> Response

    /// Starts on a free port of `host`.
    public static func start(
        host: String = "127.0.0.1", respond: @escaping @Sendable (Request) -> Response
    ) async throws -> LoopbackHTTPServer {
        let box = Mutex<LoopbackHTTPServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(server: box.withLock { $0 }))
                }
            }
            .bind(host: host, port: 0)
            .get()
        let server = LoopbackHTTPServer(host: host, channel: channel, respond: respond)
        box.withLock { $0 = server }
        return server
    }

    private init(host: String, channel: any Channel, respond: @escaping @Sendable (Request) -> Response) {
        self.host = host
        self.port = channel.localAddress?.port ?? 0
        self.channel = channel
        self.respond = respond
    }

    public func stop() async {
        try? await channel.close()
    }

    /// Every request so far, first to last.
    public var requests: [Request] { received.withLock { $0 } }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let server: LoopbackHTTPServer?
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(server: LoopbackHTTPServer?) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var part):
                guard body.readableBytes + part.readableBytes <= 1 << 20 else {
                    context.close(promise: nil)
                    return
                }
                body.writeBuffer(&part)
            case .end:
                guard let head, let server else { return }
                let request = Request(
                    method: head.method.rawValue, target: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                    body: String(buffer: body))
                server.received.withLock { $0.append(request) }
                let response = server.respond(request)
                var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
                headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
                if !head.isKeepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
                let status = HTTPResponseStatus(statusCode: response.status)
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                    promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
                let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                if !head.isKeepAlive {
                    let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                    done.whenComplete { _ in loopBound.value.close(promise: nil) }
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
