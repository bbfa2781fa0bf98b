import Foundation
public import HTTPTypes
public import HummingbirdCore
public import HummingbirdWebSocket
public import Logging
public import MoatAgent
import MoatAuth
import MoatCore
public import MoatHTTP
public import NIOCore
import NIOWebSocket

/// The owner's chat over a WebSocket: `GET /api/chat/socket` upgraded, for the console's `/chat` page.
///
/// The upgrade is authenticated only by a live token of purpose `chat` (`POST /api/chat/live-token`,
/// at most 5 minutes, bound to the browser session that asked for it), offered as the subprotocol
/// `moat.token.<token>` next to `moat.chat` (a browser cannot set `Authorization` on a WebSocket, and
/// a token never goes in a query string). The token is used up by the upgrade: a reconnect needs a new
/// one. `Host` must be this gateway's and a browser's `Origin` one of its origins (``HostGuard``). A
/// refused upgrade gets `400` and no socket; the reason goes to the server log, never the token.
///
/// In: text frames of JSON `{"type":"message","text":…,"conversation":…}` (`conversation` optional;
/// at most ``messageLimit`` bytes). Out: `{"type":"ready"}`, then for each message the turn's events
/// as ``TurnEventView`` JSON — `delta`, `tool`, `approval`, `budget`, `done` (with `turn`) — the
/// vocabulary of `POST /api/chat`'s event stream, or `{"type":"error","error":…,"status":…}`. Bad
/// input gets an error frame and the socket stays open; a frame over the limit gets one and the socket
/// closes (1009). Before each message, and every ``sessionCheckInterval``, the session that minted the
/// token must still be valid (and the owner's token version unchanged): after a logout, a revoke-all
/// or the session's expiry the socket closes (1008).
public struct ChatSocket: Sendable {
    public static let path = "/api/chat/socket"
    /// The subprotocol the server answers with.
    public static let subprotocol = "moat.chat"
    /// The subprotocol that carries the live token: this prefix, then the token.
    public static let tokenPrefix = "moat.token."
    /// The largest message the socket reads, in bytes of UTF-8.
    public static let messageLimit = 16 * 1024
    /// The largest frame the server decodes at all; a larger one closes the socket without an answer.
    public static let frameLimit = 64 * 1024
    static let sessionCheckInterval: Duration = .seconds(2)

    let hostGuard: HostGuard
    let auth: GatewayAuth
    let agent: Agent
    let logger: Logger

    public init(hostGuard: HostGuard, auth: GatewayAuth, agent: Agent, logger: Logger) {
        self.hostGuard = hostGuard
        self.auth = auth
        self.agent = agent
        self.logger = logger
    }

    /// The server's WebSocket settings: frames up to ``frameLimit``, text checked as UTF-8, a ping every
    /// 30 seconds (which also keeps a proxy in front from closing a quiet socket).
    public static var configuration: WebSocketServerConfiguration {
        WebSocketServerConfiguration(
            maxFrameSize: frameLimit, autoPing: .enabled(timePeriod: .seconds(30)), closeTimeout: .seconds(10),
            validateUTF8: true)
    }

    public typealias Handler = WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>

    /// Whether to upgrade `head`, and the socket's handler when so. Each refusal is logged with its
    /// reason.
    public func shouldUpgrade(_ head: HTTPRequest) async -> ShouldUpgradeResult<Handler> {
        switch await admit(head) {
        case .failure(let refusal):
            logger.notice("chat socket refused", metadata: ["reason": "\(refusal.reason)"])
            return .dontUpgrade
        case .success(let claims):
            logger.info("chat socket opened")
            return .upgrade([.secWebSocketProtocol: Self.subprotocol]) { inbound, outbound, _ in
                await serve(inbound, outbound, claims: claims)
            }
        }
    }

    struct Refusal: Error {
        let reason: String
    }

    /// The checks of an upgrade, in order; the token is looked at (and used up) last.
    func admit(_ head: HTTPRequest) async -> Result<LiveTokenClaims, Refusal> {
        guard head.path == Self.path else { return .failure(Refusal(reason: "no WebSocket at this path")) }
        guard hostGuard.allowsHost(head.authority) else { return .failure(Refusal(reason: "Host is not this gateway")) }
        if let origin = head.headerFields[.origin], !hostGuard.allowsOrigin(origin) {
            return .failure(Refusal(reason: "cross-origin upgrade (the Origin is not this gateway)"))
        }
        if head.headerFields[.secFetchSite]?.lowercased() == "cross-site" {
            return .failure(Refusal(reason: "cross-site upgrade"))
        }
        let offered = head.headerFields[values: .secWebSocketProtocol].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let tokens = offered.filter { $0.hasPrefix(Self.tokenPrefix) }
        guard offered.contains(Self.subprotocol), tokens.count == 1 else {
            return .failure(
                Refusal(
                    reason: "offer the subprotocols \(Self.subprotocol) and \(Self.tokenPrefix)<token> "
                        + "(a token from POST /api/chat/live-token)"))
        }
        do {
            let version = try await auth.authority.tokenVersion()
            let claims = try await auth.liveTokens.verify(
                String(tokens[0].dropFirst(Self.tokenPrefix.count)), purpose: .chat, tokenVersion: version)
            guard await stillValid(claims) else { return .failure(Refusal(reason: "the session has ended")) }
            return .success(claims)
        } catch {
            return .failure(Refusal(reason: error.message))
        }
    }

    /// Whether the identity that minted the token still holds: the owner's token version is the one the
    /// token carries, and the session it is bound to (if any) is valid.
    func stillValid(_ claims: LiveTokenClaims) async -> Bool {
        guard let version = try? await auth.authority.tokenVersion(), version == claims.tokenVersion else {
            return false
        }
        guard let session = claims.session else { return true }
        return (try? await auth.authority.session(idHash: session)) != nil
    }

    /// Reads messages until the socket closes, while a watcher closes it once the session ends.
    func serve(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, claims: LiveTokenClaims) async {
        guard (try? await outbound.writeTextMessage(#"{"type":"ready"}"#)) != nil else { return }
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                while (try? await Task.sleep(for: Self.sessionCheckInterval)) != nil {
                    guard await stillValid(claims) else {
                        try? await outbound.close(.policyViolation, reason: Self.sessionEnded)
                        break
                    }
                }
                return false
            }
            group.addTask {
                await read(inbound, outbound, claims: claims)
                return true
            }
            // The watcher ends only the socket; a turn under way still completes and is stored.
            for await readerDone in group where readerDone { group.cancelAll() }
        }
    }

    static let sessionEnded = "the session ended: log in again"

    private func read(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, claims: LiveTokenClaims)
        async
    {
        var messages = inbound.messages(maxSize: Self.messageLimit).makeAsyncIterator()
        do {
            while let message = try await messages.next() {
                guard await stillValid(claims) else {
                    try await outbound.writeTextMessage(Self.errorFrame(Self.sessionEnded, status: 401))
                    try await outbound.close(.policyViolation, reason: Self.sessionEnded)
                    return
                }
                if let session = claims.session, let info = try? await auth.authority.session(idHash: session) {
                    try? await auth.authority.touchSession(info)
                }
                switch ChatSocketMessage.parse(message) {
                case .failure(let problem):
                    try await outbound.writeTextMessage(Self.errorFrame(problem.message, status: 400))
                    if problem.closes {
                        try await outbound.close(.messageTooLarge, reason: "message too large")
                        return
                    }
                case .success(let chat):
                    try await turn(chat, outbound)
                }
            }
        } catch {
            // The client went away, or sent a fragmented message past the limit (the library closes).
        }
    }

    /// One turn, its events written as they happen; the turn completes even when the client is gone.
    private func turn(_ chat: ChatSocketMessage, _ outbound: WebSocketOutboundWriter) async throws {
        let inbound = InboundMessage.fromOwner(chat.text, conversation: chat.conversation)
        let failed = await ChatRoutes.relay(
            inbound, agent: agent,
            to: { event in try await outbound.writeTextMessage(ChatRoutes.json(TurnEventView(event))) })
        if let error = failed {
            try await outbound.writeTextMessage(
                Self.errorFrame(error.message, status: Int(APIError.status(error.kind).code)))
        }
    }

    /// `{"type":"error","error":…,"status":…}`: the status a JSON answer of `POST /api/chat` would have had.
    static func errorFrame(_ message: String, status: Int) -> String {
        ChatRoutes.json(ErrorFrame(error: message, status: status))
    }

    struct ErrorFrame: Encodable {
        var type = "error"
        let error: String
        let status: Int
    }
}

/// One message the chat socket reads: `{"type":"message","text":…,"conversation":…}`.
struct ChatSocketMessage: Sendable, Equatable {
    let text: String
    let conversation: String?

    struct Problem: Error, Equatable {
        let message: String
        /// Whether the socket closes after the error frame (a message over the limit).
        var closes = false
    }

    static let shape = #"send {"type":"message","text":"…","conversation":"…"} (conversation optional)"#

    /// The message in `frame`, or what is wrong with it (never echoing its text).
    static func parse(_ frame: WebSocketMessage) -> Result<ChatSocketMessage, Problem> {
        guard case .text(let text) = frame else {
            return .failure(Problem(message: "binary frames are not read: " + shape))
        }
        let size = text.utf8.count
        guard size <= ChatSocket.messageLimit else {
            return .failure(
                Problem(
                    message: "the message is \(size) bytes; at most \(ChatSocket.messageLimit) are read", closes: true))
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            return .failure(Problem(message: "the frame is not a JSON object: " + shape))
        }
        let known: Set<String> = ["type", "text", "conversation"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            return .failure(
                Problem(message: "unknown field \"\(PrintableText.excerpt(unknown, limit: 40))\": " + shape))
        }
        guard object["type"] as? String == "message" else {
            return .failure(Problem(message: "the field \"type\" must be \"message\": " + shape))
        }
        guard let body = object["text"] as? String, !body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        else {
            return .failure(Problem(message: "the field \"text\" must be a non-empty string: " + shape))
        }
        let conversation = object["conversation"]
        if conversation != nil, !(conversation is String), !(conversation is NSNull) {
            return .failure(Problem(message: "the field \"conversation\" must be a string: " + shape))
        }
        return .success(ChatSocketMessage(text: body, conversation: conversation as? String))
    }
}

extension HTTPField.Name {
    fileprivate static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}

extension ConnectionLimiter {
    /// HTTP/1.1 that can upgrade a request to a WebSocket when `shouldUpgrade` says so (the chat socket).
    /// Every connection is counted here from the moment it is accepted and closed when its first request
    /// head takes longer than `idleTimeout` (``admittingFirst(_:headTimeout:)``); an upgraded one is held
    /// open (never the idle connection closed to make room).
    public func http1WebSocket(
        idleTimeout: TimeAmount,
        shouldUpgrade: @escaping @Sendable (HTTPRequest) async -> ShouldUpgradeResult<ChatSocket.Handler>
    ) -> HTTPServerBuilder {
        let configuration = HTTP1WebSocketUpgradeChannel.Configuration(
            http1: http1Configuration(idleTimeout: idleTimeout), ws: ChatSocket.configuration)
        return HTTPServerBuilder { responder in
            let channel = HTTP1WebSocketUpgradeChannel(responder: responder, configuration: configuration) {
                head, channel, _ in
                let decision = await shouldUpgrade(head)
                if case .upgrade = decision { self.holdOpen(channel) }
                return decision
            }
            return self.admittingFirst(channel, headTimeout: idleTimeout)
        }
    }
}
