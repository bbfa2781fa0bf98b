public import Foundation
public import MoatAudit
import MoatCore
public import MoatPolicy
public import MoatProviders
public import MoatStore
public import MoatTools
public import MoatVault
import Synchronization

/// The agent pipeline: one inbound message becomes one turn of model rounds and gated tool calls.
///
/// principal → rate limit → injection flagger (a hit taints the conversation) → model round with the
/// tools' schemas → for each tool call: `Tool.prepare`, the effective level from ``TrustDecision``
/// (domain trust, the principal's ceiling, the taint cap) → refused / described / held for approval /
/// run and reported / run → output scrubbed of vault values and cut to size → next round or the reply.
///
/// Every step is an audit entry (metadata only: never message text, arguments' values in messages, tool
/// output or a secret). A model round and a tool run happen only after their entry is durable
/// (``AuditLog/performAfterAudit(_:_:)``): when the audit log cannot record it, it does not happen.
/// Budgets (``TurnBudget``) end a turn with a message for the user. Approvals resume exactly the stored
/// call (``approve(_:actor:events:)``).
///
/// An actor only for its set of busy conversations: a turn itself runs off the actor (its steps are
/// `nonisolated`), so turns of different conversations run in parallel; a second message for a
/// conversation whose turn is still running is refused (`busy`).
public actor Agent {
    let tools: [String: any Tool]
    let schemas: [ToolSchema]
    let policy: PolicyEngine
    let audit: AuditLog
    let vault: UnlockedVault
    let store: ConversationStore
    let notifier: any OwnerNotifier
    let now: @Sendable () -> Date
    /// What ``reload(routing:settings:)`` replaces while the server runs (SIGHUP): each step of a turn
    /// reads the values in force when it runs.
    private nonisolated let live: Mutex<Live>

    private struct Live: Sendable {
        var routing: ProviderRouting
        var settings: AgentSettings
        var limiter: RateLimiter
    }

    /// The providers and the routes to them.
    nonisolated var routing: ProviderRouting { live.withLock { $0.routing } }
    /// Limits, budgets, the default provider and the system prompt (`agent:` in config.yaml).
    public nonisolated var settings: AgentSettings { live.withLock { $0.settings } }
    nonisolated var limiter: RateLimiter { live.withLock { $0.limiter } }
    /// Conversations with a turn running.
    var busy = Set<String>()

    /// - Parameters:
    ///   - tools: the tools the model is offered (names must be unique; a later duplicate is ignored).
    ///   - authenticator: the agent's row-MAC key (``AgentKeyring/authenticator(from:)``).
    ///   - now: the clock for budgets, usage days and rate limits (injected in tests).
    public init(
        provider: any ModelProvider,
        tools: [any Tool],
        policy: PolicyEngine,
        audit: AuditLog,
        vault: UnlockedVault,
        database: MoatDatabase,
        authenticator: RowAuthenticator,
        settings: AgentSettings = AgentSettings(),
        notifier: any OwnerNotifier,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.init(
            routing: .single(provider), tools: tools, policy: policy, audit: audit, vault: vault, database: database,
            authenticator: authenticator, settings: settings, notifier: notifier, now: now)
    }

    /// An agent that answers through `routing`: several providers, routes per principal or conversation,
    /// fallbacks, allowlists and daily limits (``ProviderRouting``).
    public init(
        routing: ProviderRouting,
        tools: [any Tool],
        policy: PolicyEngine,
        audit: AuditLog,
        vault: UnlockedVault,
        database: MoatDatabase,
        authenticator: RowAuthenticator,
        settings: AgentSettings = AgentSettings(),
        notifier: any OwnerNotifier,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        var byName: [String: any Tool] = [:]
        var schemas: [ToolSchema] = []
        for tool in tools where byName[tool.name] == nil {
            byName[tool.name] = tool
            schemas.append(ToolSchema(name: tool.name, description: tool.description, parameters: tool.parameters))
        }
        // A turn reads its taint in the same transaction as its history (``newTurn``): one database.
        precondition(policy.uses(database), "the agent and its policy engine must share one moat.db")
        self.tools = byName
        self.schemas = schemas
        self.policy = policy
        self.audit = audit
        self.vault = vault
        self.store = ConversationStore(database: database, authenticator: authenticator, audit: audit)
        self.notifier = notifier
        self.now = now
        self.live = Mutex(
            Live(
                routing: routing, settings: settings,
                limiter: RateLimiter(RateLimit(limit: settings.messagesPerMinute, window: 60))))
    }

    /// Puts new providers, routes, limits and budgets in force (a config reload): turns that start after
    /// it use them; a running turn uses them from its next step. The rate limiter keeps its counts unless
    /// `messages_per_minute` changed.
    public nonisolated func reload(routing: ProviderRouting, settings: AgentSettings) {
        live.withLock { live in
            if live.settings.messagesPerMinute != settings.messagesPerMinute {
                live.limiter = RateLimiter(RateLimit(limit: settings.messagesPerMinute, window: 60))
            }
            live.routing = routing
            live.settings = settings
        }
    }

    // MARK: One message

    /// Handles one inbound message: a whole turn, up to the reply (or the budget that stopped it).
    ///
    /// - Parameters:
    ///   - onAccepted: called once the message is admitted, stored and audited (on disk), before the first
    ///     model round (a channel that answers "accepted" and sends the reply later waits for this).
    ///     Without it the message's commit skips its fsync: the turn's next commit, durable and made
    ///     before anything leaves the process, puts it on disk.
    ///   - onText: receives the model's text (scrubbed) as the provider streams it.
    /// - Throws: ``AgentError`` `.unknownSender` (the owner is told), `.rateLimited`, `.duplicate`,
    ///   `.busy`, `.invalidInput`, `.provider`, `.refused` (the audit log could not record a step),
    ///   `.storage`. Nothing reaches the model when the message is refused.
    public func handle(
        _ message: InboundMessage,
        onAccepted: (@Sendable () async -> Void)? = nil,
        onText: (@Sendable (String) async -> Void)? = nil
    ) async throws(AgentError) -> TurnOutcome {
        try await handle(message, onAccepted: onAccepted, events: onText.map(Self.textOnly))
    }

    /// Handles one inbound message as ``handle(_:onAccepted:onText:)`` does, showing the turn live:
    /// `events` gets each ``TurnEvent`` in order, every text in them scrubbed, ending with `.finished`
    /// when the turn completes (a thrown error ends it otherwise). The turn does not depend on the
    /// watcher: one that stops listening (its client went away) should return at once, and the turn
    /// still completes and is stored.
    public func handle(
        _ message: InboundMessage,
        onAccepted: (@Sendable () async -> Void)? = nil,
        events: (@Sendable (TurnEvent) async -> Void)?
    ) async throws(AgentError) -> TurnOutcome {
        try Self.validate(message, settings: settings)
        let principal = try await resolvePrincipal(message)
        try await admit(message, principal: principal)
        let route = try await chosenProvider(message, principal: principal)
        guard busy.insert(message.conversation).inserted else {
            throw AgentError(
                .busy, "a turn is still running in conversation \(Self.printable(message.conversation)); try again")
        }
        defer { busy.remove(message.conversation) }
        let observer = events.map { TurnObserver(vault: vault, sink: $0) }
        return try await mapped {
            try await self.runMessage(
                message, principal: principal, route: route, onAccepted: onAccepted, observer: observer)
        }
    }

    private nonisolated func runMessage(
        _ message: InboundMessage, principal: Principal, route: String?,
        onAccepted: (@Sendable () async -> Void)?, observer: TurnObserver?
    ) async throws -> TurnOutcome {
        let turn = Self.newID()
        let started = now()
        // The flagger reads the message; a hit taints the conversation (recorded, nothing dropped).
        let flags = InjectionFlagger.scan(message.text)
        // The message's rows and `agent.message` in one commit. Nobody outside learns of it before the
        // turn's next commit, which is durable (the model round's entry, made before the request leaves;
        // or the budget stop's), so this one skips its own fsync — unless a channel answers "accepted"
        // as soon as `onAccepted` runs, which must then find the message on disk.
        let opening = try await store.open(
            message, principal: principal.description, turn: turn, now: Self.millis(started), route: route,
            durability: onAccepted == nil ? .withNextCommit : .now
        ) { opening in
            guard case .opened = opening else { return nil }
            return Self.event(
                "agent.message", principal, message.conversation, "success",
                [
                    "channel": .string(message.channel), "turn": .string(turn),
                    "bytes": .int(Int64(message.text.utf8.count)),
                    "flags": .array(flags.map { .string($0.kind.rawValue) }),
                ])
        }
        // A refusal left no rows; its entry is durable before the sender hears of it.
        let refusal: String? =
            switch opening {
            case .opened: nil
            case .duplicate: "duplicate"
            case .otherOwner: "owner"
            case .tampered: "tamper"
            }
        if let refusal {
            try await audit.append(
                Self.event(
                    "agent.message.refused", principal, message.conversation, "denied", ["reason": .string(refusal)]))
        }
        switch opening {
        case .opened: break
        case .duplicate:
            throw AgentError(
                .duplicate, "this message (same idempotency key) was already handled; it was not run again")
        case .otherOwner:
            throw AgentError(
                .invalidInput,
                "conversation \(Self.printable(message.conversation)) belongs to another sender or channel; "
                    + "start a new conversation")
        case .tampered:
            throw AgentError(
                .refused,
                "conversation \(Self.printable(message.conversation)) failed its integrity check (its row in moat.db "
                    + "was changed outside Moat); start a new conversation and run moat doctor")
        }
        if !flags.isEmpty {
            let source: ContentSource = principal == .owner ? .owner : .contact
            let reason = ConversationTaint.clean.reading(from: source, flags: flags).reasons.joined(separator: "; ")
            try await policy.taint(message.conversation, reason: reason)
        }
        var state = try await newTurn(
            conversation: message.conversation, turn: turn, principal: principal, started: started)
        state.observer = observer
        if case .opened(_, let inputs) = opening { state.routeInputs = inputs }
        await onAccepted?()
        return try await runRounds(&state)
    }

    // MARK: Before the turn

    private static func validate(_ message: InboundMessage, settings: AgentSettings) throws(AgentError) {
        func check(_ ok: Bool, _ what: String) throws(AgentError) {
            if !ok { throw AgentError(.invalidInput, what) }
        }
        try check(!message.text.isEmpty, "the message is empty")
        try check(
            message.text.utf8.count <= settings.messageBytes,
            "the message is longer than \(settings.messageBytes) bytes (agent.message_bytes); shorten it")
        for (name, value, limit) in [
            ("channel", message.channel, 64), ("sender id", message.senderID, 256),
            ("conversation id", message.conversation, 128), ("idempotency key", message.idempotencyKey, 128),
        ] {
            try check(
                !value.isEmpty && value.utf8.count <= limit && PrintableText.isPrintable(value),
                "the \(name) must be 1 to \(limit) printable bytes")
        }
    }

    /// The owner on the owner's channel, a verified contact, or refused (audited, the owner told).
    private nonisolated func resolvePrincipal(_ message: InboundMessage) async throws(AgentError) -> Principal {
        if message.channel == InboundMessage.ownerChannel { return .owner }
        let found: Principal?
        do {
            found = try await policy.principal(channel: message.channel, senderID: message.senderID)
        } catch {
            throw AgentError(.storage, error.message)
        }
        if let found { return found }
        _ = try? await audit.append(
            AuditEvent(
                actor: "unknown", action: "agent.message.refused", target: message.channel, outcome: "denied",
                metadata: ["reason": "unknown_sender", "sender": .string(Self.printable(message.senderID))]))
        // Notices are limited like messages, so a flood of strangers cannot flood the owner.
        if case .admitted = limiter.admit("unknown|\(message.channel)", now: now().timeIntervalSince1970) {
            await notifier.notify(
                OwnerNotice(
                    kind: .unknownSender, conversationID: "",
                    text: "an unknown sender (\(Self.printable(message.senderID))) wrote on \(message.channel); "
                        + "nothing reached the model. Add them with moat contact add if you know them"))
        }
        throw AgentError(
            .unknownSender,
            "the sender is not a contact of this Moat on \(message.channel); the owner was told")
    }

    private nonisolated func admit(_ message: InboundMessage, principal: Principal) async throws(AgentError) {
        let key = "\(principal)|\(message.channel)"
        guard case .refused(let retry) = limiter.admit(key, now: now().timeIntervalSince1970) else { return }
        _ = try? await audit.append(
            AuditEvent(
                actor: principal.description, action: "agent.message.refused", target: message.conversation,
                outcome: "denied", metadata: ["reason": "rate_limited", "channel": .string(message.channel)]))
        let seconds = retry.map { " in \(Int($0.rounded(.up))) seconds" } ?? " later"
        throw AgentError(
            .rateLimited,
            "too many messages (agent.messages_per_minute is \(settings.messagesPerMinute)); try again\(seconds)")
    }

    // MARK: Helpers

    /// A fresh turn's state: the conversation's stored taint, plus "a non-owner wrote" for a contact; its
    /// history; and the principal's tokens today for the first round's budget. One read for all three.
    nonisolated func newTurn(conversation: String, turn: String, principal: Principal, started: Date) async throws
        -> TurnState
    {
        let day = Self.day(started)
        let policy = self.policy
        let start = try await store.turnStart(
            conversation, limit: settings.historyMessages, principal: principal.description, day: day
        ) { db in try policy.taintReading(of: conversation, in: db) }
        var taint = await policy.settle(start.taint)
        if principal != .owner {
            taint.reasons.append("a message from \(principal) (not the owner) is part of this turn")
        }
        var state = TurnState(
            conversation: conversation, turn: turn, principal: principal, started: started, taint: taint,
            messages: start.history)
        state.tokensRead = (day, start.tokens)
        return state
    }

    /// Appends an audit entry for the pipeline.
    nonisolated func record(
        _ action: String, _ principal: Principal, _ target: String, _ outcome: String,
        _ metadata: [String: AuditValue]
    ) async throws {
        try await audit.append(Self.event(action, principal, target, outcome, metadata))
    }

    /// The pipeline's audit entry of `action` by `principal`.
    static func event(
        _ action: String, _ principal: Principal, _ target: String, _ outcome: String,
        _ metadata: [String: AuditValue]
    ) -> AuditEvent {
        AuditEvent(actor: principal.description, action: action, target: target, outcome: outcome, metadata: metadata)
    }

    /// Runs `body`, turning any error into an ``AgentError`` whose message the owner can act on.
    func mapped<T: Sendable>(_ body: () async throws -> T) async throws(AgentError) -> T {
        do {
            return try await body()
        } catch let error as AgentError {
            throw error
        } catch let error as AuditError {
            throw AgentError(.refused, error.message)
        } catch let error as ProviderError {
            throw AgentError(.provider, error.message)
        } catch let error as PolicyError {
            switch error.code {
            case .notFound: throw AgentError(.notFound, error.message)
            case .alreadyUsed, .expired, .requestMismatch, .notApproved, .alreadyDecided:
                throw AgentError(.refused, error.message)
            default: throw AgentError(.storage, error.message)
            }
        } catch let error as ToolError {
            throw AgentError(.refused, error.message)
        } catch {
            throw AgentError(.storage, "moat.db could not be read or written: \(type(of: error))")
        }
    }

    static func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }

    /// The UTC day of `date` (`2026-12-06`), the key of daily token budgets.
    static func day(_ date: Date) -> String {
        String(UTCTimestamp.format(secondsSince1970: date.timeIntervalSince1970).prefix(10))
    }

    static func printable(_ text: String) -> String { PrintableText.excerpt(text, limit: 64) }

    static func newID() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<16).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }
}
