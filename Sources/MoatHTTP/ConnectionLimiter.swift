public import HummingbirdCore
public import Logging
public import NIOCore
import NIOHTTPTypes
import Synchronization

/// Caps the HTTP connections `moat serve` holds, so that no number of local clients can use up its file
/// descriptors (which crashed the process: libdispatch aborts when it cannot open `/proc/…/stat`).
///
/// Under the cap every connection is admitted. At the cap, a new connection closes the connection that
/// has been quiet longest among those with no request being answered, and takes its place: held-open
/// idle connections cannot lock the owner out, and a request already being answered is never cut. When
/// every connection is being answered, a few more are admitted (``busyAllowance``), then new ones are
/// closed at once. Refusals are logged as one line every 10 seconds at most, with counts.
public final class ConnectionLimiter: Sendable {
    /// Connections at most (see ``cap(openFiles:)``).
    public let limit: Int
    /// How long a request may take to arrive in full once its head has been read.
    public let requestReadTimeout: TimeAmount
    private let logger: Logger
    private let state = Mutex(State())

    struct Entry {
        let channel: any Channel
        var lastActivity: NIODeadline
        /// Requests read in full whose answer is not written yet.
        var answering: Int
    }

    struct State {
        var open: [ObjectIdentifier: Entry] = [:]
        var evicted = 0
        var refused = 0
        var lastReport = NIODeadline.distantPast

        /// The counts to log now, if any and the last report is 10 seconds old.
        mutating func takeReport(now: NIODeadline) -> (evicted: Int, refused: Int)? {
            guard evicted + refused > 0, now - lastReport >= .seconds(10) else { return nil }
            defer {
                evicted = 0
                refused = 0
                lastReport = now
            }
            return (evicted, refused)
        }
    }

    public init(limit: Int, requestReadTimeout: TimeAmount = .seconds(30), logger: Logger) {
        self.limit = max(1, limit)
        self.requestReadTimeout = requestReadTimeout
        self.logger = logger
    }

    /// How many HTTP connections a process with `openFiles` descriptors may hold: at most 1,024 (one
    /// owner needs few), and always leaving a reserve — up to 256 descriptors — for the database, the
    /// admin socket, the vault, logs, the runtime and connections accepted but not yet closed.
    public static func cap(openFiles: Int) -> Int {
        let reserved = min(256, openFiles / 2)
        return max(8, min(1024, openFiles - reserved))
    }

    /// How far past the cap connections are admitted while every connection is being answered (a burst
    /// of pipelined requests), rather than refused at once.
    static let busyAllowance = 64

    /// How many connections may be accepted at once, counting those being closed after a refusal: the
    /// server stops accepting (new clients wait in the kernel's backlog) past this.
    public var acceptLimit: Int { limit + 2 * Self.busyAllowance }

    /// Admits `channel`, closing the quietest idle connection when at the cap; false when `channel`
    /// itself must be closed.
    func admit(_ channel: any Channel) -> Bool {
        let now = NIODeadline.now()
        let (admitted, evict, report) = state.withLock {
            state -> (Bool, (any Channel)?, (evicted: Int, refused: Int)?) in
            var evict: (any Channel)?
            var admitted = true
            // Admitted once: the first-request guard and the HTTP handler both admit a connection.
            if state.open[ObjectIdentifier(channel)] != nil { return (true, nil, nil) }
            if state.open.count >= limit {
                let quietest = state.open.filter { $0.value.answering == 0 }.min {
                    $0.value.lastActivity < $1.value.lastActivity
                }
                if let quietest {
                    state.open[quietest.key] = nil
                    evict = quietest.value.channel
                    state.evicted += 1
                } else if state.open.count >= limit + Self.busyAllowance {
                    admitted = false
                    state.refused += 1
                }
            }
            if admitted {
                state.open[ObjectIdentifier(channel)] = Entry(channel: channel, lastActivity: now, answering: 0)
            }
            return (admitted, evict, state.takeReport(now: now))
        }
        evict?.close(promise: nil)
        log(report)
        return admitted
    }

    private func log(_ report: (evicted: Int, refused: Int)?) {
        guard let report else { return }
        logger.warning(
            "connection limit reached: idle connections closed to make room, or new ones refused",
            metadata: ["limit": "\(limit)", "idle_closed": "\(report.evicted)", "refused": "\(report.refused)"])
    }

    /// Notes HTTP activity on `channel`: `answering` is added to its count of requests being answered.
    func touch(_ channel: any Channel, answering delta: Int) {
        let now = NIODeadline.now()
        state.withLock { state in
            guard var entry = state.open[ObjectIdentifier(channel)] else { return }
            entry.lastActivity = now
            entry.answering = max(0, entry.answering + delta)
            state.open[ObjectIdentifier(channel)] = entry
        }
    }

    /// Marks `channel` as being answered for as long as it stays open: an upgraded WebSocket (the chat
    /// socket, opened only with a live token) is never the idle connection closed to make room.
    public func holdOpen(_ channel: any Channel) {
        touch(channel, answering: 1)
    }

    /// `inner` with every connection admitted here from the moment it is accepted, and closed when its
    /// first request head has not arrived within `headTimeout`: a channel that can upgrade to a
    /// WebSocket adds the HTTP handlers (``ConnectionLimitHandler``, the idle timeout) only once the
    /// first head is read, so without this a client that connects and sends nothing would be neither
    /// counted nor timed out.
    public func admittingFirst<Inner: ServerChildChannel>(_ inner: Inner, headTimeout: TimeAmount)
        -> some ServerChildChannel
    {
        AdmittedChildChannel(inner: inner, limiter: self, headTimeout: headTimeout)
    }

    /// Forgets `channel`; also logs counts still unreported once the 10 seconds have passed.
    func closed(_ channel: any Channel) {
        let now = NIODeadline.now()
        log(
            state.withLock { state in
                state.open[ObjectIdentifier(channel)] = nil
                return state.takeReport(now: now)
            })
    }

    /// The HTTP/1.1 channel set-up with this limiter on every connection and `idleTimeout`, which also
    /// bounds the time a request head may take: the codec's partial reads do not count as activity, only
    /// complete request parts and answers do.
    public func http1Configuration(idleTimeout: TimeAmount) -> HTTP1Channel.Configuration {
        HTTP1Channel.Configuration(additionalChannelHandlers: [ConnectionLimitHandler(self)], idleTimeout: idleTimeout)
    }
}

/// Sits after the HTTP codec on every connection: admits the connection to the ``ConnectionLimiter``,
/// reports its requests and answers, and closes a request whose body has not arrived within the
/// limiter's request-read timeout (the idle timeout covers the time before a request head is complete).
final class ConnectionLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limiter: ConnectionLimiter
    private var admitted = false
    private var readDeadline: Scheduled<Void>?

    init(_ limiter: ConnectionLimiter) {
        self.limiter = limiter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context)
        context.fireChannelActive()
    }

    private func admit(_ context: ChannelHandlerContext) {
        guard !admitted else { return }
        admitted = true
        if !limiter.admit(context.channel) {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopReadDeadline()
        limiter.closed(context.channel)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopReadDeadline()
        limiter.closed(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            limiter.touch(context.channel, answering: 0)
            stopReadDeadline()
            let channel = context.channel
            readDeadline = context.eventLoop.scheduleTask(in: limiter.requestReadTimeout) {
                channel.close(promise: nil)
            }
        case .body:
            limiter.touch(context.channel, answering: 0)
        case .end:
            stopReadDeadline()
            limiter.touch(context.channel, answering: 1)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            limiter.touch(context.channel, answering: -1)
        }
        context.write(data, promise: promise)
    }

    private func stopReadDeadline() {
        readDeadline?.cancel()
        readDeadline = nil
    }
}

/// A child channel whose connections pass ``FirstRequestGuard`` before `inner` sets them up.
struct AdmittedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let limiter: ConnectionLimiter
    let headTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(FirstRequestGuard(limiter, headTimeout: headTimeout))
        }.flatMap { inner.setup(channel: channel, logger: logger) }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// The first handler on a connection, on its raw bytes: admits it to the ``ConnectionLimiter`` at once,
/// closes it when the end of its first request head (an empty line) has not arrived within the
/// timeout, and forgets it in the limiter when it closes. After the first head it only passes bytes on.
final class FirstRequestGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limiter: ConnectionLimiter
    private let headTimeout: TimeAmount
    private var admitted = false
    private var deadline: Scheduled<Void>?
    /// How many bytes of `\r\n\r\n` the stream has just shown; 4 once the first head is complete.
    private var matched = 0

    init(_ limiter: ConnectionLimiter, headTimeout: TimeAmount) {
        self.limiter = limiter
        self.headTimeout = headTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !admitted else { return }
        admitted = true
        guard limiter.admit(context.channel) else {
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: headTimeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if matched < 4 {
            let bytes = unwrapInboundIn(data)
            for byte in bytes.readableBytesView where matched < 4 {
                let expected: UInt8 = matched % 2 == 0 ? 13 : 10
                matched = byte == expected ? matched + 1 : (byte == 13 ? 1 : 0)
            }
            if matched == 4 {
                deadline?.cancel()
                deadline = nil
            }
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        limiter.closed(context.channel)
        context.fireChannelInactive()
    }
}
