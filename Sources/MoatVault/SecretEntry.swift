public import Foundation
public import MoatCore

/// One secret in the vault: its name, value, dates and policy.
public struct SecretEntry: Sendable {
    public let name: String
    public let value: SecretBytes
    public let createdAt: Date
    public let updatedAt: Date
    public let policy: SecretPolicy

    /// The largest value the vault stores: 1 MiB (certificates and keys fit; documents do not belong here).
    public static let maximumValueBytes = 1 << 20

    public init(name: String, value: SecretBytes, createdAt: Date, updatedAt: Date, policy: SecretPolicy) {
        self.name = name
        self.value = value
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.policy = policy
    }

    /// What `moat vault list` shows: everything but the value.
    public var summary: SecretSummary {
        SecretSummary(name: name, policy: policy, createdAt: createdAt, updatedAt: updatedAt)
    }
}

/// A secret without its value: safe to print, log and serialize.
public struct SecretSummary: Sendable, Equatable, Codable {
    public let name: String
    public let policy: SecretPolicy
    public let createdAt: Date
    public let updatedAt: Date
}
