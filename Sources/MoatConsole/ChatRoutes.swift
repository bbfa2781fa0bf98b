import Foundation
import HTTPTypes
public import Hummingbird
public import MoatAgent
import MoatAuth
import MoatCore
public import MoatHTTP
import NIOCore

/// `POST /api/chat`: one turn of the owner's conversation, as `moat chat --message` runs it. Needs an
/// owner identity with the `write` scope: a turn can lead to actions (each still gated by its domain).
///
/// With `Accept: text/event-stream` the turn is shown live as server-sent events (``TurnEventView``):
/// `delta`, `tool`, `approval`, `budget`, then `done` with the whole turn (the `Turn` the JSON answer
/// has) or `error` with the message and the status a JSON answer would have had. A client that goes
/// away mid-turn does not stop the turn: it completes and is stored.
enum ChatRoutes {
    static func register(on router: Router<GatewayRequestContext>, auth: GatewayAuth, agent: Agent, table: RouteTable) {
        let write = AccessRoutes(router, "/api", .owner(.write), auth: auth, table: table)
        write.post("chat") { request, context -> Response in
            try await OwnerRoutes.respond {
                let body = try await RequestBody.read(OwnerAPI.ChatRequest.self, request, context)
                let message = body.message
                guard !message.isEmpty else { throw AuthError(.invalidInput, "the field \"message\" is empty") }
                let conversation = body.conversation
                let inbound = InboundMessage.fromOwner(message, conversation: conversation, provider: body.provider)
                if wantsEvents(request) { return stream(inbound, agent: agent) }
                return APIError.json(status: .ok, encoding: TurnView(try await agent.handle(inbound)))
            }
        }
        // The chat socket's token (``ChatSocket``): `write` scope, a browser identity, bound to its session.
        write.post("chat/live-token") { request, context -> Response in
            try await OwnerRoutes.respond {
                let body = try await RequestBody.read(
                    OwnerAPI.ChatTokenRequest.self, request, context, allowEmpty: true)
                let session: String?
                switch context.identity {
                case .session(let info): session = info.idHash
                case .tailscale: session = nil
                case .token, .none:
                    throw AuthError(
                        .forbidden,
                        "a chat token is for the console in a browser (a session or a Tailscale identity); "
                            + "a script sends POST /api/chat")
                }
                let version = try await auth.authority.tokenVersion()
                let token = try await auth.liveTokens.issue(
                    purpose: .chat, tokenVersion: version, lifetime: TimeInterval(body.lifetime), session: session)
                return APIError.json(status: .ok, encoding: OwnerAPI.LiveToken(token: token, expiresIn: body.lifetime))
            }
        }
        // Reached only without a WebSocket upgrade (an upgrade is answered before the router).
        AccessRoutes(router, "/api", .liveToken, auth: auth, table: table).get("chat/socket") { _, _ -> Response in
            var response = APIError.response(
                status: .upgradeRequired,
                "open a WebSocket here, offering the subprotocols \(ChatSocket.subprotocol) and "
                    + "\(ChatSocket.tokenPrefix)<token> with a token from POST /api/chat/live-token")
            response.headers[.upgrade] = "websocket"
            return response
        }
    }

    /// Whether the client asked for the live stream (`text/event-stream` among its `Accept` types).
    static func wantsEvents(_ request: Request) -> Bool {
        request.headers[values: .accept].contains { value in
            value.split(separator: ",").contains { type in
                let media = type.split(separator: ";").first ?? ""
                return media.trimmingCharacters(in: .whitespaces).lowercased() == "text/event-stream"
            }
        }
    }

    /// How long the stream may stay silent before a `: keep-alive` comment is written (a local model can
    /// take minutes before its first word).
    static let keepAliveInterval: Duration = .seconds(15)

    /// The turn as server-sent events, run while the body is written.
    static func stream(_ inbound: InboundMessage, agent: Agent) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                let failed = await relay(
                    inbound, agent: agent,
                    to: { event in try await writer.write(ByteBuffer(string: frame(TurnEventView(event)))) },
                    idle: keepAliveInterval,
                    // An SSE comment: clients skip it; a proxy in between sees the connection is alive.
                    keepAlive: { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) })
                // The client may be gone; the turn is stored either way.
                if let error = failed {
                    let failure = ChatFailure(error: error.message, status: Int(APIError.status(error.kind).code))
                    try? await writer.write(ByteBuffer(string: "event: error\ndata: \(json(failure))\n\n"))
                }
                try? await writer.finish(nil)
            })
    }

    /// Runs the turn of `inbound`, handing its events to `deliver` as they happen (``LiveTurn``: a
    /// watcher that goes away stops delivery, never the turn); the turn's error, if it failed.
    static func relay(
        _ inbound: InboundMessage, agent: Agent, to deliver: (TurnEvent) async throws -> Void, idle: Duration? = nil,
        keepAlive: () async throws -> Void = {}
    ) async -> AgentError? {
        let result = await LiveTurn.relay(
            { events -> Result<TurnOutcome, AgentError> in
                do throws(AgentError) {
                    return .success(try await agent.handle(inbound, events: events))
                } catch {
                    return .failure(error)
                }
            }, to: deliver, idle: idle, keepAlive: keepAlive)
        if case .failure(let error) = result { return error }
        return nil
    }

    /// `event: TYPE` and the event as JSON (`done`: the whole turn, as the JSON answer has it).
    static func frame(_ event: TurnEventView) -> String {
        let data = event.turn.map(json) ?? json(event)
        return "event: \(event.type)\ndata: \(data)\n\n"
    }

    /// One line of JSON: the encoder escapes line breaks inside strings.
    static func json(_ value: some Encodable) -> String {
        String(decoding: APIError.jsonData(value), as: UTF8.self)
    }

    /// The data of an `error` event.
    struct ChatFailure: Encodable {
        let error: String
        /// The HTTP status the JSON answer would have had.
        let status: Int
    }
}

extension OwnerAPI {
    /// `POST /api/chat` (its inline schema).
    struct ChatRequest: Decodable {
        let message: String
        let conversation: String?
        /// The provider of a new conversation (`providers.NAME`), as `moat chat --provider`.
        let provider: String?

        enum CodingKeys: String, CodingKey, CaseIterable { case message, conversation, provider }

        init(from decoder: any Decoder) throws {
            let body = try decoder.container(keyedBy: CodingKeys.self)
            message = try body.required(.message)
            conversation = try body.optional(.conversation)
            provider = try body.optional(.provider)
        }
    }
}

extension OwnerAPI {
    /// `POST /api/chat/live-token`; the body may be empty (the longest lifetime, 300 seconds).
    struct ChatTokenRequest: Decodable {
        /// Seconds, 1 to 300.
        let lifetime: Int

        enum CodingKeys: String, CodingKey, CaseIterable { case lifetime }

        init(from decoder: any Decoder) throws {
            let maximum = Int(LiveTokenIssuer.maximumLifetime)
            lifetime = try decoder.container(keyedBy: CodingKeys.self).optional(.lifetime) ?? maximum
            guard (1...maximum).contains(lifetime) else {
                throw AuthError(.invalidInput, "the field \"lifetime\" must be from 1 to \(maximum) seconds")
            }
        }
    }
}

extension Int: RequestField {
    static var expected: String { "a whole number" }
}
