import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP server on 127.0.0.1 that echoes each request back: its request line, every header and the
/// body, in the response body, and the `Authorization` and `X-Api-Key` values in response headers (as a
/// careless or hostile API would). It records every request it received, as received.
final class EchoServer: Sendable {
    let received = Mutex<[String]>([])
    private let channel = Mutex<(any Channel)?>(nil)

    /// Starts on a free port and returns it.
    func start() async throws -> Int {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(server: self))
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

    var requests: [String] { received.withLock { $0 } }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let server: EchoServer
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(server: EchoServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var part):
                body.writeBuffer(&part)
            case .end:
                respond(context: context)
            }
        }

        func respond(context: ChannelHandlerContext) {
            guard let head else { return }
            var text = "\(head.method.rawValue) \(head.uri)\n"
            for (name, value) in head.headers { text += "\(name): \(value)\n" }
            text += "\n" + String(buffer: body)
            server.received.withLock { $0.append(text) }
            var headers = HTTPHeaders()
            var status = HTTPResponseStatus.ok
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            for name in ["Authorization", "X-Api-Key"] {
                if let value = head.headers[name].first { headers.add(name: "X-Echo-\(name)", value: value) }
            }
            if head.uri == "/redirect" {
                status = .temporaryRedirect
                headers.add(name: "Location", value: "http://169.254.169.254/latest/meta-data/")
            }
            if head.uri == "/binary" {
                headers.replaceOrAdd(name: "Content-Type", value: "application/octet-stream")
            }
            let bytes =
                head.uri == "/binary" ? ByteBuffer(bytes: [0x68, 0x69, 0xff, 0xfe, 0x21]) : ByteBuffer(string: text)
            headers.add(name: "Content-Length", value: String(bytes.readableBytes))
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
