import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A model server on 127.0.0.1 that answers every `POST /v1/chat/completions` at once with `ok`, in the
/// OpenAI wire format the real provider reads (server-sent `chat.completion.chunk` events when the request
/// streams, as ``MoatTestSupport/ScriptedModelServer`` writes them and the openai client library reads
/// them; one `chat.completion` document otherwise).
///
/// It keeps, per request, the time it spent on it: from the request's first bytes to its answer's last
/// bytes handed to the kernel, keyed by the marker `[bench …]` of the last message (the newest user
/// message). What the benchmark calls added latency is a turn's time minus that.
final class StubModelServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let served = Mutex<[String: Duration]>([:])

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    static func start() async throws -> StubModelServer {
        let box = Mutex<StubModelServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Connection(server: box.withLock { $0 }))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let server = StubModelServer(channel: channel)
        box.withLock { $0 = server }
        return server
    }

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    func stop() async {
        try? await channel.close()
    }

    /// The time the stub spent on the request whose newest message carries `marker`.
    func serviceTime(_ marker: String) -> Duration? {
        served.withLock { $0[marker] }
    }

    fileprivate func record(_ marker: String, _ time: Duration) {
        served.withLock { $0[marker] = time }
    }

    /// The last `[bench …]` marker in `body` (the newest user message is the request's last message).
    static func marker(in body: [UInt8]) -> String {
        let open = Array("[bench ".utf8)
        guard body.count >= open.count else { return "" }
        var index = body.count - open.count
        while index >= 0 {
            if body[index] == open[0], Array(body[index..<index + open.count]) == open,
                let close = body[index...].firstIndex(of: UInt8(ascii: "]"))
            {
                return String(decoding: body[index...close], as: UTF8.self)
            }
            index -= 1
        }
        return ""
    }

    /// The answer's body: `ok`, 10 prompt tokens and 1 completion token.
    static func answer(streamed: Bool, includeUsage: Bool) -> (contentType: String, body: [UInt8]) {
        let head =
            "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1765000000,"
            + "\"model\":\"bench\",\"system_fingerprint\":\"fp_moat\","
        let usage = "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1,\"total_tokens\":11}"
        guard streamed else {
            let whole =
                "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1765000000,\"model\":\"bench\","
                + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\",\"refusal\":null},"
                + "\"logprobs\":null,\"finish_reason\":\"stop\"}],\(usage)}"
            return ("application/json", Array(whole.utf8))
        }
        let usageNull = includeUsage ? ",\"usage\":null" : ""
        func chunk(_ delta: String, finish: String) -> String {
            head + "\"choices\":[{\"index\":0,\"delta\":\(delta),\"logprobs\":null,\"finish_reason\":\(finish)}]"
                + "\(usageNull)}"
        }
        var events = [
            chunk("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", finish: "null"),
            chunk("{\"content\":\"ok\"}", finish: "null"), chunk("{}", finish: "\"stop\""),
        ]
        if includeUsage { events.append(head + "\"choices\":[],\(usage)}") }
        events.append("[DONE]")
        return ("text/event-stream; charset=utf-8", Array(events.map { "data: \($0)\n\n" }.joined().utf8))
    }

    private final class Connection: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: StubModelServer?
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        var started = ContinuousClock.now

        init(server: StubModelServer?) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                started = ContinuousClock.now
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head, let server else { return }
                let text = String(decoding: body, as: UTF8.self)
                let (contentType, answer) = StubModelServer.answer(
                    streamed: text.contains("\"stream\":true"), includeUsage: text.contains("\"include_usage\":true"))
                var headers = HTTPHeaders([("Content-Type", contentType), ("Cache-Control", "no-cache")])
                if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
                    promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: answer)))), promise: nil)
                let marker = StubModelServer.marker(in: body)
                let started = self.started
                let keepAlive = head.isKeepAlive
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                    server.record(marker, ContinuousClock.now - started)
                    if !keepAlive { loopBound.value.close(promise: nil) }
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
