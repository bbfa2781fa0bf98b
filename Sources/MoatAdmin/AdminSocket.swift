import Foundation
public import Logging
public import MoatAgent
import MoatCore
import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

// Public: `uid_t` and `geteuid()` appear in the initializer.
#if canImport(Glibc)
    public import Glibc
#elseif canImport(Musl)
    public import Musl
#elseif canImport(Darwin)
    public import Darwin
#endif

/// The admin socket (`moat.sock` in the state directory): how the `moat` CLI asks the running
/// `moat serve` to carry out owner operations (API tokens, sessions, approvals).
///
/// Wire format (described at the top of `AdminProtocol.swift`): one request per connection, one typed
/// ``AdminOperation`` as a JSON object on one line terminated by `"\n"`, at most 64 KiB, sent within the
/// read timeout (10 s); the answer is one ``AdminResponse`` JSON line (exit status, structured result,
/// error text), then the server closes. Only the operation's name is logged, never its parameters.
///
/// Who may connect: the socket file is created mode 0600 (umask 077 around `bind`, then checked), and on
/// top of the file mode every accepted connection's peer is checked with `SO_PEERCRED`: only the
/// server's own uid (or root) is served. Anyone else gets one JSON error line, their connection is closed
/// before anything they sent is read, and `onRefused` is told their uid and pid so the refusal can be
/// audited. The credentials are the ones the kernel recorded when the peer connected.
///
/// Lifecycle: ``run()`` refuses to start when another server answers on the path, replaces a stale
/// socket file, refuses (and leaves alone) anything at the path that is not a socket, serves until
/// graceful shutdown or cancellation, waits for connections in progress, and removes the socket file.
public final class AdminSocketServer: Service {
    private let path: String
    private let handler:
        @Sendable (AdminOperation, AdminPeer, (@Sendable (TurnEvent) async -> Void)?) async ->
            AdminResponse
    private let onRefused: @Sendable (AdminPeer) async -> Void
    private let logger: Logger
    private let allowedUID: uid_t
    private let readTimeout: Duration

    /// - Parameters:
    ///   - path: where to create the socket (normally `moat.sock` in the state directory).
    ///   - handler: carries out one request from an allowed peer and says what the CLI prints; for an
    ///     operation that streams (``AdminOperation/streamsEvents``) it is given where the turn's events go.
    ///   - onRefused: told about each peer refused for its uid (to audit it); runs before the refusal is
    ///     sent.
    ///   - logger: for start, stop and refusals; requests' parameters and outputs are never logged.
    ///   - allowedUID: the uid served besides root; the server's own effective uid by default.
    ///   - readTimeout: how long a client has to send its request line.
    public init(
        path: String,
        handler:
            @escaping @Sendable (
                AdminOperation, AdminPeer, _ events: (@Sendable (TurnEvent) async -> Void)?
            ) async -> AdminResponse,
        onRefused: @escaping @Sendable (AdminPeer) async -> Void,
        logger: Logger,
        allowedUID: uid_t = geteuid(),
        readTimeout: Duration = .seconds(10)
    ) {
        self.path = path
        self.handler = handler
        self.onRefused = onRefused
        self.logger = logger
        self.allowedUID = allowedUID
        self.readTimeout = readTimeout
    }

    /// A server whose operations never stream.
    public convenience init(
        path: String,
        handler: @escaping @Sendable (AdminOperation, AdminPeer) async -> AdminResponse,
        onRefused: @escaping @Sendable (AdminPeer) async -> Void,
        logger: Logger,
        allowedUID: uid_t = geteuid(),
        readTimeout: Duration = .seconds(10)
    ) {
        self.init(
            path: path, handler: { operation, peer, _ in await handler(operation, peer) }, onRefused: onRefused,
            logger: logger, allowedUID: allowedUID, readTimeout: readTimeout)
    }

    /// Whether a peer with `peerUID` may use the socket: the allowed uid (the server's own) or root.
    public static func admits(peerUID: UInt32, allowedUID: UInt32) -> Bool {
        peerUID == allowedUID || peerUID == 0
    }

    /// Creates the socket and serves connections until graceful shutdown or cancellation.
    ///
    /// - Throws: ``GatewayError`` when another server is running on the path, when the path holds
    ///   something other than a socket, or when the socket cannot be created privately.
    public func run() async throws {
        try Self.clearPath(path)
        let (fd, identity) = try UnixDomainSocket.bindPrivate(path)
        defer { UnixDomainSocket.unlinkIfSame(path, identity: identity) }

        let pending = PendingConnections()
        let server: NIOAsyncChannel<AcceptedConnection, Never>
        do {
            // NIO takes the bound descriptor and calls listen(2) on it.
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                // A client that half-closes after its request (or a read timeout, which closes our input)
                // must still get the answer line.
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .bind(fd) { channel in
                    // Read at accept, while the connection is certainly open (a peer that has already hung
                    // up leaves a closed channel, whose options can no longer be read).
                    Self.peerCredentials(of: channel).flatMapThrowing { peer in
                        let connection = try pending.insert {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                        return AcceptedConnection(connection: connection, peer: peer)
                    }
                }
        } catch {
            throw GatewayError(.startup, "cannot listen on the admin socket \(path): \(error)")
        }
        logger.info("admin socket listening", metadata: ["path": "\(path)"])

        await withTaskCancellationOrGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                do {
                    try await server.executeThenClose { connections in
                        for try await accepted in connections {
                            pending.remove(accepted.connection)
                            group.addTask { await self.serve(accepted) }
                        }
                    }
                } catch {
                    // Closing the listener on shutdown can end the stream with an error; connections
                    // already accepted still finish in the group.
                    logger.debug("admin socket listener closed", metadata: ["error": "\(error)"])
                }
            }
        } onCancelOrGracefulShutdown: {
            server.channel.close(promise: nil)
        }
        // On cancellation the stream drops connections accepted but not yet handed out: close them
        // properly (a wrapped channel dropped unfinished would trap).
        await pending.closeAll()
        logger.info("admin socket closed", metadata: ["path": "\(path)"])
    }

    /// Makes room for the socket: nothing to do for a missing path, removes a stale socket, and refuses
    /// a live server or anything that is not a socket.
    static func clearPath(_ path: String) throws(GatewayError) {
        switch UnixDomainSocket.probe(path) {
        case .missing:
            return
        case .listening:
            throw GatewayError(
                .startup,
                "another moat serve is running: \(path) answers; stop it first (only one may use a state directory)"
            )
        case .stale:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw GatewayError(
                    .startup,
                    "cannot remove the stale admin socket \(path): \(UnixDomainSocket.reason(errno))"
                )
            }
        case .notSocket:
            throw GatewayError(
                .unsafeState,
                "\(path) exists and is not a socket; Moat leaves it alone. Move it away, then start Moat again."
            )
        case .unreachable(let code):
            throw GatewayError(
                .startup,
                "cannot check the admin socket \(path): \(UnixDomainSocket.reason(code)); "
                    + "make sure the state directory belongs to you"
            )
        }
    }

    /// An accepted connection and the credentials its peer had when it connected.
    private struct AcceptedConnection: Sendable {
        let connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        let peer: AdminPeer?
    }

    /// Connections accepted but not yet handed to a task, so none is dropped unfinished (which traps)
    /// when the accept stream ends early, including one whose setup races with the shutdown.
    private final class PendingConnections: Sendable {
        private struct State {
            var connections: [ObjectIdentifier: NIOAsyncChannel<ByteBuffer, ByteBuffer>] = [:]
            var closed = false
        }
        private let state = Mutex(State())

        /// Wraps a new connection with `make` and keeps it; refuses (the channel is then closed) once
        /// ``closeAll()`` has run.
        func insert(
            _ make: () throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer>
        ) throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
            try state.withLock { state in
                guard !state.closed else { throw ChannelError.ioOnClosedChannel }
                let connection = try make()
                state.connections[ObjectIdentifier(connection.channel)] = connection
                return connection
            }
        }

        func remove(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
            _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(connection.channel)) }
        }

        func closeAll() async {
            let left = state.withLock { state in
                state.closed = true
                defer { state.connections.removeAll() }
                return Array(state.connections.values)
            }
            for connection in left {
                try? await connection.executeThenClose { _, _ in }
            }
        }
    }

    /// Serves one connection; every failure ends only this connection.
    private func serve(_ accepted: AcceptedConnection) async {
        let connection = accepted.connection
        let peer = accepted.peer
        do {
            try await connection.executeThenClose { inbound, outbound in
                guard let peer, Self.admits(peerUID: peer.uid, allowedUID: UInt32(allowedUID)) else {
                    let refused = peer ?? .unknown
                    logger.warning(
                        "admin socket: connection refused",
                        metadata: ["peer_uid": "\(refused.uid)", "peer_pid": "\(refused.pid)"]
                    )
                    await onRefused(refused)
                    try await outbound.write(ByteBuffer(bytes: try AdminProtocol.line(AdminProtocol.refusal)))
                    return
                }
                let response: AdminResponse
                switch await readRequest(inbound, channel: connection.channel) {
                case .closed:
                    return  // a probe (isServerListening) or a client that gave up
                case .timedOut:
                    response = .failure(
                        "moat: the admin request did not arrive within \(readTimeout); send one JSON line",
                        status: ExitStatus.usage
                    )
                case .tooLarge:
                    response = .failure("moat: the admin request is larger than 64 KiB", status: ExitStatus.usage)
                case .unterminated:
                    response = .failure("moat: the admin request must end with a newline", status: ExitStatus.usage)
                case .line(var bytes):
                    defer { AdminProtocol.wipe(&bytes) }
                    do {
                        let operation = try AdminProtocol.operation(from: bytes)
                        logger.info(
                            "admin request", metadata: ["op": "\(operation.name.rawValue)", "peer_uid": "\(peer.uid)"])
                        response = await answer(operation, peer: peer, outbound: outbound)
                    } catch let error as AdminRequestError {
                        response = .failure("moat: " + error.message, status: ExitStatus.usage)
                    } catch {
                        response = .failure(
                            "moat: malformed admin request: expected one JSON object "
                                + #"{"op": "...", "params": {...}}"#,
                            status: ExitStatus.usage
                        )
                    }
                }
                try await outbound.write(ByteBuffer(bytes: try AdminProtocol.line(response)))
            }
        } catch {
            logger.debug("admin connection ended with an error", metadata: ["error": "\(error)"])
        }
    }

    /// The operation's result; for one that streams, each event of its turn is written first, as one
    /// ``AdminEventFrame`` line. A client gone mid-turn ends the writing, not the turn.
    private func answer(
        _ operation: AdminOperation, peer: AdminPeer, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async -> AdminResponse {
        guard operation.streamsEvents else { return await handler(operation, peer, nil) }
        let handler = self.handler
        return await LiveTurn.relay { events in
            await handler(operation, peer, events)
        } to: { event in
            // The result line carries the finished turn.
            if case .finished = event { return }
            try await outbound.write(
                ByteBuffer(bytes: try AdminProtocol.line(AdminEventFrame(event: TurnEventView(event)))))
        }
    }

    private enum ReadOutcome: Sendable {
        case line([UInt8])
        case closed
        case unterminated
        case tooLarge
        case timedOut
    }

    /// Reads the request line, racing it against the read timeout.
    private func readRequest(
        _ inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
        channel: any Channel
    ) async -> ReadOutcome {
        let timeout = readTimeout
        return await withTaskGroup(of: ReadOutcome?.self) { group in
            group.addTask { await Self.readLine(inbound) }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return nil  // cancelled: the line came first
                }
                return .timedOut
            }
            var outcome = ReadOutcome.closed
            if let first = await group.next(), let first {
                outcome = first
            }
            group.cancelAll()
            if case .timedOut = outcome {
                // Ends the inbound stream, so the reading child returns even if it ignores cancellation;
                // the output side stays open for the error line.
                channel.close(mode: .input, promise: nil)
            }
            return outcome
        }
    }

    private static func readLine(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async -> ReadOutcome {
        var received: [UInt8] = []
        do {
            for try await var buffer in inbound {
                let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
                if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
                    received += bytes[..<newline]
                    return received.count <= AdminProtocol.maximumRequestBytes ? .line(received) : .tooLarge
                }
                received += bytes
                if received.count > AdminProtocol.maximumRequestBytes { return .tooLarge }
            }
        } catch {
            return .closed
        }
        return received.isEmpty ? .closed : .unterminated
    }

    /// The peer's credentials from `SO_PEERCRED`; nil when the kernel did not give them.
    private static func peerCredentials(of channel: any Channel) -> EventLoopFuture<AdminPeer?> {
        #if os(Linux)
            guard let provider = channel as? any SocketOptionProvider else {
                return channel.eventLoop.makeSucceededFuture(nil)
            }
            let credentials: EventLoopFuture<UnixDomainSocket.PeerCredentials> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET),
                name: SocketOptionName(SO_PEERCRED)
            )
            return credentials.map { AdminPeer(uid: $0.uid, pid: $0.pid) }.recover { _ in nil }
        #else
            // No SO_PEERCRED here: every peer is refused rather than trusted.
            return channel.eventLoop.makeSucceededFuture(nil)
        #endif
    }
}
