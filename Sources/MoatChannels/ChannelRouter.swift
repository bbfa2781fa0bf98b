public import Foundation
import GRDB
public import MoatCore
public import MoatPolicy
public import MoatStore
import Synchronization

/// The agent as the channels see it: the pipeline behind every known sender's message (MoatAgent's
/// `AgentChannelTurns`), and the owner's approve/deny.
public protocol ChannelTurns: Sendable {
    /// Runs the whole turn for a message from a known sender (`principal` is what
    /// `PolicyEngine.principal(channel:senderID:)` decided): calls `accepted` once the message is stored and
    /// audited, and returns the reply (scrubbed). Throws ``ChannelRefusal`` when the message is refused
    /// before it is accepted, any other error when moat.db could not take it in or the turn failed.
    func runTurn(_ message: ChannelMessage, principal: Principal, accepted: @escaping @Sendable () async -> Void)
        async throws -> String

    /// The owner's `approve ID` / `deny ID` from their bound account: carries it out (the approved call runs
    /// once, exactly as held) and returns what to tell the owner and the continued turn's reply. Throws
    /// ``ChannelRefusal`` with the reason a decision is refused (unknown, already decided, expired).
    func decide(approvalID: String, approve: Bool, actor: String) async throws -> ApprovalDecided
}

/// What an approve/deny did: the owner's answer, and the reply of the turn it continued for the
/// conversation that asked (an agent conversation id, `CHANNEL:CONVERSATION` for channel messages).
public struct ApprovalDecided: Sendable, Hashable {
    public let ownerText: String
    public let conversation: String
    public let reply: String

    public init(ownerText: String, conversation: String, reply: String) {
        self.ownerText = ownerText
        self.conversation = conversation
        self.reply = reply
    }
}

/// A message the pipeline refused for good (a duplicate, a rate limit, a bad field): the sender may be told
/// `message`, and the cursor moves on.
public struct ChannelRefusal: Error, Sendable {
    /// The text for the sender, or nil to answer nothing (a duplicate delivery).
    public let message: String?

    public init(_ message: String?) { self.message = message }
}

/// The channel framework's core: the ``ChannelInbox`` every adapter delivers to, the one routing of an
/// inbound message (owner binding code → the owner's commands → the agent for owner and contacts → pairing
/// for unknown senders), the cursors in `moat.db`, the turns running in the background, and the way out
/// to each platform and to the owner's bound accounts.
///
/// ``run()`` runs every adapter under its ``ChannelSupervisor`` and every accepted turn in one discarding
/// task group; no free-standing task. Adapters can be started and stopped while it runs (a config reload:
/// ``start(_:)``, ``stop(channel:)``); the cursors stay in `moat.db`, so a stopped and started adapter
/// goes on from the saved cursor and the idempotency key drops a message seen twice. At most ``maximumTurns`` turns run or wait at once: beyond that,
/// `deliver` throws, the adapter backs off and the platform delivers again from the saved cursor.
public final class ChannelRouter: ChannelInbox, Sendable {
    public static let maximumTurns = 64
    /// The prefix of agent conversations and idempotency keys of channel messages: `CHANNEL:`.
    static func scoped(_ channel: String, _ id: String) -> String { channel + ":" + id }

    /// The running adapters by channel, each with what stops it.
    private let live = Mutex<[String: RunningAdapter]>([:])
    let database: MoatDatabase
    let policy: PolicyEngine
    public let pairing: PairingDesk
    let turns: any ChannelTurns
    let backoff: ReconnectBackoff
    let now: @Sendable () -> Date
    /// Told when something could not be sent or an adapter failed (the server's log); never message text.
    let report: @Sendable (String) -> Void
    /// Told of each new pairing request (the owner's notifier), with the code.
    let onPairingRequest: @Sendable (PendingCode) async -> Void

    private let jobs: AsyncStream<@Sendable () async -> Void>
    private let queue: AsyncStream<@Sendable () async -> Void>.Continuation
    private let running = Atomic<Int>(0)
    /// Conversations with a turn running, and who waits for each: one turn per conversation at a time,
    /// in the platform's order (the agent would refuse a second as busy, and the message would be lost).
    private let lanes = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])
    /// What the owner's overview shows per running channel.
    private let healthByChannel = Mutex<[String: ChannelHealth]>([:])
    /// Approvals whose owner decision is being carried out (a double tap must run nothing twice).
    private let deciding = Mutex<Set<String>>([])

    public init(
        adapters: [any ChannelAdapter],
        database: MoatDatabase,
        policy: PolicyEngine,
        pairing: PairingDesk,
        turns: any ChannelTurns,
        backoff: ReconnectBackoff = ReconnectBackoff(),
        now: @escaping @Sendable () -> Date = { Date() },
        report: @escaping @Sendable (String) -> Void = { _ in },
        onPairingRequest: @escaping @Sendable (PendingCode) async -> Void = { _ in }
    ) throws {
        self.database = database
        self.policy = policy
        self.pairing = pairing
        self.turns = turns
        self.backoff = backoff
        self.now = now
        self.report = report
        self.onPairingRequest = onPairingRequest
        (jobs, queue) = AsyncStream.makeStream()
        for adapter in adapters { try start(adapter) }
    }

    /// Runs every adapter and the accepted turns until the task is cancelled.
    public func run() async {
        let jobs = self.jobs
        await withDiscardingTaskGroup { group in
            for await job in jobs { group.addTask { await job() } }
            group.cancelAll()
        }
    }

    /// The channels with a running adapter.
    public var channels: Set<String> { live.withLock { Set($0.keys) } }

    /// Starts `adapter` under its ``ChannelSupervisor`` in ``run()``'s group, from its saved cursor.
    /// Throws when its name is not a channel name, an adapter runs for that channel already
    /// (``stop(channel:)`` it first), or ``run()`` has ended.
    public func start(_ adapter: any ChannelAdapter) throws(ChannelError) {
        let channel = adapter.channel
        guard PolicyEngine.isBindable(channel) else {
            throw ChannelError(
                .configuration,
                "a channel adapter's name must be 1-32 of a-z 0-9 - _, and neither owner nor webhook…")
        }
        let (stopped, stop) = AsyncStream<Void>.makeStream()
        let (ended, end) = AsyncStream<Void>.makeStream()
        let entry = RunningAdapter(adapter: adapter, stop: stop, ended: ended, claim: JobClaim())
        let added = live.withLock { running -> Bool in
            guard running[channel] == nil else { return false }
            running[channel] = entry
            return true
        }
        guard added else {
            throw ChannelError(.configuration, "an adapter runs for channel \(channel) already")
        }
        let started = now()
        healthByChannel.withLock { $0[channel] = ChannelHealth(channel: channel, state: .starting, since: started) }
        let supervisor = ChannelSupervisor(
            adapter: adapter, inbox: self, backoff: backoff,
            onFailure: { [weak self, report] error, wait in
                let problem = Self.describe(error)
                report("the \(channel) channel failed (\(problem)); reconnecting in \(wait)")
                guard let self else { return }
                let at = now()
                healthByChannel.withLock { health in
                    guard health[channel] != nil else { return }
                    health[channel] = ChannelHealth(
                        channel: channel, state: .reconnecting, since: at, lastContact: health[channel]?.lastContact,
                        problem: problem, retryIn: wait)
                }
            })
        let claim = entry.claim
        let job: @Sendable () async -> Void = {
            defer { end.finish() }
            // Stopped before ``run()`` got to it (or after ``run()`` ended): nothing to run.
            guard claim.take() else { return }
            // The supervisor runs until ``stop(channel:)`` finishes `stopped`, or the router's task is cancelled.
            await withDiscardingTaskGroup { group in
                group.addTask { await supervisor.run() }
                for await _ in stopped {}
                group.cancelAll()
            }
        }
        guard case .enqueued = queue.yield(job) else {
            live.withLock { _ = $0.removeValue(forKey: channel) }
            healthByChannel.withLock { _ = $0.removeValue(forKey: channel) }
            end.finish()
            throw ChannelError(.configuration, "the channel router has stopped; the \(channel) adapter was not started")
        }
    }

    /// Stops the adapter of `channel` and returns once it has stopped (its platform connection closed), so
    /// another one may start for the channel; false when none ran. A message it was handing in when
    /// stopped is not lost: its cursor was not saved, so it comes again to the next adapter of the
    /// channel, and its idempotency key keeps a message already taken in from counting twice.
    @discardableResult
    public func stop(channel: String) async -> Bool {
        guard live.withLock({ $0[channel] != nil }) else { return false }
        // Health first: a start for the channel waits until it is out of `live`, and its fresh entry stays.
        healthByChannel.withLock { _ = $0.removeValue(forKey: channel) }
        guard let running = live.withLock({ $0.removeValue(forKey: channel) }) else { return false }
        running.stop.finish()
        // An adapter whose job never started (``run()`` not running, or not yet at it) has nothing to wait
        // for; taking the claim keeps the job from starting later.
        if running.claim.take() { return true }
        for await _ in running.ended {}
        return true
    }

    /// Each running channel's state, by name: connected (its platform answered since it last started or
    /// failed), starting, or reconnecting after a failure (why, and the wait).
    public var health: [ChannelHealth] {
        healthByChannel.withLock { $0.values.sorted { $0.channel < $1.channel } }
    }

    // MARK: ChannelInbox

    public func reached(channel: String) {
        let at = now()
        healthByChannel.withLock { health in
            guard let current = health[channel] else { return }
            let since = current.state == .connected ? current.since : at
            health[channel] = ChannelHealth(channel: channel, state: .connected, since: since, lastContact: at)
        }
    }

    public func savedCursor(channel: String) async throws -> String? {
        try await database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT cursor FROM channel_cursors WHERE channel = ?", arguments: [channel])
        }
    }

    public func advance(channel: String, to cursor: String) async throws {
        reached(channel: channel)
        let at = Int64(now().timeIntervalSince1970 * 1000)
        try await database.pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO channel_cursors (channel, cursor, updated_at) VALUES (?, ?, ?)
                    ON CONFLICT(channel) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at
                    """, arguments: [channel, cursor, at])
        }
    }

    @discardableResult
    public func deliver(_ message: ChannelMessage) async throws -> DeliveryOutcome {
        let outcome = try await route(message)
        if let cursor = message.cursor { try await advance(channel: message.channel, to: cursor) }
        return outcome
    }

    // MARK: Routing

    private func route(_ message: ChannelMessage) async throws -> DeliveryOutcome {
        guard adapter(for: message.channel) != nil else {
            throw ChannelError(.configuration, "no adapter is running for channel \(Self.printable(message.channel))")
        }
        guard !message.senderID.isEmpty, !message.conversation.isEmpty, !message.idempotencyKey.isEmpty,
            message.senderID.utf8.count <= 256, message.conversation.utf8.count <= 90,
            message.idempotencyKey.utf8.count <= 90
        else {
            return .refused(
                "a sender id, conversation and idempotency key are required (sender ≤ 256 bytes, the others ≤ 90)")
        }
        // 1. A pending owner binding on this channel, and a code-shaped message.
        switch try await pairing.tryBinding(message) {
        case .bound(let binding):
            await send(
                message,
                "This account is now the owner's on \(binding.channel). Approval prompts and notices come here.",
                kind: .notice)
            return .ownerBound
        case .wrong:
            await send(message, "That is not the code.", kind: .notice)
            return .refused("wrong owner binding code")
        case .none:
            break
        }
        // 2. Who the sender is: the one decision, in the policy engine.
        let principal = try await policy.principal(channel: message.channel, senderID: message.senderID)
        if let command = PairingCommand(message.text) {
            guard principal == .owner else {
                try await pairing.refusedDecision(channel: message.channel, senderID: message.senderID)
                await send(message, "Only the owner's bound account can let someone in.", kind: .notice)
                return .refused("a pairing decision from an account that is not the owner's")
            }
            return await decidePairing(command, message)
        }
        let command = OwnerCommand(message.text)
        if principal == .owner, let command { return try await startDecision(command, message) }
        if command != nil {
            // A tap or text meant for the owner, from another account: refused, and never shown to the model.
            await send(message, "Only the owner's bound account can approve or deny.", kind: .notice)
            return .refused("an approval decision from an account that is not the owner's")
        }
        guard let principal else { return try await pair(message) }
        return try await startTurn(message, principal: principal)
    }

    /// An unknown sender: a pairing code (or why not); nothing of the message is kept.
    private func pair(_ message: ChannelMessage) async throws -> DeliveryOutcome {
        switch try await pairing.request(
            channel: message.channel, senderID: message.senderID, conversation: message.conversation)
        {
        case .code(let pending, let isNew):
            let minutes = max(1, Int((pending.expiresAt - Int64(now().timeIntervalSince1970 * 1000)) / 60_000))
            await send(
                message,
                "This assistant answers only people its owner has approved. Your pairing code is \(pending.code) "
                    + "(valid about \(minutes) more minute\(minutes == 1 ? "" : "s")). Give it to the owner; "
                    + "your messages are not read until they approve it.", kind: .pairing)
            if isNew { await onPairingRequest(pending) }
            return .pairingCode
        case .refused(let reason):
            await send(message, "No pairing code: \(reason).", kind: .pairing)
            return .refused(reason)
        }
    }

    /// A known sender: the turn runs in the group; `deliver` returns once the agent accepted the message.
    private func startTurn(_ message: ChannelMessage, principal: Principal) async throws -> DeliveryOutcome {
        guard running.add(1, ordering: .relaxed).newValue <= Self.maximumTurns else {
            running.subtract(1, ordering: .relaxed)
            throw ChannelError(.busy, "too many turns are running; the channel will deliver again shortly")
        }
        let lane = Self.scoped(message.channel, message.conversation)
        await enterLane(lane)
        let (signal, answer) = AsyncStream<Result<Void, any Error>>.makeStream()
        let accepted = Atomic<Bool>(false)
        let job: @Sendable () async -> Void = { [self] in
            defer {
                leaveLane(lane)
                running.subtract(1, ordering: .relaxed)
            }
            do {
                let reply = try await turns.runTurn(message, principal: principal) {
                    accepted.store(true, ordering: .sequentiallyConsistent)
                    answer.yield(.success(()))
                    answer.finish()
                }
                await send(message, reply, kind: .reply(inReplyTo: message.idempotencyKey))
            } catch {
                guard accepted.load(ordering: .sequentiallyConsistent) else {
                    answer.yield(.failure(error))
                    answer.finish()
                    return
                }
                await send(message, "The turn failed: \(Self.describe(error))", kind: .reply(inReplyTo: nil))
            }
        }
        guard case .enqueued = queue.yield(job) else {
            leaveLane(lane)
            running.subtract(1, ordering: .relaxed)
            throw ChannelError(.busy, "the channels are shutting down")
        }
        for await result in signal {
            switch result {
            case .success: return .accepted
            case .failure(let refusal as ChannelRefusal):
                if let text = refusal.message { await send(message, text, kind: .reply(inReplyTo: nil)) }
                return .refused(refusal.message ?? "already handled")
            case .failure(let error): throw error
            }
        }
        throw ChannelError(.deliveryFailed, "the message was not taken in; it will be delivered again")
    }

    /// The owner's `approve ID` / `deny ID`: claimed here, carried out in the group. `deliver` returns once
    /// the decision is claimed, not once the approved call and the turn after it have run, so a platform's
    /// tap is answered at once; the owner is told the result when it is done. A second decision of the same
    /// approval — while the first runs, or after it — is refused here and runs nothing.
    private func startDecision(_ command: OwnerCommand, _ message: ChannelMessage) async throws -> DeliveryOutcome {
        let id = command.approvalID
        let shown = Self.printable(id)
        guard deciding.withLock({ $0.insert(id).inserted }) else {
            return await refuseDecision(message, "approval \(shown) is being decided already")
        }
        // `approved` but not used passes: a decision recorded before a crash, whose call the agent still runs.
        if let status = try? await policy.approval(id).status, let state = Self.final(status) {
            deciding.withLock { _ = $0.remove(id) }
            return await refuseDecision(message, "approval \(shown) was already \(state)")
        }
        let job: @Sendable () async -> Void = { [self] in
            defer { deciding.withLock { _ = $0.remove(id) } }
            do {
                let decided = try await turns.decide(
                    approvalID: id, approve: command.approve, actor: "owner@\(message.channel)")
                // Recorded: from here the approval's final status refuses a second decision, with how it
                // ended, so the claim goes before the owner is told (a tap after the answer is never "being
                // decided").
                deciding.withLock { _ = $0.remove(id) }
                await send(message, decided.ownerText, kind: .notice)
                // The continued turn's reply goes where the call was asked for, if that is a channel here.
                let parts = decided.conversation.split(separator: ":", maxSplits: 1).map(String.init)
                if parts.count == 2, adapter(for: parts[0]) != nil, !decided.reply.isEmpty {
                    await send(
                        OutboundMessage(
                            conversation: parts[1], recipient: parts[1], text: decided.reply,
                            kind: .reply(inReplyTo: nil)), on: parts[0])
                }
            } catch let refusal as ChannelRefusal {
                await send(message, refusal.message ?? "Not done.", kind: .notice)
            } catch {
                await send(message, "Not done: \(Self.describe(error))", kind: .notice)
            }
        }
        guard case .enqueued = queue.yield(job) else {
            deciding.withLock { _ = $0.remove(id) }
            throw ChannelError(.busy, "the channels are shutting down")
        }
        return .ownerCommand
    }

    /// The owner's pairing decision from their chat, through the pairing desk's one path (its checks,
    /// single use, expiry and audit are the CLI's): the owner is told what was done or why not, and a
    /// sender let in is told to write again (nothing they wrote before was kept).
    private func decidePairing(_ command: PairingCommand, _ message: ChannelMessage) async -> DeliveryOutcome {
        let actor = "owner@\(message.channel)"
        do {
            switch (command.target, command.action) {
            case (_, .invalid(let reason)):
                return await refuseDecision(message, reason)
            case (let target, .approve(let ceilings)):
                let (_, pending) =
                    switch target {
                    case .reference(let reference):
                        try await pairing.approve(reference: reference, ceilings: ceilings, actor: actor)
                    case .code(let code): try await pairing.approve(code: code, ceilings: ceilings, actor: actor)
                    }
                await send(
                    message,
                    "Let in: \(pending.channel) sender \(Self.printable(pending.senderID)) is a contact now, with "
                        + "ceilings \(OwnerPairingPreset.describe(ceilings)).", kind: .notice)
                await send(
                    OutboundMessage(
                        conversation: pending.conversation, recipient: pending.senderID,
                        text: "The owner approved you. Write your message again: nothing before this was read.",
                        kind: .notice), on: pending.channel)
            case (let target, .deny):
                let pending =
                    switch target {
                    case .reference(let reference): try await pairing.deny(reference: reference, actor: actor)
                    case .code(let code): try await pairing.deny(code: code, actor: actor)
                    }
                await send(
                    message, "Denied: \(pending.channel) sender \(Self.printable(pending.senderID)) is not let in.",
                    kind: .notice)
            }
            return .ownerCommand
        } catch {
            return await refuseDecision(message, Self.describe(error))
        }
    }

    /// Tells the owner why a decision was not taken, and says so to the adapter (a tap's answer).
    private func refuseDecision(_ message: ChannelMessage, _ reason: String) async -> DeliveryOutcome {
        await send(message, "Not done: \(reason).", kind: .notice)
        return .refused(reason)
    }

    /// How an approval that can no longer be decided ended, or nil while a decision may still be carried out.
    static func final(_ status: ApprovalRecord.Status) -> String? {
        switch status {
        case .pending, .approved: nil
        case .used: "approved, and its call ran"
        case .denied: "denied"
        case .expired: "expired"
        }
    }

    /// Waits until no turn runs in `lane`, then holds it.
    private func enterLane(_ lane: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let free = lanes.withLock { lanes -> Bool in
                guard lanes[lane] != nil else {
                    lanes[lane] = []
                    return true
                }
                lanes[lane]!.append(continuation)
                return false
            }
            if free { continuation.resume() }
        }
    }

    /// Hands `lane` to the next waiter, or frees it.
    private func leaveLane(_ lane: String) {
        let next = lanes.withLock { lanes -> CheckedContinuation<Void, Never>? in
            guard var waiting = lanes[lane], !waiting.isEmpty else {
                lanes[lane] = nil
                return nil
            }
            let next = waiting.removeFirst()
            lanes[lane] = waiting
            return next
        }
        next?.resume()
    }

    // MARK: Out

    /// Sends `text` back into the conversation of `message`.
    private func send(_ message: ChannelMessage, _ text: String, kind: OutboundMessage.Kind) async {
        await send(
            OutboundMessage(conversation: message.conversation, recipient: message.senderID, text: text, kind: kind),
            on: message.channel)
    }

    /// The adapter running `channel` (a webhook route hands its platform's deliveries to it), or nil.
    public func adapter(for channel: String) -> (any ChannelAdapter)? { live.withLock { $0[channel]?.adapter } }

    /// Sends `outbound` on `channel`; a failure is reported (the audit log holds what happened).
    public func send(_ outbound: OutboundMessage, on channel: String) async {
        guard let adapter = adapter(for: channel) else { return }
        do {
            try await adapter.send(outbound)
        } catch {
            report("a message on \(channel) could not be sent: \(Self.describe(error))")
        }
    }

    /// Sends `text` to the owner's bound account on every running channel; false when none is bound.
    @discardableResult
    public func notifyOwner(_ text: String, prompt: ApprovalPrompt? = nil) async -> Bool {
        await notifyOwner(text, kind: prompt.map { .approvalPrompt($0) } ?? .notice)
    }

    /// Sends `text` as `kind` (a notice, an approval prompt, a pairing request) to the owner's bound account
    /// on every running channel; false when none is bound.
    @discardableResult
    public func notifyOwner(_ text: String, kind: OutboundMessage.Kind) async -> Bool {
        guard let bindings = try? await policy.ownerBindings() else { return false }
        var sent = false
        for binding in bindings where adapter(for: binding.channel) != nil {
            await send(
                OutboundMessage(
                    conversation: binding.conversation, recipient: binding.senderID, text: text, kind: kind),
                on: binding.channel)
            sent = true
        }
        return sent
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? any ClassifiedError { return PrintableText.excerpt("\(error)", limit: 300) }
        return "\(type(of: error))"
    }

    static func printable(_ text: String) -> String { PrintableText.excerpt(text, limit: 64) }
}

/// An adapter started by ``ChannelRouter/start(_:)``: finishing `stop` stops it; `ended` finishes once it has.
/// Its job in ``ChannelRouter/run()`` and ``ChannelRouter/stop(channel:)`` race for `claim`: the job runs
/// the adapter only when it takes the claim first.
private struct RunningAdapter: Sendable {
    let adapter: any ChannelAdapter
    let stop: AsyncStream<Void>.Continuation
    let ended: AsyncStream<Void>
    let claim: JobClaim
}

/// Taken once, by whichever side comes first.
private final class JobClaim: Sendable {
    private let taken = Atomic(false)

    /// True for the first caller only.
    func take() -> Bool {
        taken.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}

/// `approve ID` / `deny ID` (a button tap's reference text, or typed): the whole message, case-insensitive
/// verb, one id of printable non-space characters.
struct OwnerCommand: Hashable {
    let approve: Bool
    let approvalID: String

    init?(_ text: String) {
        let parts = text.split(whereSeparator: \.isWhitespace)
        guard parts.count == 2, parts[1].utf8.count <= 64, PrintableText.isPrintable(String(parts[1])) else {
            return nil
        }
        switch parts[0].lowercased() {
        case "approve": approve = true
        case "deny": approve = false
        default: return nil
        }
        approvalID = String(parts[1])
    }
}

/// One running channel as the owner's overview shows it (no message text, no secret: the problem is the
/// same description the log gets).
public struct ChannelHealth: Sendable, Hashable {
    public enum State: String, Sendable {
        /// Started; its platform has not answered yet.
        case starting
        /// Its platform answered since it started or last failed.
        case connected
        /// It failed and runs again after ``ChannelHealth/retryIn``.
        case reconnecting
    }

    public let channel: String
    public let state: State
    /// When it entered ``state``.
    public let since: Date
    /// When its platform last answered.
    public let lastContact: Date?
    public let problem: String?
    public let retryIn: Duration?

    public init(
        channel: String, state: State, since: Date, lastContact: Date? = nil, problem: String? = nil,
        retryIn: Duration? = nil
    ) {
        (self.channel, self.state, self.since, self.lastContact) = (channel, state, since, lastContact)
        (self.problem, self.retryIn) = (problem, retryIn)
    }
}
