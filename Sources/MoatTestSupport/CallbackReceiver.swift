import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A webhook bridge's callback endpoint for tests: a real HTTP/1.1 server on 127.0.0.1 that records
/// every request and answers each with the next status of its script (200 once the script is empty).
public final class CallbackReceiver: Sendable {
    public let port: Int
    /// `http://127.0.0.1:PORT/moat`, a webhook's `callback_url`.
    public var url: String { "http://127.0.0.1:\(port)/moat" }

    private let channel: any Channel
    private let state: Mutex<(statuses: [Int], requests: [ScriptedModelServer.Recorded])>

    /// Starts on a free port; `statuses` answer the first requests, in order.
    public static func start(statuses: [Int] = []) async throws -> CallbackReceiver {
        let box = Mutex<CallbackReceiver?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Connection(receiver: box.withLock { $0 }))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let receiver = CallbackReceiver(channel: channel, statuses: statuses)
        box.withLock { $0 = receiver }
        return receiver
    }

    private init(channel: any Channel, statuses: [Int]) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.state = Mutex((statuses, []))
    }

    public func stop() async {
        try? await channel.close()
    }

    /// Every request so far, first to last.
    public var requests: [ScriptedModelServer.Recorded] { state.withLock { $0.requests } }

    /// Waits until `count` requests have arrived or `limit` has passed (a generous bound, not a timing
    /// assertion); returns the requests there are.
    public func waitFor(_ count: Int, limit: Duration = .seconds(90)) async -> [ScriptedModelServer.Recorded] {
        let deadline = ContinuousClock.now + limit
        while requests.count < count, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return requests
    }

    func answer(_ head: HTTPRequestHead, body: [UInt8]) -> Int {
        let recorded = ScriptedModelServer.Recorded(
            method: head.method.rawValue, path: head.uri, headers: head.headers.map { ($0.name, $0.value) },
            body: String(decoding: body, as: UTF8.self))
        return state.withLock { state in
            state.requests.append(recorded)
            return state.statuses.isEmpty ? 200 : state.statuses.removeFirst()
        }
    }

    private final class Connection: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let receiver: CallbackReceiver?
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(receiver: CallbackReceiver?) { self.receiver = receiver }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head, let receiver else { return }
                let status = receiver.answer(head, body: body)
                let text = Array("{\"status\":\(status)}".utf8)
                let headers = HTTPHeaders([
                    ("Content-Type", "application/json"), ("Content-Length", String(text.count)),
                    ("Connection", "close"),
                ])
                context.write(
                    wrapOutboundOut(
                        .head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))),
                    promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: text)))), promise: nil)
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                    loopBound.value.close(promise: nil)
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
