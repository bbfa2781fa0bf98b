import MoatCore
public import NIOCore
import NIOHTTP1
import Synchronization

/// The idle HTTP/1.1 connections of one ``PinnedHTTPTransport``, kept for the next request to the same
/// checked target (HTTP keep-alive).
///
/// A connection is reused only for a request whose ``CheckedURL`` names the same scheme, host name (the
/// TLS server name and `Host`), port and pinned address it was opened for, through the same transport
/// (so the same TLS settings). The caller checks the target again for every request, exactly as without
/// a pool: a target that now resolves elsewhere (a changed `config.yaml`, a new DNS answer) finds no
/// connection to reuse. At most ``Limits/maximumIdlePerTarget`` idle connections per target and
/// ``Limits/maximumIdle`` in all are kept (more are closed); an idle one is closed after
/// ``Limits/idleTimeout``, and one the server closed is dropped as soon as its close is seen.
public final class PinnedConnectionPool: Sendable {
    /// Bounds of the pool.
    public struct Limits: Sendable {
        /// Idle connections kept per target (scheme, host, port, address).
        public var maximumIdlePerTarget = 16
        /// Idle connections kept in all.
        public var maximumIdle = 64
        /// How long an idle connection is kept.
        public var idleTimeout: TimeAmount = .seconds(30)
        /// When the reader stopped before the answer's end (after `data: [DONE]`): how long the rest may
        /// take to arrive before the connection is closed instead of kept.
        public var drainTimeout: TimeAmount = .seconds(2)

        public init() {}
    }

    /// What a kept connection may be reused for.
    struct Key: Hashable, Sendable {
        let scheme: String
        let host: FetchURL.Host
        let port: Int
        let address: IPAddress

        init(_ target: CheckedURL, address: IPAddress) {
            scheme = target.url.scheme
            host = target.url.host
            port = target.url.port
            self.address = address
        }
    }

    private struct Idle {
        let connection: KeptConnection
        let expiry: Scheduled<Void>
    }

    let limits: Limits
    private let idle = Mutex<[Key: [Idle]]>([:])

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    deinit {
        closeAll()
    }

    /// The number of idle connections held now.
    public var idleCount: Int { idle.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Closes every idle connection.
    public func closeAll() {
        let all = idle.withLock { idle in
            defer { idle = [:] }
            return idle.values.flatMap { $0 }
        }
        for entry in all {
            entry.expiry.cancel()
            entry.connection.channel.close(promise: nil)
        }
    }

    /// The most recently kept open connection to one of `target`'s addresses (in their order), taken
    /// out of the pool; nil when there is none. Connections found closed are dropped.
    func take(for target: CheckedURL) -> KeptConnection? {
        idle.withLock { idle in
            for address in target.addresses {
                let key = Key(target, address: address)
                while let entry = idle[key]?.popLast() {
                    if idle[key]?.isEmpty == true { idle[key] = nil }
                    entry.expiry.cancel()
                    if entry.connection.channel.isActive { return entry.connection }
                    entry.connection.channel.close(promise: nil)
                }
            }
            return nil
        }
    }

    /// Keeps `connection` for the next request to its target, or closes it when the pool is full.
    func keep(_ connection: KeptConnection) {
        let channel = connection.channel
        let expiry = channel.eventLoop.scheduleTask(in: limits.idleTimeout) { [weak self] in
            if self?.remove(connection) ?? true { channel.close(promise: nil) }
        }
        let kept = idle.withLock { idle in
            let total = idle.values.reduce(0) { $0 + $1.count }
            let here = idle[connection.key]?.count ?? 0
            guard channel.isActive, total < limits.maximumIdle, here < limits.maximumIdlePerTarget else { return false }
            idle[connection.key, default: []].append(Idle(connection: connection, expiry: expiry))
            return true
        }
        if !kept {
            expiry.cancel()
            channel.close(promise: nil)
        }
    }

    /// Takes `connection` out of the idle list; false when it was not there (in use, or gone).
    @discardableResult
    func remove(_ connection: KeptConnection) -> Bool {
        let entry: Idle? = idle.withLock { idle in
            guard let index = idle[connection.key]?.firstIndex(where: { $0.connection === connection }) else {
                return nil
            }
            defer { if idle[connection.key]?.isEmpty == true { idle[connection.key] = nil } }
            return idle[connection.key]?.remove(at: index)
        }
        entry?.expiry.cancel()
        return entry != nil
    }
}

/// One HTTP/1.1 connection that may serve several requests, one at a time: its channel, what it may be
/// reused for, and the handler that carries each exchange. Owned by one request at a time (taken from
/// the pool or just opened); its handlers live on the channel's event loop.
final class KeptConnection: @unchecked Sendable {
    let channel: any Channel
    let key: PinnedConnectionPool.Key
    let exchange: KeptExchange

    init(channel: any Channel, key: PinnedConnectionPool.Key, exchange: KeptExchange) {
        self.channel = channel
        self.key = key
        self.exchange = exchange
    }

    /// Sends one request; its answer's parts arrive on the returned stream.
    func start(
        _ head: HTTPRequestHead, body: [UInt8], limits: PinnedHTTPTransport.StreamLimits
    ) -> AsyncThrowingStream<HTTPClientResponsePart, any Error> {
        let (parts, continuation) = AsyncThrowingStream.makeStream(of: HTTPClientResponsePart.self)
        channel.eventLoop.execute {
            self.exchange.begin(head, body: body, limits: limits, answer: continuation)
        }
        return parts
    }

    /// The request is over: keep the connection in `pool` when its answer ended (or ends within the
    /// pool's drain time) and the server allows keep-alive; close it otherwise.
    func release(to pool: PinnedConnectionPool, reusable: Bool) {
        channel.eventLoop.execute {
            guard reusable else {
                self.channel.close(promise: nil)
                return
            }
            self.exchange.whenEnded(within: pool.limits.drainTimeout) { pool.keep(self) }
        }
    }
}

/// The connection closed, or failed, before any byte of the answer arrived: on a kept connection the
/// server most likely closed it while idle, and the request can be sent again on a new one.
struct UnansweredClose: Error {
    /// What failed (a write, a reset), when known.
    let cause: (any Error)?
}

/// Marks the arrival of any byte of an answer (placed before the HTTP decoder).
final class ArrivalMark: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let exchange: KeptExchange

    init(exchange: KeptExchange) {
        self.exchange = exchange
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        exchange.received = true
        context.fireChannelRead(data)
    }
}

/// Carries one exchange at a time over a kept connection: writes the request, hands the answer's parts
/// to the reader's stream, and knows whether the answer ended and the server allows keep-alive. A byte
/// that arrives while no request is open (a server talking out of turn) closes the connection.
final class KeptExchange: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let watchdog: ResponseWatchdog
    private var context: ChannelHandlerContext?
    private var answer: AsyncThrowingStream<HTTPClientResponsePart, any Error>.Continuation?
    /// A byte of the current answer arrived (set by ``ArrivalMark``).
    var received = false
    private var open = false
    private var finalHead = false
    private var ended = false
    private var keepAlive = false
    private var writeFailure: (any Error)?
    private var onEnd: (() -> Void)?
    private var drain: Scheduled<Void>?

    init(watchdog: ResponseWatchdog) {
        self.watchdog = watchdog
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func begin(
        _ head: HTTPRequestHead, body: [UInt8], limits: PinnedHTTPTransport.StreamLimits,
        answer: AsyncThrowingStream<HTTPClientResponsePart, any Error>.Continuation
    ) {
        guard let context, context.channel.isActive, !open else {
            answer.finish(throwing: UnansweredClose(cause: nil))
            return
        }
        self.answer = answer
        received = false
        open = true
        finalHead = false
        ended = false
        keepAlive = false
        writeFailure = nil
        onEnd = nil
        watchdog.arm(limits)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil) }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        written.assumeIsolated().whenFailure { error in self.writeFailure = error }
    }

    /// Calls `keep` once the current answer has ended (now, or within `drainTimeout`; the rest of the
    /// body is dropped), when the server allows keep-alive; closes the connection otherwise.
    func whenEnded(within drainTimeout: TimeAmount, keep: @escaping () -> Void) {
        guard let context else { return }
        answer?.finish()
        answer = nil
        if ended {
            finished(keep: keepAlive ? keep : nil)
            return
        }
        guard open, finalHead, keepAlive else {
            context.close(promise: nil)
            return
        }
        onEnd = keep
        drain = context.eventLoop.assumeIsolated().scheduleTask(in: drainTimeout) {
            self.onEnd = nil
            context.close(promise: nil)
        }
    }

    private func finished(keep: (() -> Void)?) {
        open = false
        guard let keep else {
            context?.close(promise: nil)
            return
        }
        keep()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard open else {
            context.close(promise: nil)
            return
        }
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head) where head.status.code >= 200:
            finalHead = true
            keepAlive = head.isKeepAlive
        case .end where finalHead:
            ended = true
            open = false
            watchdog.disarm()
        default: break
        }
        answer?.yield(part)
        guard ended else { return }
        answer?.finish()
        answer = nil
        if let onEnd {
            drain?.cancel()
            self.onEnd = nil
            finished(keep: keepAlive ? onEnd : nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(nil)
        drain?.cancel()
        onEnd = nil
        context.fireChannelInactive()
    }

    /// Ends the reader's stream: an answer that had not started is an ``UnansweredClose`` (unless a
    /// limit of the watchdog or a garbled answer says more), one cut short ends early or with `error`.
    private func fail(_ error: (any Error)?) {
        guard let answer else { return }
        self.answer = nil
        open = false
        switch error {
        case let error? where error is NetError || error is HTTPParserError || received:
            answer.finish(throwing: error)
        case let error?:
            answer.finish(throwing: UnansweredClose(cause: error))
        case nil where !received:
            answer.finish(throwing: UnansweredClose(cause: writeFailure))
        case nil:
            answer.finish()
        }
    }
}
