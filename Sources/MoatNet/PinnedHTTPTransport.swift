import Foundation
import MoatCore
public import NIOCore
import NIOHTTP1
import NIOPosix
public import NIOSSL

/// The real transport of the SSRF-guarded fetcher: one HTTP/1.1 request over SwiftNIO to the address
/// the guard checked.
///
/// It never resolves the host name: the connection goes to ``CheckedURL/address`` (so a DNS answer that
/// changes between the check and the connection — rebinding — cannot redirect it), `Host` carries the
/// URL's host, and for `https` the name is sent as SNI and the certificate is verified against it and
/// the system's trust roots (TLS 1.2 or newer). An `https` URL naming a bare IP address is refused: its
/// certificate could not be checked by name. Redirects are returned to ``GuardedFetcher``, which checks
/// every hop again. One request per connection, unless the transport keeps connections alive for
/// ``stream(_:method:headers:body:limits:_:)`` (``PinnedConnectionPool``); no proxy from the environment, no cookies, no
/// decompression. Every limit has a default and fails closed with a ``NetError`` `.fetchFailed`.
public struct PinnedHTTPTransport: PinnedTransport {
    /// Bounds of one fetch.
    public struct Limits: Sendable {
        /// Time to establish the TCP connection.
        public var connectTimeout: TimeAmount = .seconds(10)
        /// Time for the whole exchange, from connecting to the last body byte.
        public var totalTimeout: TimeAmount = .seconds(30)
        /// The largest response body accepted (5 MiB); a larger one is an error.
        public var maximumBodyBytes = 5 << 20

        public init() {}
    }

    let limits: Limits
    let userAgent: String
    let tls: NIOSSLContext
    /// The idle connections kept for ``stream(_:method:headers:body:limits:_:)`` (nil: one request per
    /// connection, `Connection: close`).
    public let pool: PinnedConnectionPool?

    /// - Parameters:
    ///   - additionalTrustRoots: certificates trusted besides the system's (tests; a private CA).
    ///   - keepAlive: set: streamed requests reuse kept connections within these bounds
    ///     (``PinnedConnectionPool``); nil: a new connection per request.
    public init(
        limits: Limits = Limits(), additionalTrustRoots: [NIOSSLCertificate] = [], userAgent: String = "Moat",
        keepAlive: PinnedConnectionPool.Limits? = nil
    ) throws {
        self.tls = try additionalTrustRoots.isEmpty ? Self.systemTrust.get() : Self.context(additionalTrustRoots)
        self.limits = limits
        self.userAgent = userAgent
        self.pool = keepAlive.map { PinnedConnectionPool(limits: $0) }
    }

    /// The client TLS context with the system's trust roots only, built once per process on first use
    /// and shared by every transport (a context is safe to share between connections). Building one
    /// reads and parses the whole system CA bundle (about 150 certificates): once per transport, that
    /// cost was paid by every provider, channel and web tool made, and by every config reload. As with
    /// most long-running servers, a changed system trust store takes effect at the next start.
    static let systemTrust = Result { try context([]) }

    /// A client context: TLS 1.2 or newer, full verification against the system's trust roots and
    /// `additionalTrustRoots`.
    static func context(_ additionalTrustRoots: [NIOSSLCertificate]) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if !additionalTrustRoots.isEmpty {
            configuration.additionalTrustRoots = [.certificates(additionalTrustRoots)]
        }
        return try NIOSSLContext(configuration: configuration)
    }

    public func send(
        _ target: CheckedURL,
        method: String,
        headers: [(name: String, value: String)],
        body: [UInt8] = []
    ) async throws -> FetchResponse {
        let url = target.url
        let host = url.host.description
        let (serverName, head) = try request(target, method: method, headers: headers, bodyCount: body.count)
        let address = try socketAddress(target.address, port: url.port)
        let limit = limits.maximumBodyBytes
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(limits.connectTimeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try self.addClientHandlers(to: channel, serverName: serverName)
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(limit: limit))
                    }
                }
                .connect(to: address)
                .get()
        } catch {
            throw NetError(.fetchFailed, "cannot connect to \(host) at \(target.address):\(url.port)")
        }
        let promise = channel.eventLoop.makePromise(of: FetchResponse.self)
        let timeout = channel.eventLoop.scheduleTask(in: limits.totalTimeout) {
            promise.fail(NetError(.fetchFailed, "\(host) did not answer within the time limit"))
            channel.close(promise: nil)
        }
        channel.pipeline.handler(type: ResponseCollector.self).whenComplete { result in
            switch result {
            case .success(let collector): collector.attach(promise)
            case .failure(let error): promise.fail(error)
            }
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !body.isEmpty {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            timeout.cancel()
            channel.close(promise: nil)
        }
        do {
            // A cancelled task (a channel stopped by a config reload mid long poll, a shutdown) closes the
            // connection now instead of waiting for an answer or the time limit.
            return try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                promise.fail(CancellationError())
                channel.close(promise: nil)
            }
        } catch let error as NetError {
            throw error
        } catch let error as NIOSSLError {
            throw NetError(.fetchFailed, "TLS with \(host) failed: \(error)")
        } catch {
            throw NetError(.fetchFailed, "fetching from \(host) failed: \(error)")
        }
    }
}

extension PinnedHTTPTransport {
    /// The TLS server name (nil for `http`) and the request head for `target`: the fixed headers first
    /// (`Host` from the URL, never from the caller), then the caller's, less the ones the transport owns.
    /// Without `keepAlive` the request asks for `Connection: close`.
    func request(
        _ target: CheckedURL, method: String, headers: [(name: String, value: String)], bodyCount: Int,
        keepAlive: Bool = false
    ) throws(NetError) -> (serverName: String?, head: HTTPRequestHead) {
        let url = target.url
        let serverName: String?
        switch (url.scheme == "https", url.host) {
        case (false, _): serverName = nil
        case (true, .name(let name)): serverName = name
        case (true, .address):
            throw NetError(
                .fetchFailed,
                "https to a bare IP address (\(url.host)) is refused: its certificate cannot be checked")
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: url.pathAndQuery)
        head.headers.add(name: "Host", value: url.hostHeader)
        head.headers.add(name: "User-Agent", value: userAgent)
        head.headers.add(name: "Accept-Encoding", value: "identity")
        if !keepAlive { head.headers.add(name: "Connection", value: "close") }
        let fixed: Set<String> = ["host", "user-agent", "accept-encoding", "connection", "content-length"]
        for header in headers where !fixed.contains(header.name.lowercased()) {
            head.headers.add(name: header.name, value: header.value)
        }
        if bodyCount > 0 { head.headers.add(name: "Content-Length", value: String(bodyCount)) }
        return (serverName, head)
    }

    func socketAddress(_ address: IPAddress, port: Int) throws(NetError) -> SocketAddress {
        do {
            return try SocketAddress(ipAddress: address.description, port: port)
        } catch {
            throw NetError(.fetchFailed, "\(address) is not a usable address")
        }
    }

    /// Adds the TLS client handler (for `https`), the mark of arriving bytes (a kept connection's) and
    /// the HTTP/1.1 client codec.
    func addClientHandlers(to channel: any Channel, serverName: String?, mark: KeptExchange? = nil) throws {
        if let serverName {
            let handler = try NIOSSLClientHandler(context: tls, serverHostname: serverName)
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        if let mark { try channel.pipeline.syncOperations.addHandler(ArrivalMark(exchange: mark)) }
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
    }
}

/// Collects one response (head, body up to a limit, end) and completes the fetch's promise.
private final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    let limit: Int
    private var promise: EventLoopPromise<FetchResponse>?
    private var status = 0
    private var headers: [(name: String, value: String)] = []
    private var body: [UInt8] = []
    private var finished: Result<FetchResponse, any Error>?

    init(limit: Int) {
        self.limit = limit
    }

    /// Called on the channel's event loop once the caller holds the promise.
    func attach(_ promise: EventLoopPromise<FetchResponse>) {
        self.promise = promise
        if let finished { promise.completeWith(finished) }
    }

    private func finish(_ result: Result<FetchResponse, any Error>) {
        guard finished == nil else { return }
        finished = result
        promise?.completeWith(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            headers = head.headers.map { ($0.name, $0.value) }
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= limit else {
                finish(.failure(NetError(.fetchFailed, "the response is larger than \(limit >> 20) MiB")))
                context.close(promise: nil)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            finish(.success(FetchResponse(status: status, headers: headers, body: body)))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(NetError(.fetchFailed, "the connection closed before the response was complete")))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }
}
