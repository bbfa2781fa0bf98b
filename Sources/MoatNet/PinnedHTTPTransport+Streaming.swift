import MoatCore
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

extension PinnedHTTPTransport {
    /// Bounds of one streamed exchange (a model's server-sent events). Every limit fails closed with a
    /// ``NetError`` that names the origin and the limit.
    public struct StreamLimits: Sendable {
        /// Time to establish the TCP connection (per address tried).
        public var connectTimeout: TimeAmount = .seconds(10)
        /// From the connection to the first response byte (a local model may think for a while).
        public var firstByteTimeout: TimeAmount = .seconds(120)
        /// The longest silence between two reads once the response has started.
        public var idleTimeout: TimeAmount = .seconds(60)
        /// The whole exchange, from the connection to the last byte.
        public var totalTimeout: TimeAmount = .seconds(600)
        /// The largest response body accepted (8 MiB); more is an error, not a silent cut.
        public var maximumBodyBytes = 8 << 20

        public init() {}
    }

    /// A response whose body arrives while the caller reads it.
    public struct StreamedResponse {
        public let status: Int
        /// Header fields in order; names compared case-insensitively.
        public let headers: [(name: String, value: String)]
        /// The body, chunk by chunk as the network delivers it (chunk boundaries mean nothing).
        public let body: ResponseBody

        /// The first value of header `name`.
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// The body of a ``StreamedResponse``: read it once, inside the `stream` call that produced it.
    ///
    /// It throws a ``NetError`` when a limit is reached (`.timedOut`, `.fetchFailed` for the size cap)
    /// and when the connection closes before the response's end (a server that stopped mid-stream).
    public struct ResponseBody: AsyncSequence {
        public typealias Element = [UInt8]
        public typealias Failure = any Error

        let inner: ResponseParts
        let origin: String

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inner: inner, origin: origin) }

        public struct AsyncIterator: AsyncIteratorProtocol {
            var inner: ResponseParts
            let origin: String
            var ended = false

            public mutating func next() async throws -> [UInt8]? {
                while !ended {
                    let part: HTTPClientResponsePart?
                    do {
                        part = try await inner.next()
                    } catch {
                        throw PinnedHTTPTransport.streamFailure(error, origin: origin)
                    }
                    switch part {
                    case .body(var buffer): return buffer.readBytes(length: buffer.readableBytes) ?? []
                    case .end: ended = true
                    case .head: continue
                    case nil:
                        throw NetError(.fetchFailed, "\(origin) closed the connection before the response was complete")
                    }
                }
                return nil
            }
        }
    }

    /// The parts of an answer: from a one-request channel, or from a kept connection's exchange.
    enum ResponseParts {
        case channel(NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator)
        case kept(AsyncThrowingStream<HTTPClientResponsePart, any Error>.AsyncIterator)

        mutating func next() async throws -> HTTPClientResponsePart? {
            switch self {
            case .channel(var parts):
                defer { self = .channel(parts) }
                return try await parts.next()
            case .kept(var parts):
                defer { self = .kept(parts) }
                return try await parts.next()
            }
        }
    }

    /// Sends one request and hands the response to `consume` while its body is still arriving.
    ///
    /// The connection goes to the addresses of `target` in order (never a new lookup), the first that
    /// accepts; it is closed when `consume` returns or throws. Limits: ``StreamLimits``. A transport
    /// made with `keepAlive` first reuses an idle connection opened for the same target (same scheme,
    /// host, port and one of `target`'s addresses), and keeps the connection for the next request when
    /// `consume` returned and the answer ended (``PinnedConnectionPool``). When a reused connection
    /// closes before any byte of the answer arrived (the server closed it while idle), the request is
    /// sent again on a new connection; never once a byte arrived.
    ///
    /// - Throws: ``NetError`` `.connectFailed` when no address accepts a connection, `.timedOut` when
    ///   the server is silent for longer than a limit, `.fetchFailed` for everything else (TLS, a body
    ///   over the cap, a cut connection); or what `consume` throws.
    public func stream<Result: Sendable>(
        _ target: CheckedURL,
        method: String,
        headers: [(name: String, value: String)],
        body: [UInt8] = [],
        limits: StreamLimits = StreamLimits(),
        _ consume: (StreamedResponse) async throws -> Result
    ) async throws -> Result {
        let origin = target.url.origin
        let (serverName, head) = try request(
            target, method: method, headers: headers, bodyCount: body.count, keepAlive: pool != nil)
        if let pool {
            return try await keptStream(
                target, head: head, body: body, serverName: serverName, limits: limits, pool: pool, consume)
        }
        let channel = try await connect(target, limits: limits) { _, channel in
            channel.eventLoop.makeCompletedFuture {
                try self.addClientHandlers(to: channel, serverName: serverName)
                try channel.pipeline.syncOperations.addHandler(ResponseWatchdog(limits: limits, origin: origin))
                return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                    wrappingChannelSynchronously: channel)
            }
        }
        return try await channel.executeThenClose { inbound, outbound in
            // A server may answer (and close) before the last part is handed over (with Content-Length,
            // `.end` carries no bytes): a failed write is reported only when no answer follows.
            var writeFailure: (any Error)?
            do {
                try await outbound.write(.head(head))
                if !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                try await outbound.write(.end(nil))
            } catch {
                writeFailure = error
            }
            var parts = ResponseParts.channel(inbound.makeAsyncIterator())
            let responseHead = try await Self.responseHead(&parts, writeFailure: writeFailure, origin: origin)
            return try await consume(Self.response(responseHead, parts: parts, origin: origin))
        }
    }

    /// ``stream(_:method:headers:body:limits:_:)`` over a kept connection.
    func keptStream<Result: Sendable>(
        _ target: CheckedURL, head: HTTPRequestHead, body: [UInt8], serverName: String?, limits: StreamLimits,
        pool: PinnedConnectionPool, _ consume: (StreamedResponse) async throws -> Result
    ) async throws -> Result {
        let origin = target.url.origin
        while true {
            let taken = pool.take(for: target)
            let connection: KeptConnection
            if let taken {
                connection = taken
            } else {
                connection = try await connect(target, limits: limits) { address, channel in
                    channel.eventLoop.makeCompletedFuture {
                        let watchdog = ResponseWatchdog(limits: limits, origin: origin, armsWhenActive: false)
                        let exchange = KeptExchange(watchdog: watchdog)
                        try self.addClientHandlers(to: channel, serverName: serverName, mark: exchange)
                        try channel.pipeline.syncOperations.addHandlers([watchdog, exchange])
                        return KeptConnection(
                            channel: channel, key: PinnedConnectionPool.Key(target, address: address),
                            exchange: exchange)
                    }
                }
                connection.channel.closeFuture.whenComplete { [weak pool] _ in _ = pool?.remove(connection) }
            }
            var parts = ResponseParts.kept(connection.start(head, body: body, limits: limits).makeAsyncIterator())
            let responseHead: HTTPResponseHead
            do {
                responseHead = try await Self.responseHead(&parts, writeFailure: nil, origin: origin)
            } catch let unanswered as UnansweredClose {
                connection.channel.close(promise: nil)
                // The server closed the kept connection before reading this request: a new connection.
                if taken != nil { continue }
                if let cause = unanswered.cause { throw Self.streamFailure(cause, origin: origin) }
                throw NetError(.fetchFailed, "\(origin) closed the connection without answering")
            } catch {
                connection.channel.close(promise: nil)
                throw error
            }
            do {
                let result = try await consume(Self.response(responseHead, parts: parts, origin: origin))
                connection.release(to: pool, reusable: true)
                return result
            } catch {
                connection.channel.close(promise: nil)
                throw error
            }
        }
    }

    /// A connection to the first of `target`'s addresses that accepts one, set up by `initializer`
    /// (given the address).
    func connect<Output: Sendable>(
        _ target: CheckedURL, limits: StreamLimits,
        _ initializer: @escaping @Sendable (IPAddress, any Channel) -> EventLoopFuture<Output>
    ) async throws -> Output {
        let origin = target.url.origin
        var failure = NetError(.connectFailed, "\(origin) has no address to connect to")
        for address in target.addresses {
            let socket = try socketAddress(address, port: target.url.port)
            do {
                return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(limits.connectTimeout)
                    .connect(to: socket) { channel in initializer(address, channel) }
            } catch {
                failure = Self.connectFailure(error, origin: origin, address: address, limits: limits)
            }
        }
        throw failure
    }

    /// Reads up to the final response head (an interim 1xx answer, such as 100 Continue, is skipped).
    static func responseHead(_ parts: inout ResponseParts, writeFailure: (any Error)?, origin: String)
        async throws -> HTTPResponseHead
    {
        while true {
            let part: HTTPClientResponsePart?
            do {
                part = try await parts.next()
            } catch {
                // The watchdog's own verdict (a time limit, the size cap) wins over the write it cut
                // short: on a loaded machine the request may still be going out when a limit fires.
                if let limit = error as? NetError { throw limit }
                if error is UnansweredClose { throw error }
                throw Self.streamFailure(writeFailure ?? error, origin: origin)
            }
            switch part {
            case .head(let head) where head.status.code >= 200: return head
            case .head, .body, .end: continue
            case nil:
                if let writeFailure { throw Self.streamFailure(writeFailure, origin: origin) }
                throw NetError(.fetchFailed, "\(origin) closed the connection without answering")
            }
        }
    }

    static func response(_ head: HTTPResponseHead, parts: ResponseParts, origin: String) -> StreamedResponse {
        StreamedResponse(
            status: Int(head.status.code), headers: head.headers.map { ($0.name, $0.value) },
            body: ResponseBody(inner: parts, origin: origin))
    }

    /// `ECONNREFUSED` on Linux (the C constant lives in Glibc, which this file leaves out: importing it
    /// beside NIOPosix makes the socket structs' members ambiguous in URLGuard.swift).
    static let connectionRefused: CInt = 111

    /// What a failed connection attempt means, in words: nothing listening, or no answer in time.
    static func connectFailure(_ error: any Error, origin: String, address: IPAddress, limits: StreamLimits)
        -> NetError
    {
        if case ChannelError.connectTimeout = error {
            let seconds = limits.connectTimeout.secondsText
            return NetError(.connectFailed, "\(origin) did not accept a connection within \(seconds) s")
        }
        if let error = error as? IOError, error.errnoCode == Self.connectionRefused {
            return NetError(.connectFailed, "nothing is listening at \(origin) (connection refused)")
        }
        return NetError(.connectFailed, "cannot connect to \(origin) at \(address)")
    }

    /// A failure while the exchange runs, as a ``NetError`` that names the origin and never the data.
    static func streamFailure(_ error: any Error, origin: String) -> NetError {
        switch error {
        case let error as NetError: return error
        case let error as NIOSSLError: return NetError(.fetchFailed, "TLS with \(origin) failed: \(error)")
        case is HTTPParserError:
            return NetError(.fetchFailed, "\(origin) sent a response that is not valid HTTP or was cut off")
        default: return NetError(.fetchFailed, "the exchange with \(origin) failed (the connection broke)")
        }
    }
}

/// Enforces a streamed response's time and size limits from inside the channel, so a silent or
/// endless server is cut off even while nobody is reading: the first-byte, idle and total timers, and
/// the body cap. A limit reached is an error delivered to the reader, then the channel closes. On a
/// one-request connection it is armed when the connection is up; on a kept connection
/// (``KeptExchange``) for each request, and disarmed at the answer's end.
///
/// The idle timer measures the server's silence only while the connection asks for more: a reader that
/// stops consuming holds back the channel's reads (the async stream's back-pressure), and the time it
/// takes is the reader's, not the server's; the total timer still bounds the exchange.
final class ResponseWatchdog: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private var limits: PinnedHTTPTransport.StreamLimits
    let origin: String
    let armsWhenActive: Bool
    private var context: ChannelHandlerContext?
    private var silence: Scheduled<Void>?
    private var whole: Scheduled<Void>?
    private var received = 0
    private var armed = false
    private var stopped = false
    /// The response has started: the idle timer, not the first-byte one, runs.
    private var answering = false

    init(limits: PinnedHTTPTransport.StreamLimits, origin: String, armsWhenActive: Bool = true) {
        self.limits = limits
        self.origin = origin
        self.armsWhenActive = armsWhenActive
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        if armsWhenActive { arm(limits) }
        context.fireChannelActive()
    }

    /// Starts the timers of one exchange with `limits`.
    func arm(_ limits: PinnedHTTPTransport.StreamLimits) {
        guard let context, !stopped else { return }
        cancelTimers()
        self.limits = limits
        received = 0
        armed = true
        answering = false
        let loop = context.eventLoop.assumeIsolated()
        whole = loop.scheduleTask(in: limits.totalTimeout) {
            self.stop(
                context,
                NetError(.timedOut, "\(self.origin) did not finish within \(self.limits.totalTimeout.secondsText) s"))
        }
        watch(context, limits.firstByteTimeout, "did not start answering within")
    }

    /// Stops the timers: the exchange is over.
    func disarm() {
        armed = false
        answering = false
        cancelTimers()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !stopped else { return }
        if armed {
            answering = true
            watch(context, limits.idleTimeout, "went silent for more than")
        }
        if case .body(let buffer) = unwrapInboundIn(data) {
            received += buffer.readableBytes
            guard received <= limits.maximumBodyBytes else {
                let cap = limits.maximumBodyBytes
                let size = cap >= 1 << 20 ? "\(cap >> 20) MiB" : "\(cap) bytes"
                stop(context, NetError(.fetchFailed, "the response from \(origin) is larger than \(size)"))
                return
            }
        }
        context.fireChannelRead(data)
    }

    /// A read finished: until the next one is asked for (at once, unless the reader holds reads back),
    /// the server cannot be heard, so its silence is not timed.
    func channelReadComplete(context: ChannelHandlerContext) {
        if armed && answering && !stopped {
            silence?.cancel()
            silence = nil
        }
        context.fireChannelReadComplete()
    }

    /// The connection asks for more: from now on, the server's silence is timed again.
    func read(context: ChannelHandlerContext) {
        if armed && answering && !stopped { watch(context, limits.idleTimeout, "went silent for more than") }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        context.fireChannelInactive()
    }

    private func watch(_ context: ChannelHandlerContext, _ limit: TimeAmount, _ what: String) {
        silence?.cancel()
        silence = context.eventLoop.assumeIsolated().scheduleTask(in: limit) {
            self.stop(context, NetError(.timedOut, "\(self.origin) \(what) \(limit.secondsText) s"))
        }
    }

    private func stop(_ context: ChannelHandlerContext, _ error: NetError) {
        guard !stopped else { return }
        stopped = true
        cancelTimers()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func cancelTimers() {
        silence?.cancel()
        whole?.cancel()
        silence = nil
        whole = nil
    }
}

extension TimeAmount {
    /// Seconds for messages, with a fraction when the limit is short (tests use milliseconds).
    fileprivate var secondsText: String {
        let milliseconds = nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)" : "\(Double(milliseconds) / 1000)"
    }
}
