import Foundation
public import Hummingbird
public import MoatAgent
import MoatAuth
import MoatCore
public import MoatHTTP
import NIOCore

/// `POST /api/chat`: one turn of the owner's conversation, as `moat chat --message` runs it. Needs an
/// owner identity with the `write` scope: a turn can lead to actions (each still gated by its domain).
enum ChatRoutes {
    static func register(on router: Router<GatewayRequestContext>, auth: GatewayAuth, agent: Agent, table: RouteTable) {
        let write = AccessRoutes(router, "/api", .owner(.write), auth: auth, table: table)
        write.post("chat") { request, context -> Response in
            try await OwnerRoutes.respond {
                let body = try await RequestBody.read(OwnerAPI.ChatRequest.self, request, context)
                let message = body.message
                guard !message.isEmpty else { throw AuthError(.invalidInput, "the field \"message\" is empty") }
                let conversation = body.conversation
                let inbound = InboundMessage.fromOwner(message, conversation: conversation)
                return APIError.json(status: .ok, encoding: TurnView(try await agent.handle(inbound)))
            }
        }
    }
}

extension OwnerAPI {
    /// `POST /api/chat` (its inline schema).
    struct ChatRequest: Decodable {
        let message: String
        let conversation: String?

        enum CodingKeys: String, CodingKey, CaseIterable { case message, conversation }

        init(from decoder: any Decoder) throws {
            let body = try decoder.container(keyedBy: CodingKeys.self)
            message = try body.required(.message)
            conversation = try body.optional(.conversation)
        }
    }
}
