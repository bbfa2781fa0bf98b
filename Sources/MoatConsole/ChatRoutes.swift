import Foundation
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
                let result = await LiveTurn.relay(
                    { events -> Result<TurnOutcome, AgentError> in
                        do throws(AgentError) {
                            return .success(try await agent.handle(inbound, events: events))
                        } catch {
                            return .failure(error)
                        }
                    },
                    to: { event in try await writer.write(ByteBuffer(string: frame(TurnEventView(event)))) },
                    idle: keepAliveInterval,
                    // An SSE comment: clients skip it; a proxy in between sees the connection is alive.
                    keepAlive: { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) })
                // The client may be gone; the turn is stored either way.
                if case .failure(let error) = result {
                    let failure = ChatFailure(error: error.message, status: Int(APIError.status(error.kind).code))
                    try? await writer.write(ByteBuffer(string: "event: error\ndata: \(json(failure))\n\n"))
                }
                try? await writer.finish(nil)
            })
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
