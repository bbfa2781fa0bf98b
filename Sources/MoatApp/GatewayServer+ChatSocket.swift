import HummingbirdCore
import MoatConsole
import MoatHTTP

extension GatewayServer {
    /// The HTTP/1.1 server: plain, or — when the owner's chat socket is wired (an owner and an agent) —
    /// one that also upgrades `GET /api/chat/socket` to a WebSocket (``ChatSocket``).
    static func httpServer(chatSocket: ChatSocket?, limiter: ConnectionLimiter) -> HTTPServerBuilder {
        guard let chatSocket else { return .http1(configuration: limiter.http1Configuration(idleTimeout: idleTimeout)) }
        return limiter.http1WebSocket(idleTimeout: idleTimeout, shouldUpgrade: chatSocket.shouldUpgrade)
    }
}
