import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// What a scripted server sends for one request: the status, headers and the body's pieces (each its
/// own write, so its own HTTP chunk), and whether the connection closes (or hangs) after them.
struct ScriptedAnswer: Sendable {
    var status = 200
    var headers: [(String, String)] = []
    var pieces: [[UInt8]] = []
    /// `drop`: the connection closes before any byte of the answer (as a server closing an idle
    /// keep-alive connection while the request arrives).
    enum End { case finish, cut, hang, drop }
    var end = End.finish
    /// False: read the request and never answer.
    var respond = true
    /// Seconds to wait before answering (nil: at once).
    var delay: Double?
    /// Set: the answer comes later. `hold` is called with a function that sends it (call it once, from
    /// any thread); the fields above are not used (a long poll waiting for an event).
    var hold: (@Sendable (@escaping @Sendable (ScriptedAnswer) -> Void) -> Void)?

    /// The scripted model servers' bytes per write: every event is still cut mid-line and mid-JSON, while a
    /// streamed answer stays tens of writes, not hundreds, on the event loops all in-process servers share
    /// (the provider conformance tests use 7 and 1).
    static let defaultWriteSize = 61

    /// `bytes` in writes of `size` bytes (nil: one write).
    static func split(_ bytes: [UInt8], size: Int?) -> [[UInt8]] {
        guard let size, size > 0 else { return [bytes] }
        return stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
    }
}

/// The TCP connections a scripted server accepted: how many, and a way to close the open ones (a server
/// that drops its idle keep-alive connections).
public final class ScriptedConnections: Sendable {
    private let state = Mutex<(accepted: Int, open: [ObjectIdentifier: any Channel])>((0, [:]))

    init() {}

    /// Connections accepted so far.
    public var accepted: Int { state.withLock { $0.accepted } }

    /// Closes every connection open now, as a server closes idle keep-alive connections; returns when
    /// they are closed.
    public func closeAll() async {
        let open = state.withLock { Array($0.open.values) }
        for channel in open { try? await channel.close() }
    }

    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock {
            $0.accepted += 1
            $0.open[id] = channel
        }
        channel.closeFuture.whenComplete { _ in _ = self.state.withLock { $0.open.removeValue(forKey: id) } }
    }
}

/// A real HTTP/1.1 server on `host` (127.0.0.1; a free port) whose every request is answered by
/// `answer` (method, path, headers, body); keep-alive as the client asks. Each accepted connection is
/// recorded in `connections`.
func startScriptedHTTPServer(
    port: Int = 0, host: String = "127.0.0.1", connections: ScriptedConnections? = nil,
    answer: @escaping @Sendable (String, String, HTTPHeaders, [UInt8]) -> ScriptedAnswer
) async throws -> any Channel {
    try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            connections?.add(channel)
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(ScriptedHTTPConnection(answer: answer))
            }
        }
        .bind(host: host, port: port)
        .get()
}

/// Starts a scripted server: `make` builds it around its listening channel, and every request is
/// answered by `answer` on it (a request that arrives before it exists gets no answer).
func startScriptedServer<Server: AnyObject & Sendable>(
    port: Int = 0, host: String = "127.0.0.1", connections: ScriptedConnections? = nil,
    _ make: (any Channel) -> Server,
    answer: @escaping @Sendable (Server, String, String, HTTPHeaders, [UInt8]) -> ScriptedAnswer
) async throws -> Server {
    let box = Mutex<Server?>(nil)
    let channel = try await startScriptedHTTPServer(port: port, host: host, connections: connections) {
        method, path, headers, body in
        guard let server = box.withLock({ $0 }) else { return ScriptedAnswer(respond: false) }
        return answer(server, method, path, headers, body)
    }
    let server = make(channel)
    box.withLock { $0 = server }
    return server
}

/// One connection: reads requests (keep-alive) and writes each answer as scripted.
private final class ScriptedHTTPConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let answer: @Sendable (String, String, HTTPHeaders, [UInt8]) -> ScriptedAnswer
    var head: HTTPRequestHead?
    var body: [UInt8] = []

    init(answer: @escaping @Sendable (String, String, HTTPHeaders, [UInt8]) -> ScriptedAnswer) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= 32 << 20 else {
                context.close(promise: nil)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else { return }
            let answer = answer(head.method.rawValue, head.uri, head.headers, body)
            if let hold = answer.hold {
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let loop = context.eventLoop
                let keepAlive = head.isKeepAlive
                hold { later in
                    loop.execute { bound.value.0.respond(later, keepAlive: keepAlive, context: bound.value.1) }
                }
                return
            }
            guard let delay = answer.delay else {
                respond(answer, keepAlive: head.isKeepAlive, context: context)
                return
            }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let keepAlive = head.isKeepAlive
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(delay * 1000))) {
                bound.value.0.respond(answer, keepAlive: keepAlive, context: bound.value.1)
            }
        }
    }

    func respond(_ answer: ScriptedAnswer, keepAlive: Bool, context: ChannelHandlerContext) {
        guard answer.respond else { return }
        guard answer.end != .drop else {
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders(answer.headers)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: answer.status)
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
            promise: nil)
        // Each piece is its own HTTP chunk, so the client's decoder hands it over as its own part even when
        // several arrive in one read; they are flushed once. (A flush per piece cost an answer split into
        // 7-byte pieces thousands of writes on an event loop every in-process server and client shares.)
        for piece in answer.pieces {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: piece)))), promise: nil)
        }
        switch answer.end {
        case .hang, .drop:
            context.flush()
        case .cut:
            context.flush()
            context.close(promise: nil)
        case .finish:
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                done.whenComplete { _ in loopBound.value.close(promise: nil) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
