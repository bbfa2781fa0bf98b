import Foundation
public import Hummingbird
public import MoatAdmin
import MoatAgent
import MoatAuth
import MoatCore
public import MoatHTTP

/// Owner routes that run a typed admin operation (``AdminOperations``), the same one `moat approvals`
/// and `moat usage` run through the admin socket: pending approvals and the model's token use.
///
/// Reading needs `read`. Deciding an approval needs `admin`: an approval is the owner's own "yes" to an
/// action the gateway held back, so a `write` token (which may start turns, as `POST /api/chat`) can
/// propose an action but never approve it.
enum OperationRoutes {
    static func register(
        on router: Router<GatewayRequestContext>, auth: GatewayAuth, operations: AdminOperations, table: RouteTable
    ) {
        let read = AccessRoutes(router, "/api", .owner(.read), auth: auth, table: table)
        let admin = AccessRoutes(router, "/api", .owner(.admin), auth: auth, table: table)
        read.get("approvals") { request, context -> Response in
            try await OwnerRoutes.respond {
                let all = try flag(request, "all")
                let result = try await operations.perform(.approvalsList(all: all), client: client(request, context))
                guard case .approvals(let records, _) = result else { throw unexpected }
                return APIError.json(
                    status: .ok, encoding: OwnerAPI.Approvals(approvals: records.map(OwnerAPI.Approval.init)))
            }
        }
        read.get("approvals/{id}") { request, context -> Response in
            try await OwnerRoutes.respond {
                let id = try approvalID(context)
                let result = try await operations.perform(.approvalsShow(id: id), client: client(request, context))
                guard case .approval(let record) = result else { throw unexpected }
                return APIError.json(status: .ok, encoding: OwnerAPI.Approval(record))
            }
        }
        admin.post("approvals/{id}/approve") { request, context -> Response in
            try await OwnerRoutes.respond {
                let id = try approvalID(context)
                let result = try await operations.perform(.approvalsApprove(id: id), client: client(request, context))
                return APIError.json(status: .ok, encoding: try OwnerAPI.Decision(result))
            }
        }
        admin.post("approvals/{id}/deny") { request, context -> Response in
            try await OwnerRoutes.respond {
                let id = try approvalID(context)
                let body = try await RequestBody.read(OwnerAPI.DenyRequest.self, request, context, allowEmpty: true)
                let result = try await operations.perform(
                    .approvalsDeny(id: id, reason: body.reason ?? ""), client: client(request, context))
                return APIError.json(status: .ok, encoding: try OwnerAPI.Decision(result))
            }
        }
        read.get("usage") { request, context -> Response in
            try await OwnerRoutes.respond {
                let days = try number(request, "days", default: 7, range: 1...UsageLedger.maximumDays)
                let result = try await operations.perform(.usage(days: days), client: client(request, context))
                guard case .usage(let entries, _) = result else { throw unexpected }
                return APIError.json(
                    status: .ok, encoding: OwnerAPI.Usage(days: days, entries: entries.map(OwnerAPI.UsageEntry.init)))
            }
        }
    }

    private static var unexpected: AdminFailure { AdminFailure("the operation answered something unexpected") }

    private static func client(_ request: Request, _ context: GatewayRequestContext) -> ClientInfo {
        OwnerAccessMiddleware.client(request, context)
    }

    /// The `{id}` path parameter: an approval id is short printable text.
    private static func approvalID(_ context: GatewayRequestContext) throws(AdminFailure) -> String {
        let id = context.parameters.get("id") ?? ""
        guard (1...64).contains(id.utf8.count), id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw AdminFailure(
                "the approval id in the path is malformed; take it from GET /api/approvals", kind: .invalidInput)
        }
        return id
    }

    /// A `true`/`false` query parameter (absent: false); anything else is a 400.
    private static func flag(_ request: Request, _ name: String) throws(AdminFailure) -> Bool {
        switch request.uri.queryParameters.get(name) {
        case nil, "false": return false
        case "true": return true
        default: throw AdminFailure("the query parameter \(name) must be true or false", kind: .invalidInput)
        }
    }

    /// A decimal query parameter within `range` (absent: `fallback`); anything else is a 400.
    private static func number(
        _ request: Request, _ name: String, default fallback: Int, range: ClosedRange<Int>
    ) throws(AdminFailure) -> Int {
        guard let text = request.uri.queryParameters.get(name) else { return fallback }
        guard text.count <= 6, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text),
            range.contains(value)
        else {
            throw AdminFailure(
                "the query parameter \(name) must be a number from \(range.lowerBound) to \(range.upperBound)",
                kind: .invalidInput)
        }
        return value
    }
}

extension OwnerAPI {
    /// `GET /api/approvals`.
    struct Approvals: Encodable {
        let approvals: [Approval]
    }

    /// One approval: the exact held call and its state.
    struct Approval: Encodable {
        let id, status, domain, tool, arguments, destination, requestHash, principal: String
        let createdAt, expiresAt: Int64

        init(_ view: ApprovalView) {
            id = view.id
            status = view.status
            domain = view.domain.rawValue
            tool = view.tool
            arguments = view.arguments
            destination = view.destination
            requestHash = view.requestHash
            principal = view.principal
            createdAt = view.createdAt
            expiresAt = view.expiresAt
        }

        enum CodingKeys: String, CodingKey {
            case id, status, domain, tool, arguments, destination, principal
            case requestHash = "request_hash"
            case createdAt = "created_at"
            case expiresAt = "expires_at"
        }
    }

    /// `POST /api/approvals/{id}/deny`.
    struct DenyRequest: Decodable {
        let reason: String?

        enum CodingKeys: String, CodingKey, CaseIterable { case reason }

        init(from decoder: any Decoder) throws {
            reason = try decoder.container(keyedBy: CodingKeys.self).optional(.reason)
        }
    }

    /// An approval decided: with the agent open, the held call ran (or the model was told no) and the
    /// conversation went on (`turn`); otherwise only the decision was recorded.
    struct Decision: Encodable {
        let id: String
        let approved: Bool
        let turn: TurnView?

        init(_ result: AdminResult) throws(AdminFailure) {
            switch result {
            case .approvalResumed(let id, let approved, let turn):
                (self.id, self.approved, self.turn) = (id, approved, turn)
            case .approved(let id): (self.id, approved, turn) = (id, true, nil)
            case .denied(let id): (self.id, approved, turn) = (id, false, nil)
            default: throw AdminFailure("the operation answered something unexpected")
            }
        }
    }

    /// `GET /api/usage`.
    struct Usage: Encodable {
        let days: Int
        let entries: [UsageEntry]
    }

    struct UsageEntry: Encodable {
        let day, principal, provider: String
        let inputTokens, outputTokens, rounds: Int
        /// The provider's `daily_token_limit`, when it has one.
        let dailyLimit: Int?

        init(_ entry: UsageLedger.Entry) {
            day = entry.day
            principal = entry.principal
            provider = entry.provider
            inputTokens = entry.inputTokens
            outputTokens = entry.outputTokens
            rounds = entry.rounds
            dailyLimit = entry.dailyLimit
        }

        enum CodingKeys: String, CodingKey {
            case day, principal, provider, rounds
            case inputTokens = "input_tokens"
            case outputTokens = "output_tokens"
            case dailyLimit = "daily_limit"
        }
    }
}
