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
///
/// Each connection is admitted once and released once, under an ``Admission`` number never given
/// twice: the handler that admits a connection owns its admission, and a handler added later on the
/// same connection uses that admission rather than admitting it again (a connection evicted while its
/// first request head was being read would otherwise come back as a new one and evict another).
/// "Quietest" is the connection whose last admission, request part or answer came earliest, in the
/// order the limiter saw them (a counter, so two events never tie).
public final class ConnectionLimiter: Sendable {
    /// Connections at most (see ``cap(openFiles:)``).
    public let limit: Int
    /// How long a request may take to arrive in full once its head has been read.
    public let requestReadTimeout: TimeAmount
    private let logger: Logger
    private let state = Mutex(State())

    /// One admitted connection, by a number no other connection of this limiter ever gets.
    struct Admission: Hashable, Sendable {
        let number: UInt64
    }

    struct Entry {
        let channel: any Channel
        /// The value of ``State/activity`` at this connection's latest admission, request part or answer.
        var lastActivity: UInt64
        /// Requests read in full whose answer is not written yet.
        var answering: Int
    }

    struct State {
        var open: [Admission: Entry] = [:]
        /// The last admission number given.
        var admissions: UInt64 = 0
        /// Counts every admission and activity: orders them without ties.
        var activity: UInt64 = 0
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

    /// Admits `channel` as a new connection, closing the quietest idle connection when at the cap; nil
    /// when `channel` itself must be closed. Call it once per connection, and ``closed(_:)`` once with
    /// what it returned.
    func admit(_ channel: any Channel) -> Admission? {
        let now = NIODeadline.now()
        let (admission, evict, report) = state.withLock {
            state -> (Admission?, (any Channel)?, (evicted: Int, refused: Int)?) in
            var evict: (any Channel)?
            if state.open.count >= limit {
                let quietest = state.open.filter { $0.value.answering == 0 }.min {
                    $0.value.lastActivity < $1.value.lastActivity
                }
                if let quietest {
                    state.open[quietest.key] = nil
                    evict = quietest.value.channel
                    state.evicted += 1
                } else if state.open.count >= limit + Self.busyAllowance {
                    state.refused += 1
                    return (nil, nil, state.takeReport(now: now))
                }
            }
            state.admissions += 1
            state.activity += 1
            let admission = Admission(number: state.admissions)
            state.open[admission] = Entry(channel: channel, lastActivity: state.activity, answering: 0)
            return (admission, evict, state.takeReport(now: now))
        }
        evict?.close(promise: nil)
        log(report)
        return admission
    }

    /// How many connections are admitted and not yet closed or evicted.
    var openCount: Int { state.withLock { $0.open.count } }

    private func log(_ report: (evicted: Int, refused: Int)?) {
        guard let report else { return }
        logger.warning(
            "connection limit reached: idle connections closed to make room, or new ones refused",
            metadata: ["limit": "\(limit)", "idle_closed": "\(report.evicted)", "refused": "\(report.refused)"])
    }

    /// Notes HTTP activity on an admitted connection: `answering` is added to its count of requests
    /// being answered. Nothing happens once it is closed or evicted.
    func touch(_ admission: Admission, answering delta: Int) {
        state.withLock { state in
            guard var entry = state.open[admission] else { return }
            state.activity += 1
            entry.lastActivity = state.activity
            entry.answering = max(0, entry.answering + delta)
            state.open[admission] = entry
        }
    }

    /// Marks `channel` as being answered for as long as it stays open: an upgraded WebSocket (the chat
    /// socket, opened only with a live token) is never the idle connection closed to make room. Works on
    /// a connection admitted by ``admittingFirst(_:headTimeout:)``, which the WebSocket server uses.
    public func holdOpen(_ channel: any Channel) {
        channel.eventLoop.execute {
            (try? channel.pipeline.syncOperations.handler(type: FirstRequestGuard.self))?.holdOpen()
        }
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

    /// Forgets a closed connection (nothing when it was evicted already); also logs counts still
    /// unreported once the 10 seconds have passed.
    func closed(_ admission: Admission) {
        let now = NIODeadline.now()
        log(
            state.withLock { state in
                state.open[admission] = nil
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

/// Sits after the HTTP codec on every connection: admits the connection to the ``ConnectionLimiter``
/// (or, behind a ``FirstRequestGuard``, uses the guard's admission), reports its requests and answers, and closes a request whose body has not arrived within the
/// limiter's request-read timeout (the idle timeout covers the time before a request head is complete).
final class ConnectionLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limiter: ConnectionLimiter
    private var started = false
    private var admission: ConnectionLimiter.Admission?
    /// Whether this handler admitted the connection (and so releases it), rather than a guard before it.
    private var owner = false
    private var readDeadline: Scheduled<Void>?

    init(_ limiter: ConnectionLimiter) {
        self.limiter = limiter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if let first = try? context.pipeline.syncOperations.handler(type: FirstRequestGuard.self) {
            // Admitted (or evicted, or refused) when accepted: never a second time.
            admission = first.admission
            return
        }
        owner = true
        admission = limiter.admit(context.channel)
        if admission == nil { context.close(promise: nil) }
    }

    private func release() {
        stopReadDeadline()
        if owner, let admission { limiter.closed(admission) }
        admission = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    private func touch(answering delta: Int) {
        if let admission { limiter.touch(admission, answering: delta) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            touch(answering: 0)
            stopReadDeadline()
            let channel = context.channel
            readDeadline = context.eventLoop.scheduleTask(in: limiter.requestReadTimeout) {
                channel.close(promise: nil)
            }
        case .body:
            touch(answering: 0)
        case .end:
            stopReadDeadline()
            touch(answering: 1)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            touch(answering: -1)
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

/// The first handler on a connection, on its raw bytes: admits it to the ``ConnectionLimiter`` at once
/// (the one admission of the connection: ``ConnectionLimitHandler`` added later uses it), closes it
/// when the end of its first request head (an empty line) has not arrived within the timeout, and
/// releases the admission when it closes. After the first head it only passes bytes on.
final class FirstRequestGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limiter: ConnectionLimiter
    private let headTimeout: TimeAmount
    private var started = false
    /// This connection's admission; nil before it is accepted, when refused, and once released.
    private(set) var admission: ConnectionLimiter.Admission?
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
        guard !started else { return }
        started = true
        admission = limiter.admit(context.channel)
        guard admission != nil else {
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

    /// Counts the connection as being answered for as long as it stays open (``ConnectionLimiter/holdOpen(_:)``).
    func holdOpen() {
        if let admission { limiter.touch(admission, answering: 1) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        if let admission { limiter.closed(admission) }
        admission = nil
        context.fireChannelInactive()
    }
}
