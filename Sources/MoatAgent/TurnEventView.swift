import MoatCore

/// One ``TurnEvent`` as the live stream's clients see it (a line of the admin socket's chat stream,
/// the data of a `POST /api/chat` server-sent event): a JSON object whose `type` says which fields it has.
///
/// - `delta`: `round`, `text` — a piece of the model's text.
/// - `tool`: `stage` `proposed` (`index`, `round`, `tool`, `domain`, `arguments`), `decided` (`index`,
///   `tool`, `decision`, `domain_level`, `level`, `limited_by`, `explanation`, `taint`), `finished`
///   (`index`, `tool`, `decision`, `level`, `outcome`, `explanation`).
/// - `approval`: `approval_id`, `tool`, `summary`, `reason` (as in the turn's `pending` list).
/// - `budget`: `limit`, `message`.
/// - `done`: `turn`, the whole turn as ``TurnView``.
public struct TurnEventView: Sendable, Equatable, Codable {
    public var type: String
    public var round: Int?
    public var text: String?
    public var stage: String?
    public var index: Int?
    public var tool: String?
    public var domain: String?
    public var arguments: String?
    public var decision: String?
    public var domainLevel: Int?
    public var level: Int?
    public var limitedBy: [String]?
    public var explanation: String?
    public var taint: [String]?
    public var outcome: String?
    public var approvalID: String?
    public var summary: String?
    public var reason: String?
    public var limit: String?
    public var message: String?
    public var turn: TurnView?

    enum CodingKeys: String, CodingKey {
        case type, round, text, stage, index, tool, domain, arguments, decision, level, explanation, taint, outcome,
            summary, reason, limit, message, turn
        case domainLevel = "domain_level"
        case limitedBy = "limited_by"
        case approvalID = "approval_id"
    }

    init(type: String) {
        self.type = type
    }

    public init(_ event: TurnEvent) {
        switch event {
        case .text(let text, let round):
            self.init(type: "delta")
            self.round = round
            self.text = text
        case .toolProposed(let call):
            self.init(type: "tool")
            stage = "proposed"
            index = call.index
            round = call.round
            tool = call.tool
            domain = call.domain?.rawValue
            arguments = call.arguments
        case .toolDecided(let call):
            self.init(type: "tool")
            stage = "decided"
            index = call.index
            tool = call.tool
            decision = call.decision.rawValue
            domainLevel = call.domainLevel.rawValue
            level = call.level.rawValue
            limitedBy = call.limitedBy
            explanation = call.explanation
            taint = call.taintReasons
        case .toolFinished(let call):
            self.init(type: "tool")
            stage = "finished"
            index = call.index
            tool = call.report.tool
            decision = call.report.decision.rawValue
            level = call.report.level?.rawValue
            outcome = call.report.outcome
            explanation = call.report.explanation
        case .approvalPending(let action):
            self.init(type: "approval")
            let pending = TurnView.Pending(action)
            approvalID = pending.approvalID
            tool = pending.tool
            summary = pending.summary
            reason = pending.reason
        case .budgetReached(let stop):
            self.init(type: "budget")
            limit = stop.limit.rawValue
            message = stop.message
        case .finished(let outcome):
            self.init(type: "done")
            turn = TurnView(outcome)
        }
    }
}
