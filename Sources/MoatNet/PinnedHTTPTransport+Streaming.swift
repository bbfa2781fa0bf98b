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

        let inner: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
        let origin: String

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inner: inner, origin: origin) }

        public struct AsyncIterator: AsyncIteratorProtocol {
            var inner: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
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

    /// Sends one request and hands the response to `consume` while its body is still arriving.
    ///
    /// The connection goes to the addresses of `target` in order (never a new lookup), the first that
    /// accepts; it is closed when `consume` returns or throws. Limits: ``StreamLimits``.
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
        let url = target.url
        let origin = url.origin
        let (serverName, head) = try request(target, method: method, headers: headers, bodyCount: body.count)
        var channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>?
        var failure = NetError(.connectFailed, "\(origin) has no address to connect to")
        for address in target.addresses where channel == nil {
            let socket = try socketAddress(address, port: url.port)
            do {
                channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(limits.connectTimeout)
                    .connect(to: socket) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try self.addClientHandlers(to: channel, serverName: serverName)
                            try channel.pipeline.syncOperations.addHandler(
                                ResponseWatchdog(limits: limits, origin: origin))
                            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                                wrappingChannelSynchronously: channel)
                        }
                    }
            } catch {
                failure = Self.connectFailure(error, origin: origin, address: address, limits: limits)
            }
        }
        guard let channel else { throw failure }
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
            var parts = inbound.makeAsyncIterator()
            var responseHead: HTTPResponseHead?
            while responseHead == nil {
                let part: HTTPClientResponsePart?
                do {
                    part = try await parts.next()
                } catch {
                    // The watchdog's own verdict (a time limit, the size cap) wins over the write it cut
                    // short: on a loaded machine the request may still be going out when a limit fires.
                    if let limit = error as? NetError { throw limit }
                    throw Self.streamFailure(writeFailure ?? error, origin: origin)
                }
                switch part {
                // An interim 1xx answer (100 Continue) is followed by the real one.
                case .head(let head) where head.status.code >= 200: responseHead = head
                case .head, .body, .end: continue
                case nil:
                    if let writeFailure { throw Self.streamFailure(writeFailure, origin: origin) }
                    throw NetError(.fetchFailed, "\(origin) closed the connection without answering")
                }
            }
            guard let responseHead else { throw NetError(.fetchFailed, "\(origin) sent no response") }
            let response = StreamedResponse(
                status: Int(responseHead.status.code),
                headers: responseHead.headers.map { ($0.name, $0.value) },
                body: ResponseBody(inner: parts, origin: origin))
            return try await consume(response)
        }
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
/// the body cap. A limit reached is an error delivered to the reader, then the channel closes.
///
/// The idle timer measures the server's silence only while the connection asks for more: a reader that
/// stops consuming holds back the channel's reads (the async stream's back-pressure), and the time it
/// takes is the reader's, not the server's; the total timer still bounds the exchange.
private final class ResponseWatchdog: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let limits: PinnedHTTPTransport.StreamLimits
    let origin: String
    private var silence: Scheduled<Void>?
    private var whole: Scheduled<Void>?
    private var received = 0
    private var stopped = false
    /// The response has started: the idle timer, not the first-byte one, runs.
    private var answering = false

    init(limits: PinnedHTTPTransport.StreamLimits, origin: String) {
        self.limits = limits
        self.origin = origin
    }

    func channelActive(context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        whole = loop.scheduleTask(in: limits.totalTimeout) {
            self.stop(
                context,
                NetError(.timedOut, "\(self.origin) did not finish within \(self.limits.totalTimeout.secondsText) s"))
        }
        watch(context, limits.firstByteTimeout, "did not start answering within")
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !stopped else { return }
        answering = true
        watch(context, limits.idleTimeout, "went silent for more than")
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
        if answering && !stopped {
            silence?.cancel()
            silence = nil
        }
        context.fireChannelReadComplete()
    }

    /// The connection asks for more: from now on, the server's silence is timed again.
    func read(context: ChannelHandlerContext) {
        if answering && !stopped { watch(context, limits.idleTimeout, "went silent for more than") }
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
    }
}

extension TimeAmount {
    /// Seconds for messages, with a fraction when the limit is short (tests use milliseconds).
    fileprivate var secondsText: String {
        let milliseconds = nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)" : "\(Double(milliseconds) / 1000)"
    }
}
