import Foundation

/// Where the `/sync` position (`since`, the last `next_batch`) is kept between runs: in `moat.db` for
/// the real channel. `store` is called after a batch was handed over, so a crash between the two hands
/// the batch over again (at least once; receivers dedupe on ``MatrixInbound/idempotencyKey``) and never
/// skips one.
public struct MatrixSyncCursor: Sendable {
    public var load: @Sendable () async throws -> String?
    public var store: @Sendable (String) async throws -> Void

    public init(
        load: @escaping @Sendable () async throws -> String?, store: @escaping @Sendable (String) async throws -> Void
    ) {
        self.load = load
        self.store = store
    }
}

/// Long-polls `/sync` for the bot and hands over what arrives, until cancelled.
///
/// - Start: the credential is checked (`whoami`) and must belong to ``MatrixSettings/userID``. Without a
///   stored `since` (a fresh start) the first sync only takes the position and the pending invites, and
///   nothing stamped before the start is handed over in that run: the rooms' history is never replayed.
/// - Each batch: direct-chat invites are joined (others declined) and handed over as `.joined`; then the
///   events, in order — a room whose timeline is `limited` (more than 100 events since the last batch)
///   first gets the left-out ones read back with `/messages`; then `since` is stored. A handler that throws stops the batch: it is fetched again
///   after the backoff (the same `since`), so nothing is lost.
/// - Failures: a refused credential ends the loop with a ``ChannelError`` `.unauthorized` (retrying cannot
///   fix it); anything else is retried after ``Backoff`` — `M_LIMIT_EXCEEDED`'s `retry_after_ms` when the
///   homeserver gives one.
public struct MatrixSyncLoop: Sendable {
    /// The wait before retrying: doubling from ``first`` up to ``maximum``, each wait drawn from its upper
    /// half (jitter, so many clients do not come back in step); a homeserver's `retry_after_ms` wins.
    public struct Backoff: Sendable {
        public var first: Duration = .seconds(1)
        public var maximum: Duration = .seconds(60)

        public init() {}

        /// The wait after `failures` failures in a row (1 = the first); `unit` is a random number in 0..<1.
        public func delay(afterFailures failures: Int, retryAfter: Duration?, unit: Double) -> Duration {
            if let retryAfter { return retryAfter }
            var ceiling = first
            for _ in 1..<max(1, min(failures, 30)) where ceiling < maximum { ceiling *= 2 }
            ceiling = min(ceiling, maximum)
            return ceiling * (0.5 + 0.5 * min(max(unit, 0), 1))
        }
    }

    /// Only what the channel reads: messages, reactions and member events in the timeline; no presence,
    /// account data, typing or receipts.
    static let filter =
        #"{"account_data":{"types":[]},"presence":{"types":[]},"room":{"account_data":{"types":[]},"#
        + #""ephemeral":{"types":[]},"state":{"types":["m.room.member"],"lazy_load_members":true},"#
        + #""timeline":{"types":["m.room.message","m.reaction","m.room.member"],"limit":100}}}"#

    let client: MatrixClient
    let cursor: MatrixSyncCursor
    let handle: @Sendable (MatrixInbound) async throws -> Void
    /// How long one `/sync` waits for something to arrive.
    public var pollTimeout: Duration = .seconds(30)
    public var backoff = Backoff()
    /// The most left-out events read back per room and batch when a timeline is `limited`.
    public var maximumGap = 1000
    /// Called with each failure the loop retries (for the log; the messages hold no secret).
    public var onFailure: @Sendable (ChannelError, Duration) -> Void = { _, _ in }

    public init(
        client: MatrixClient, cursor: MatrixSyncCursor, handle: @escaping @Sendable (MatrixInbound) async throws -> Void
    ) {
        self.client = client
        self.cursor = cursor
        self.handle = handle
    }

    /// Runs until the task is cancelled (returns) or the credential is refused (throws).
    public func run() async throws(ChannelError) {
        guard
            let ownUserID = try await retrying({ () async throws(MatrixClient.Failure) in try await client.identity() })
        else { return }
        guard let stored = try await retrying({ () async throws(MatrixClient.Failure) in try await loadCursor() })
        else {
            return
        }
        var since = stored
        // A fresh start: nothing the homeserver stamped before now is handed over in this run.
        let notBefore = stored == nil ? Int64(Date().timeIntervalSince1970 * 1000) : nil
        while !Task.isCancelled {
            let position = since
            guard
                let next = try await retrying({ () async throws(MatrixClient.Failure) in
                    try await once(since: position, ownUserID: ownUserID, notBefore: notBefore)
                })
            else { return }
            since = .some(next)
        }
    }

    /// One `/sync` from `since` (nil: a fresh start), handed over and stored; the new position.
    func once(since: String?, ownUserID: String, notBefore: Int64?) async throws(MatrixClient.Failure) -> String {
        let response = try await client.sync(
            since: since, timeout: since == nil ? .zero : pollTimeout, filter: Self.filter)
        var gaps: [String: [MatrixClientEvent]] = [:]
        if let since {
            for (roomID, room) in response.rooms?.join ?? [:] {
                guard let timeline = room.timeline, timeline.limited == true, let start = timeline.prevBatch else {
                    continue
                }
                // An event the timeline holds too is handed over once, from the timeline.
                let shown = Set((timeline.events ?? []).compactMap { $0.event?.eventID })
                gaps[roomID] = try await gap(in: roomID, from: start, to: since).filter { event in
                    event.eventID.map { !shown.contains($0) } ?? true
                }
            }
        }
        let (invites, events) = MatrixSyncReading.read(
            response, ownUserID: ownUserID, backlog: since == nil, notBefore: notBefore, gaps: gaps)
        for invite in invites {
            let path = "/rooms/\(MatrixClient.segment(invite.roomID))/" + (invite.accepted ? "join" : "leave")
            do {
                _ = try await client.call("POST", path, body: Array("{}".utf8))
            } catch {
                // A withdrawn invite or a vanished room is refused for good: skip it, not the batch.
                guard !error.transient else { throw error }
                onFailure(error.error, .zero)
                continue
            }
            if invite.accepted { try await deliver(.joined(roomID: invite.roomID, inviter: invite.inviter)) }
        }
        for event in events { try await deliver(event) }
        do {
            try await cursor.store(response.nextBatch)
        } catch {
            throw MatrixClient.Failure(
                error: ChannelError(.deliveryFailed, "the Matrix sync position cannot be stored"), transient: true)
        }
        return response.nextBatch
    }

    /// The events of `roomID` a limited timeline left out, oldest first: paged backwards from the
    /// timeline's `prev_batch` to the previous position, at most ``maximumGap`` of them (the newest; a
    /// longer gap is reported through ``onFailure``, so a flood while Moat was away stays bounded work).
    func gap(in roomID: String, from start: String, to since: String) async throws(MatrixClient.Failure)
        -> [MatrixClientEvent]
    {
        var newestFirst: [MatrixClientEvent] = []
        var from = start
        while newestFirst.count < maximumGap {
            let page = try await client.messagesBackwards(
                in: roomID, from: from, to: since, limit: min(100, maximumGap - newestFirst.count),
                filter: Self.roomEventFilter)
            let chunk = (page.chunk ?? []).compactMap(\.event)
            // The bound is Moat's own, whatever the page holds: a page can hold more events than its limit
            // asked for (seen with Synapse 1.163.2).
            newestFirst += chunk.prefix(maximumGap - newestFirst.count)
            guard let end = page.end, !chunk.isEmpty, end != from else { return newestFirst.reversed() }
            from = end
        }
        onFailure(
            ChannelError(
                .deliveryFailed,
                "more than \(maximumGap) events arrived in a Matrix room while Moat was away; the older ones are "
                    + "not handed over"),
            .zero)
        return newestFirst.reversed()
    }

    /// The timeline part of ``filter``, for `/messages`.
    static let roomEventFilter = #"{"types":["m.room.message","m.reaction","m.room.member"],"lazy_load_members":true}"#

    func deliver(_ event: MatrixInbound) async throws(MatrixClient.Failure) {
        do {
            try await handle(event)
        } catch {
            throw MatrixClient.Failure(
                error: ChannelError(.deliveryFailed, "a Matrix event could not be handed over; fetching it again"),
                transient: true)
        }
    }

    /// The stored position (nil: a fresh start).
    func loadCursor() async throws(MatrixClient.Failure) -> String? {
        do {
            return try await cursor.load()
        } catch {
            throw MatrixClient.Failure(
                error: ChannelError(.deliveryFailed, "the Matrix sync position cannot be read"), transient: true)
        }
    }

    /// `step`'s result, retried after the backoff while its failures are transient; nil when cancelled.
    func retrying<Result>(_ step: () async throws(MatrixClient.Failure) -> Result) async throws(ChannelError)
        -> Result?
    {
        var failures = 0
        while !Task.isCancelled {
            do {
                return try await step()
            } catch {
                guard error.transient else { throw error.error }
                failures += 1
                let wait = backoff.delay(
                    afterFailures: failures, retryAfter: error.retryAfter, unit: Double.random(in: 0..<1))
                onFailure(error.error, wait)
                do {
                    try await Task.sleep(for: wait)
                } catch {
                    return nil
                }
            }
        }
        return nil
    }
}
