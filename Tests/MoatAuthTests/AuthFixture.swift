import Crypto
import Foundation
import GRDB
import MoatAudit
import MoatAuth
import MoatCore
import MoatStore
import MoatTestSupport
import MoatVault
import Synchronization
import Testing

/// A real `moat.db`, a real vault and a real audit log in a temporary directory, and a clock the test moves.
final class AuthFixture: Sendable {
    let directory = TemporaryDirectory("moat-auth")
    let database: MoatDatabase
    let vault: UnlockedVault
    let audit: AuditLog
    let authority: OwnerAuthority
    let clock = FixtureClock()
    static let client = ClientInfo(sourceIP: "127.0.0.1", userAgent: "test-agent/1.0")
    /// The owner authority's tables and the audit log it writes to, in the installation's order (it reads
    /// no policy table).
    static let migrations = [StoreSchema.meta, AuditSchema.log, AuthSchema.owner]

    init(settings: AuthSettings = AuthSettings()) throws {
        database = try MoatDatabase(path: directory.file("moat.db"), migrations: Self.migrations)
        // A copy of the process's prepared vault: these tests are about owner authentication, not Argon2.
        vault = try PreparedVault.copy(to: VaultPaths(stateDirectory: directory.path))
        let keys = AuditKeys(
            fingerprintKey: SymmetricKey(size: .bits256), signingKey: Curve25519.Signing.PrivateKey(), scrub: { $0 })
        audit = AuditLog(database: database, keys: keys, origin: "moat/test")
        let clock = self.clock
        authority = try OwnerAuthority(
            database: database, vault: vault, audit: audit, settings: settings, now: { clock.now })
    }

    var now: Date { clock.now }

    /// Runs `body` once, at the authority's next clock reading (see ``FixtureClock``).
    func onNextClockRead(_ body: @escaping @Sendable () -> Void) {
        clock.hook.withLock { $0 = body }
    }

    func advance(_ seconds: TimeInterval) {
        clock.value.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    static func secret(_ text: String) -> SecretBytes {
        var bytes = Array(text.utf8)
        return SecretBytes(wiping: &bytes)
    }

    static let password = "a long owner passphrase"

    /// Sets up the owner "owner" with ``password`` through a setup link.
    @discardableResult
    func setUp() async throws -> LoginResult {
        let token = try await authority.createSetupToken(client: Self.client)
        return try await authority.completeSetup(
            token: token, username: "owner", password: Self.secret(Self.password), client: Self.client)
    }

    func login(_ username: String = "owner", _ password: String = AuthFixture.password, code: String? = nil)
        async throws(AuthError) -> LoginResult
    {
        try await authority.login(username: username, password: Self.secret(password), code: code, client: Self.client)
    }

    /// The owner row as stored (every column, MAC included).
    func ownerRow() throws -> StoredRow {
        try database.pool.read { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT * FROM auth_owner"))
            return StoredRow(columns: Array(row.columnNames), values: Array(row.databaseValues))
        }
    }

    /// Puts back an owner row taken with ``ownerRow()`` (a genuine row, so its MAC verifies).
    func restoreOwner(_ row: StoredRow) throws {
        let placeholders = row.columns.map { _ in "?" }.joined(separator: ", ")
        try sql(
            "INSERT OR REPLACE INTO auth_owner (\(row.columns.joined(separator: ", "))) VALUES (\(placeholders))",
            StatementArguments(row.values))
    }

    /// The owner row and the vault's token-version floor: everything another process changes when it
    /// changes the owner.
    func ownerState() throws -> (row: StoredRow, floor: [UInt8]) {
        let floor = try #require(try vault.value(named: OwnerAuthority.ownerFloorName))
        return (try ownerRow(), floor.withUnsafeBytes { Array($0) })
    }

    /// Puts back both halves of an ``ownerState()``, as another process's change would leave them.
    func restoreOwnerState(_ state: (row: StoredRow, floor: [UInt8])) throws {
        var floor = state.floor
        try vault.add(
            OwnerAuthority.ownerFloorName, value: SecretBytes(wiping: &floor),
            policy: try SecretPolicy(tools: [], hosts: []), replace: true)
        try restoreOwner(state.row)
    }

    /// Plain SQL, as an attacker with write access to `moat.db` (but not the vault) would run it.
    func sql(_ statement: String, _ arguments: StatementArguments = []) throws {
        try database.pool.writeWithoutTransaction { db in try db.execute(sql: statement, arguments: arguments) }
    }

    func auditActions() throws -> [String] {
        try database.pool.read { db in try String.fetchAll(db, sql: "SELECT action FROM audit_entries ORDER BY seq") }
    }

    /// Every text value stored in any table of `moat.db` (to prove a secret is not among them).
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
}

/// A table row as stored, column by column.
struct StoredRow: Sendable {
    let columns: [String]
    let values: [DatabaseValue]

    func int(_ column: String) -> Int64? {
        columns.firstIndex(of: column).flatMap { Int64.fromDatabaseValue(values[$0]) }
    }
}

/// The error `body` throws, if it is an ``AuthError``.
func authError<T>(_ body: () async throws -> T) async -> AuthError? {
    do {
        _ = try await body()
        return nil
    } catch let error as AuthError {
        return error
    } catch {
        return nil
    }
}

/// A clock the test moves by hand. A test can also arm a one-shot hook that runs at the next reading:
/// the authority reads its clock between loading the owner and changing it, so the hook plays "another
/// process changed the owner row right then".
final class FixtureClock: Sendable {
    let value = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    let hook = Mutex<(@Sendable () -> Void)?>(nil)
    var now: Date {
        if let run = hook.withLock({ hook in
            defer { hook = nil }
            return hook
        }) {
            run()
        }
        return value.withLock { $0 }
    }
}
