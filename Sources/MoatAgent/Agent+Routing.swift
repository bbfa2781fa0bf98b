import Foundation
import MoatAudit
import MoatCore
public import MoatProviders
import Synchronization

/// The providers an agent answers with, who may use each, and which answers whom.
///
/// A turn's route is fixed at its first round: the provider the owner chose for the conversation
/// (`moat chat --provider`), else the most specific `agent.routes` entry that matches the principal
/// (`owner` or `contact:ID`, then `channel:NAME`, then `contacts`, then `everyone`), else
/// `agent.provider`. Providers whose `allowed_principals` leave the principal out are dropped from it
/// (audited); when none remains the turn stops and the owner is told. Each round then tries the route in
/// order: a provider past its `daily_token_limit` is passed over, and one that fails with an outage
/// (``ProviderError/isOutage``) hands the round to the next, but only while nothing of the answer was
/// shown and no tool call of the turn was acted on. Once a provider answered, the rest of the turn stays
/// with it.
public struct ProviderRouting: Sendable {
    /// One configured provider and its settings (who may use it, its daily limit).
    public struct Member: Sendable {
        public let provider: any ModelProvider
        public let settings: ProviderSettings

        public init(_ provider: any ModelProvider, settings: ProviderSettings) {
            self.provider = provider
            self.settings = settings
        }
    }

    let members: [String: Member]
    let defaultProvider: String
    let routes: [ProviderRoute]

    /// - Throws: ``AgentError`` `.invalidInput` when `defaultProvider` or a route names a provider that is
    ///   not among `members`.
    public init(members: [Member], defaultProvider: String, routes: [ProviderRoute] = []) throws(AgentError) {
        var byName: [String: Member] = [:]
        for member in members where byName[member.provider.name] == nil { byName[member.provider.name] = member }
        let known = members.map(\.provider.name).joined(separator: ", ")
        guard byName[defaultProvider] != nil else {
            throw AgentError(
                .invalidInput, "agent.provider names \(defaultProvider), which is not among providers: \(known)")
        }
        for route in routes {
            for name in route.providers where byName[name] == nil {
                throw AgentError(
                    .invalidInput,
                    "agent.routes.\(route.principals) names provider \(PrintableText.excerpt(name, limit: 64)), "
                        + "which is not among providers: \(known); add it under providers: or remove it from the list")
            }
        }
        self.members = byName
        self.defaultProvider = defaultProvider
        self.routes = routes
    }

    /// One provider that answers everyone, with no limit of its own.
    public static func single(_ provider: any ModelProvider) -> ProviderRouting {
        var settings = ProviderSettings(name: provider.name, baseURL: "", model: "")
        settings.allowedPrincipals = [.everyone]
        // swift-format-ignore: NeverUseForceTry
        return try! ProviderRouting(members: [Member(provider, settings: settings)], defaultProvider: provider.name)
    }

    /// The configured providers' names, sorted.
    public var names: [String] { members.keys.sorted() }

    /// The ordered provider names for `principal` writing on `channel`, and the key that chose them.
    func route(for principal: Principal, channel: String, chosen: String?) -> (names: [String], key: String) {
        if let chosen { return ([chosen], "moat chat --provider") }
        let matching = routes.filter { $0.principals.matches(principal, channel: channel) }
        if let best = matching.max(by: { $0.principals.specificity < $1.principals.specificity }) {
            // `max` keeps the last of equals; the first in the file should win.
            let first = matching.first { $0.principals.specificity == best.principals.specificity } ?? best
            return (first.providers, "agent.routes.\(first.principals)")
        }
        return ([defaultProvider], "agent.provider")
    }
}

/// The providers one turn may use, fixed at its first round.
struct TurnRoute: Sendable {
    /// Allowed providers, in the order they are tried.
    var candidates: [String]
    /// The key of config.yaml (or the chat option) that chose them.
    var key: String
    /// The provider that answered; the turn's later rounds stay with it.
    var answered: String?
    /// Providers passed over (down, or past their daily limit) before one answered.
    var fallbacks: [String] = []
}

extension Agent {
    enum RoundResult: Sendable {
        case answered(ModelReply, provider: String)
        case stopped(TurnOutcome)
    }

    /// The provider the owner chose for a new conversation, checked: nil when the message names none.
    ///
    /// - Throws: ``AgentError`` `.invalidInput` for a name that is not configured, a provider the owner
    ///   may not use, a sender other than the owner, or an existing conversation opened with another.
    nonisolated func chosenProvider(_ message: InboundMessage, principal: Principal) async throws(AgentError)
        -> String?
    {
        guard let name = message.provider else { return nil }
        guard principal == .owner else {
            throw AgentError(.invalidInput, "only the owner chooses a conversation's provider")
        }
        guard let member = routing.members[name] else {
            throw AgentError(
                .invalidInput,
                "there is no provider \(Self.printable(name)) under providers: in config.yaml; "
                    + "--provider takes one of: \(routing.names.joined(separator: ", "))")
        }
        guard member.settings.allows(.owner, channel: message.channel) else {
            throw AgentError(
                .invalidInput,
                "providers.\(name).allowed_principals leaves out the owner; add owner to it to chat with it")
        }
        let stored: String?
        let exists: Bool
        do {
            stored = try await store.route(message.conversation)
            exists = try await store.conversation(message.conversation) != nil
        } catch {
            throw AgentError(.storage, "moat.db could not be read: \(type(of: error))")
        }
        guard !exists || stored == name else {
            throw AgentError(
                .invalidInput,
                "conversation \(Self.printable(message.conversation)) already uses "
                    + "\(stored.map { "provider \($0)" } ?? "the configured route"); --provider chooses the "
                    + "provider of a new conversation: leave out --conversation")
        }
        return name
    }

    /// The turn's route inputs: as the message's commit left them, else read once for the turn.
    nonisolated func routeInputs(_ state: inout TurnState) async throws -> ConversationStore.RouteInputs {
        if let inputs = state.routeInputs { return inputs }
        let inputs = try await store.routeInputs(state.conversation)
        state.routeInputs = inputs
        return inputs
    }

    /// One model round through the turn's route: the reply and the provider that gave it, or the
    /// outcome of a turn that no provider may or can answer.
    nonisolated func routedRound(_ request: ModelRequest, _ state: inout TurnState, day: String) async throws
        -> RoundResult
    {
        if state.route == nil {
            guard let route = try await resolveRoute(&state) else {
                state.rounds -= 1
                return .stopped(try await noProvider(state))
            }
            state.route = route
        }
        guard var route = state.route else { return .stopped(try await noProvider(state)) }
        let candidates = route.answered.map { [$0] } ?? route.candidates
        var failures: [ProviderError] = []
        var limited: [(name: String, limit: Int)] = []
        for (index, name) in candidates.enumerated() {
            guard let member = routing.members[name] else { continue }
            let next = index + 1 < candidates.count ? candidates[index + 1] : nil
            if let limit = member.settings.dailyTokenLimit,
                try await store.tokensUsed(provider: name, day: day) >= limit
            {
                try await reachedLimit(name, limit: limit, state, day: day, next: next)
                limited.append((name, limit))
                continue
            }
            let delivered = DeliveredText()
            do {
                let reply = try await attempt(member.provider, request, state, delivered: delivered)
                route.answered = name
                route.fallbacks += candidates[..<index]
                state.route = route
                return .answered(reply, provider: name)
            } catch let error as ProviderError {
                // A turn that stays with the provider that answered it still names the route's next one.
                let other = next ?? (route.answered == nil ? nil : route.candidates.first { $0 != name })
                guard let other else {
                    failures.append(error)
                    break
                }
                if let refusal = Self.fallbackRefusal(
                    error, next: other, delivered: delivered.isSet,
                    actedOn: state.toolCalls > 0 || !state.calls.isEmpty || state.rounds > 1)
                {
                    throw refusal
                }
                failures.append(error)
                try await record(
                    "agent.model.fallback", state.principal, state.conversation, "failure",
                    [
                        "from": .string(name), "to": .string(other), "reason": .string(error.code.description),
                        "turn": .string(state.turn),
                    ])
            }
        }
        if let last = failures.last {
            let passed = limited.map { "providers.\($0.name).daily_token_limit is used up today" }
            let tried = failures.count > 1 ? "; \(failures.count) providers of this route were tried" : ""
            let note = passed.isEmpty ? "" : "; " + passed.joined(separator: "; ")
            throw AgentError(.provider, last.message + tried + note)
        }
        state.rounds -= 1
        return .stopped(try await limitStop(state, limited))
    }

    /// Why the round may not go on to `next` after `error`, or nil when it may.
    static func fallbackRefusal(_ error: ProviderError, next: String, delivered: Bool, actedOn: Bool) -> AgentError? {
        guard error.isOutage else { return AgentError(.provider, error.message) }
        if delivered {
            return AgentError(
                .provider,
                error.message + "; provider \(next) was not tried, as part of this answer was already shown: "
                    + "send the message again")
        }
        if actedOn {
            return AgentError(
                .provider,
                error.message + "; provider \(next) was not tried, as this turn's tool calls were already "
                    + "acted on (another model would continue a plan it did not make): send the message again")
        }
        return nil
    }

    /// One attempt at one provider, after its `agent.model` entry is durable; a failure is audited.
    private nonisolated func attempt(
        _ provider: any ModelProvider, _ request: ModelRequest, _ state: TurnState, delivered: DeliveredText
    ) async throws -> ModelReply {
        let event = AuditEvent(
            actor: state.principal.description, action: "agent.model", target: state.conversation,
            metadata: [
                "provider": .string(provider.name), "turn": .string(state.turn), "round": .int(Int64(state.rounds)),
                "messages": .int(Int64(request.messages.count)),
            ])
        let observer = state.observer
        let round = state.rounds
        do {
            let reply = try await audit.performAfterAudit(event) {
                try await provider.complete(request) {
                    delivered.set()
                    await observer?.text($0, round: round)
                }
            }
            await observer?.endRound(round, text: reply.text)
            return reply
        } catch let error as ProviderError {
            _ = try? await record(
                "agent.model.failed", state.principal, state.conversation, "failure",
                ["provider": .string(provider.name), "code": .string(error.code.description)])
            throw error
        }
    }

    /// The turn's route with the providers its principal may not use left out (audited); nil when none
    /// remains.
    private nonisolated func resolveRoute(_ state: inout TurnState) async throws -> TurnRoute? {
        let inputs = try await routeInputs(&state)
        let channel = inputs.channel
        let (names, key) = routing.route(for: state.principal, channel: channel, chosen: inputs.chosen)
        let allowed = names.filter { routing.members[$0]?.settings.allows(state.principal, channel: channel) == true }
        if allowed.count < names.count {
            try await record(
                "agent.route.skipped", state.principal, state.conversation, "denied",
                [
                    "route": .string(key), "turn": .string(state.turn),
                    "skipped": .array(names.filter { !allowed.contains($0) }.map { .string($0) }),
                ])
        }
        guard !allowed.isEmpty else { return nil }
        return TurnRoute(candidates: allowed, key: key)
    }

    /// Stops a turn whose route holds no provider its principal may use; the owner is told how to fix it.
    private nonisolated func noProvider(_ state: TurnState) async throws -> TurnOutcome {
        var state = state
        let inputs = try await routeInputs(&state)
        let (names, key) = routing.route(for: state.principal, channel: inputs.channel, chosen: inputs.chosen)
        let stop = BudgetStop(
            limit: .noProvider,
            message: "Moat stopped this turn: no model provider is available to this sender; the owner was told.")
        await state.observer?.emit(.budgetReached(stop))
        try await record(
            "agent.budget", state.principal, state.conversation, "denied",
            ["limit": .string(stop.limit.rawValue), "turn": .string(state.turn), "route": .string(key)])
        let list = names.joined(separator: ", ")
        await notifier.notify(
            OwnerNotice(
                kind: .noProvider, conversationID: state.conversation,
                text: "a turn of \(state.principal) stopped: its route (\(key): \(list)) names only providers whose "
                    + "allowed_principals leave it out; add \(state.principal) to providers.NAME.allowed_principals "
                    + "of one of them, or route it to a provider it may use"))
        return state.outcome(reply: stop.message, stoppedBy: stop)
    }

    /// Records that `name` is past its daily limit: the owner is told once per provider and UTC day, and
    /// each turn that passes it over is audited.
    private nonisolated func reachedLimit(_ name: String, limit: Int, _ state: TurnState, day: String, next: String?)
        async throws
    {
        if try await store.firstLimitNotice(provider: name, day: day, now: Self.millis(now())) {
            try await record(
                "agent.provider.limit", state.principal, name, "denied",
                ["limit": .int(Int64(limit)), "day": .string(day)])
            let after =
                "Moat sends nothing more to it until midnight UTC (routes that list another provider fall back to it); "
                + "raise providers.\(name).daily_token_limit in config.yaml to go on today"
            await notifier.notify(
                OwnerNotice(
                    kind: .providerLimit, conversationID: state.conversation,
                    text: "provider \(name) used its daily_token_limit of \(limit) tokens today (\(day) UTC). \(after)")
            )
        }
        try await record(
            "agent.model.fallback", state.principal, state.conversation, "denied",
            [
                "from": .string(name), "to": next.map { .string($0) } ?? .null, "reason": .string("daily_token_limit"),
                "turn": .string(state.turn),
            ])
    }

    /// Stops a turn whose every provider is past its daily limit (the owner was told when each got there).
    private nonisolated func limitStop(_ state: TurnState, _ limited: [(name: String, limit: Int)]) async throws
        -> TurnOutcome
    {
        let names = limited.map(\.name)
        let stop = BudgetStop(
            limit: .providerTokens,
            message: "Moat stopped this turn: today's token limit of provider \(names.joined(separator: ", ")) "
                + "(providers.NAME.daily_token_limit) is used up; it resets at midnight UTC.")
        await state.observer?.emit(.budgetReached(stop))
        try await record(
            "agent.budget", state.principal, state.conversation, "denied",
            [
                "limit": .string(stop.limit.rawValue), "turn": .string(state.turn),
                "providers": .array(names.map { .string($0) }),
            ])
        return state.outcome(reply: stop.message, stoppedBy: stop)
    }
}

/// Whether any text of a round reached the reader (then no other provider may take the round over).
final class DeliveredText: Sendable {
    private let flag = Atomic(false)
    func set() { flag.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { flag.load(ordering: .sequentiallyConsistent) }
}
