public import MoatAgent
public import MoatAuth
public import MoatCore

/// A failed admin operation: the message for the owner (never a parameter's value), its kind (for an
/// HTTP route that runs the operation) and the exit code the CLI ends with.
public struct AdminFailure: ClassifiedError, Sendable, Equatable {
    public let message: String
    public let kind: FailureKind
    public let status: Int32

    public init(_ message: String, kind: FailureKind = .failure, status: Int32? = nil) {
        self.message = message
        self.kind = kind
        self.status = status ?? kind.exitCode
    }

    /// Any error of the modules below, with its kind and its kind's exit code; a malformed request is a
    /// usage error.
    init(_ error: any Error) {
        switch error {
        case let failure as AdminFailure: self = failure
        case let request as AdminRequestError: self.init(request.message, kind: .invalidInput)
        case let classified as any ClassifiedError: self.init(classified.message, kind: classified.kind)
        default: self.init("\(error)")
        }
    }

    public var description: String { message }
}

/// The one dispatch of every admin operation: each ``AdminOperation`` goes to the table that owns it
/// (``OwnerOperations`` for `owner.`/`token.`, ``PolicyOperations`` for `trust.`/`approvals.`,
/// ``VaultOperations`` for `vault.` when the vault is open).
public struct AdminOperations: Sendable {
    let owner: OwnerOperations
    let policy: PolicyOperations
    let vault: VaultOperations?
    let agent: AgentOperations?
    let usage: UsageLedger?
    let channels: ChannelOperations?
    /// The running server's metrics (``withMetrics(_:)``); nil in a command's own process.
    var scrape: (@Sendable () async -> String)?

    public init(
        owner: OwnerOperations, policy: PolicyOperations, vault: VaultOperations? = nil, agent: AgentOperations? = nil,
        usage: UsageLedger? = nil, channels: ChannelOperations? = nil
    ) {
        self.owner = owner
        self.policy = policy
        self.vault = vault
        self.agent = agent
        self.usage = usage
        self.channels = channels
    }

    /// Runs one operation; `client` names the caller for the audit log, `events` watches the turn of a
    /// streamed chat (`chat.stream`).
    public func perform(
        _ operation: AdminOperation, client: ClientInfo, events: (@Sendable (TurnEvent) async -> Void)? = nil
    ) async throws(AdminFailure) -> AdminResult {
        do {
            // The agent first: with it, deciding an approval also runs the held call and goes on.
            if let agent, let result = try await agent.perform(operation, events: events) { return result }
            if let result = try await owner.perform(operation, client: client) { return result }
            if let result = try await policy.perform(operation) { return await agent?.annotated(result) ?? result }
            if let vault, let result = try vault.perform(operation) { return result }
            if let channels, let result = try await channels.perform(operation) { return result }
            if case .metrics = operation {
                guard let scrape else {
                    throw AdminFailure("metrics live in the running server; start `moat serve` and run it again")
                }
                return .metrics(await scrape())
            }
            if let usage, case .usage(let days) = operation {
                return .usage(try await usage.report(days: days), days: days)
            }
        } catch {
            throw AdminFailure(error)
        }
        if operation.isChat {
            throw AdminFailure("the agent is not open in this process; start `moat serve` or run `moat chat` again")
        }
        throw AdminFailure(AdminRequestError.unknown(operation.name.rawValue))
    }

    /// These operations, answering `metrics` with `scrape` (the server's Prometheus exposition).
    public func withMetrics(_ scrape: @escaping @Sendable () async -> String) -> AdminOperations {
        var operations = self
        operations.scrape = scrape
        return operations
    }

    /// Runs one operation and answers as the admin socket does.
    public func respond(
        to operation: AdminOperation, client: ClientInfo, events: (@Sendable (TurnEvent) async -> Void)? = nil
    ) async -> AdminResponse {
        do {
            return .success(try await perform(operation, client: client, events: events))
        } catch {
            return .failure(error.message, status: error.status)
        }
    }
}
