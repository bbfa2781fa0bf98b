import Crypto
import Foundation
import GRDB
import MoatAgent
import MoatAudit
import MoatChannels
import MoatCore
import MoatPolicy
import MoatProviders
import MoatStore
import MoatTestSupport
import MoatTools
import MoatVault
import Synchronization

/// A real `moat.db`, a real vault, a real audit log keyed from it and a real policy engine in a temporary
/// directory; a scripted model and simple tools; a clock the test moves.
final class AgentFixture: Sendable {
    let directory = TemporaryDirectory("moat-agent")
    let database: MoatDatabase
    let vault: UnlockedVault
    let audit: AuditLog
    let policy: PolicyEngine
    let agent: Agent
    let model: ScriptedModel
    let notices = NoticeRecorder()
    let clock: AgentClock
    /// The tables the agent uses, in the installation's order (MoatSchema's, without the owner's).
    static let migrations = [
        StoreSchema.meta, AuditSchema.log, PolicySchema.tables, AgentSchema.conversations, AgentSchema.usageByProvider,
        AgentSchema.routes, PolicySchema.ownerBindings, ChannelSchema.tables,
    ]

    init(
        model: ScriptedModel = ScriptedModel(),
        tools: [any Tool],
        trust: [TrustDomain: TrustLevel] = [:],
        settings: AgentSettings = AgentSettings(),
        secrets: [String: String] = [:],
        clock: AgentClock = AgentClock(),
        routing: ProviderRouting? = nil
    ) throws {
        self.clock = clock
        database = try MoatDatabase(path: directory.file("moat.db"), migrations: Self.migrations)
        // A copy of the process's prepared vault: no key derivation per fixture (these tests are about the agent).
        vault = try PreparedVault.copy(to: VaultPaths(stateDirectory: directory.path))
        for (name, value) in secrets {
            var bytes = Array(value.utf8)
            try vault.add(
                name, value: SecretBytes(wiping: &bytes), policy: try SecretPolicy(tools: ["http_request"], hosts: []))
        }
        audit = AuditLog(database: database, keys: try AuditKeyring.keys(from: vault), origin: "moat/test")
        var policySettings = PolicySettings()
        for (domain, level) in trust { policySettings.trustDefaults[domain] = level }
        policy = PolicyEngine(
            database: database, authenticator: try PolicyKeyring.authenticator(from: vault), audit: audit,
            settings: policySettings, now: { clock.now })
        self.model = model
        agent = Agent(
            routing: routing ?? .single(model), tools: tools, policy: policy, audit: audit, vault: vault,
            database: database,
            authenticator: try AgentKeyring.authenticator(from: vault), settings: settings, notifier: notices,
            now: { clock.now })
    }

    /// A message from the owner (the owner's channel).
    func owner(_ text: String, conversation: String = "c1", key: String = UUID().uuidString) -> InboundMessage {
        InboundMessage(
            channel: InboundMessage.ownerChannel, senderID: "owner", conversation: conversation, text: text,
            idempotencyKey: key, receivedAt: clock.now)
    }

    func sql(_ statement: String, _ arguments: StatementArguments = []) throws {
        try database.pool.writeWithoutTransaction { db in try db.execute(sql: statement, arguments: arguments) }
    }

    func count(_ table: String, _ condition: String = "1") throws -> Int {
        try database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table) WHERE \(condition)") ?? 0
        }
    }

    func auditActions() throws -> [String] {
        try database.pool.read { db in try String.fetchAll(db, sql: "SELECT action FROM audit_entries ORDER BY seq") }
    }

    /// Every text value stored in any table of `moat.db`.
    func allStoredText() throws -> String {
        try database.pool.read { db in
            var text = ""
            for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\"") {
                    for value in row.databaseValues { text += value.description + "\n" }
                }
            }
            return text
        }
    }

    func advance(_ seconds: TimeInterval) {
        clock.value.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}

/// A clock the test moves by hand.
final class AgentClock: Sendable {
    let value = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    var now: Date { value.withLock { $0 } }
}

/// Keeps every notice the owner was sent.
final class NoticeRecorder: OwnerNotifier {
    let notices = Mutex<[OwnerNotice]>([])
    func notify(_ notice: OwnerNotice) async { notices.withLock { $0.append(notice) } }
    var all: [OwnerNotice] { notices.withLock { $0 } }
}

/// The error `body` throws, if it is an ``AgentError``.
func agentError<T>(_ body: () async throws -> T) async -> AgentError? {
    do {
        _ = try await body()
        return nil
    } catch let error as AgentError {
        return error
    } catch {
        return nil
    }
}
