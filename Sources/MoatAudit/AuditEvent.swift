/// Something that happened, as a caller describes it before it is redacted, chained and stored.
public struct AuditEvent: Sendable, Equatable {
    /// Who did it: `owner`, `token:<prefix>`, `contact:<id>`, `system`.
    public var actor: String
    /// A dotted name such as `vault.add` or `auth.login.failure`.
    public var action: String
    /// What it was done to (a secret's name, a route, a contact), or empty.
    public var target: String
    /// The source address of the request, or empty.
    public var sourceIP: String
    /// The client's User-Agent, or empty.
    public var userAgent: String
    /// `success`, `failure`, `denied`, …
    public var outcome: String
    /// A small JSON object; sensitive keys are redacted before it is written.
    public var metadata: [String: AuditValue]

    public init(
        actor: String,
        action: String,
        target: String = "",
        sourceIP: String = "",
        userAgent: String = "",
        outcome: String = "success",
        metadata: [String: AuditValue] = [:]
    ) {
        self.actor = actor
        self.action = action
        self.target = target
        self.sourceIP = sourceIP
        self.userAgent = userAgent
        self.outcome = outcome
        self.metadata = metadata
    }
}

/// One stored entry of the chain, exactly as it is hashed.
public struct AuditEntry: Sendable, Equatable {
    public let sequence: Int64
    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-23T20:52:00.123Z`.
    public let time: String
    public let actor: String
    public let action: String
    public let target: String
    public let sourceIP: String
    public let userAgent: String
    public let outcome: String
    /// Canonical JSON of the redacted metadata.
    public let metadata: String
    /// Hex SHA-256 of the previous entry (the genesis value for entry 1).
    public let previousHash: String
    /// Hex SHA-256 of this entry's canonical encoding.
    public let hash: String

    public init(
        sequence: Int64,
        time: String,
        actor: String,
        action: String,
        target: String,
        sourceIP: String,
        userAgent: String,
        outcome: String,
        metadata: String,
        previousHash: String,
        hash: String
    ) {
        self.sequence = sequence
        self.time = time
        self.actor = actor
        self.action = action
        self.target = target
        self.sourceIP = sourceIP
        self.userAgent = userAgent
        self.outcome = outcome
        self.metadata = metadata
        self.previousHash = previousHash
        self.hash = hash
    }
}
