import MoatCore
import MoatVault
import Synchronization

/// Hands a turn's events to whoever watches it (nobody, for a turn nobody streams), each text through
/// the vault's scrub first.
///
/// Text pieces go through ``UnlockedVault/scrubPrefix(_:)``: the end of a piece that could be the start
/// of a secret's value waits for the next piece (or the end of the round), so a value split across
/// pieces never shows in part. A round whose provider streamed nothing shows its whole text as one piece
/// when the round ends.
final class TurnObserver: Sendable {
    private let sink: (@Sendable (TurnEvent) async -> Void)?
    private let vault: UnlockedVault
    private let pending = Mutex(Pending())

    private struct Pending {
        var round = 0
        var held = ""
        var shown = false
    }

    init(vault: UnlockedVault, sink: (@Sendable (TurnEvent) async -> Void)?) {
        self.vault = vault
        self.sink = sink
    }

    /// Whether anyone watches (so a turn nobody streams pays for no event).
    var watched: Bool { sink != nil }

    func emit(_ event: TurnEvent) async {
        await sink?(event)
    }

    /// One piece of round `round`'s text, as the provider streamed it.
    func text(_ piece: String, round: Int) async {
        guard watched else { return }
        let ready = pending.withLock { pending -> String in
            if pending.round != round { pending = Pending(round: round) }
            let (scrubbed, held) = vault.scrubPrefix(pending.held + piece)
            pending.held = held
            if !scrubbed.isEmpty { pending.shown = true }
            return scrubbed
        }
        if !ready.isEmpty { await emit(.text(ready, round: round)) }
    }

    /// The end of round `round`, whose whole text was `text`: what was held back, or the whole text
    /// when nothing was streamed.
    func endRound(_ round: Int, text: String) async {
        guard watched else { return }
        let rest = pending.withLock { pending -> String in
            defer { pending = Pending(round: round + 1) }
            guard pending.round == round, pending.shown || !pending.held.isEmpty else { return vault.scrub(text) }
            return vault.scrub(pending.held)
        }
        if !rest.isEmpty { await emit(.text(rest, round: round)) }
    }

    /// A call's name and arguments as an event shows them: scrubbed, printable, short.
    func excerpt(_ text: String, limit: Int) -> String {
        PrintableText.excerpt(vault.scrub(text), limit: limit)
    }
}

extension Agent {
    /// A watcher that only wants the text (``handle(_:onText:)``).
    static func textOnly(_ onText: @escaping @Sendable (String) async -> Void) -> @Sendable (TurnEvent) async -> Void {
        { event in
            if case .text(let piece, _) = event { await onText(piece) }
        }
    }
}

/// Runs a turn for a watcher that may be slow or may go away (a socket client): the turn hands its
/// events to a buffer and never waits on the watcher, `deliver` gets them in order on the caller's
/// task, and the first `deliver` that throws (the watcher is gone) ends delivery, never the turn, which
/// completes and is stored as if nobody had watched.
public enum LiveTurn {
    public static func relay<Outcome: Sendable>(
        _ turn: @escaping @Sendable (_ events: @escaping @Sendable (TurnEvent) async -> Void) async -> Outcome,
        to deliver: (TurnEvent) async throws -> Void
    ) async -> Outcome {
        await relay(turn, to: deliver, idle: nil, keepAlive: {})
    }

    /// ``relay(_:to:)``, calling `keepAlive` (in order with `deliver`, on the caller's task) whenever
    /// `idle` passed without an event: a local model can read a long conversation for minutes before it
    /// writes a word, and a proxy in front of the watcher (`tailscale serve`, a reverse proxy) may close a
    /// connection that stays silent that long. A `keepAlive` that throws ends delivery as `deliver` does.
    public static func relay<Outcome: Sendable>(
        _ turn: @escaping @Sendable (_ events: @escaping @Sendable (TurnEvent) async -> Void) async -> Outcome,
        to deliver: (TurnEvent) async throws -> Void,
        idle: Duration?,
        keepAlive: () async throws -> Void
    ) async -> Outcome {
        // Unbounded: what a turn can show is bounded by the provider's response size and the budgets.
        let (stream, continuation) = AsyncStream.makeStream(of: Item.self)
        return await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                let outcome = await turn { continuation.yield(.event($0)) }
                continuation.finish()
                return outcome
            }
            if let idle {
                group.addTask {
                    // Ends when the turn's stream does (a yield after `finish` is dropped) or on cancel.
                    while !Task.isCancelled {
                        try? await Task.sleep(for: idle)
                        if case .terminated = continuation.yield(.tick) { break }
                    }
                    return nil
                }
            }
            var delivering = true
            var quietSince = ContinuousClock.now
            // Read to the end even once delivery stopped, so the buffer empties as the turn goes on.
            for await item in stream where delivering {
                do {
                    switch item {
                    case .event(let event):
                        try await deliver(event)
                        quietSince = .now
                    case .tick:
                        guard let idle, ContinuousClock.now - quietSince >= idle else { continue }
                        try await keepAlive()
                        quietSince = .now
                    }
                } catch {
                    delivering = false
                }
            }
            // The stream ends when the turn does; the ticker, if any, is stopped.
            group.cancelAll()
            var outcome: Outcome?
            for await child in group where child != nil { outcome = child }
            return outcome!
        }
    }

    private enum Item: Sendable {
        case event(TurnEvent)
        case tick
    }
}
