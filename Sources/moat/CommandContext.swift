import ArgumentParser
import Foundation
import MoatAudit
import MoatCore
import MoatGateway
import MoatStore
import MoatVault

/// A command's view of the installation: the layout, the database, and on request the vault.
///
/// Applies the same checks as `moat serve` (private modes, a database that is Moat's) so an
/// administrative command never works on state the server would refuse.
struct CommandContext {
    let layout: StateLayout
    let database: MoatDatabase

    /// Where the state lives (`--home`, `MOAT_HOME`, XDG), as a command failure when it cannot be found.
    static func layout(_ state: StateOptions) throws -> StateLayout {
        do {
            return try StateLayout.resolve(home: state.home, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw CommandFailure(error.message, exitCode: ExitStatus.configuration)
        }
    }

    static func open(state: StateOptions) throws -> CommandContext {
        umask(0o077)
        let layout = try Self.layout(state)
        guard FileModes.mode(of: layout.databaseFile) != nil else {
            throw CommandFailure(
                "no Moat state in \(layout.stateDirectory): start the gateway once with `moat serve`, "
                    + "or point --home at the right directory",
                exitCode: ExitStatus.configuration
            )
        }
        let problems = layout.permissionProblems()
        guard problems.isEmpty else {
            throw CommandFailure(
                "refusing to use state that other users can access:\n" + PermissionProblem.report(problems),
                exitCode: ExitStatus.configuration
            )
        }
        do {
            return CommandContext(
                layout: layout, database: try MoatDatabase(path: layout.databaseFile, migrations: MoatSchema.migrations)
            )
        } catch {
            throw CommandFailure(error.message, exitCode: ExitStatus.dataError)
        }
    }

    /// Opens the vault the way `moat vault` commands do (password options, else the seal, else a prompt).
    func unlockVault(_ options: VaultUnlockOptions) throws -> UnlockedVault {
        let context = VaultContext(paths: VaultPaths(stateDirectory: layout.stateDirectory))
        return try CommandFailure.wrap { () throws(VaultError) in try context.unlock(options) }
    }

    func auditLog(_ keys: AuditKeys) throws -> AuditLog {
        AuditLog(database: database, keys: keys, origin: try AuditLog.origin(for: database))
    }
}

/// A command failure with a message for the owner and an exit code.
struct CommandFailure: Error, CustomStringConvertible {
    let message: String
    let exitCode: Int32

    init(_ message: String, exitCode: Int32 = ExitStatus.failure) {
        self.message = message
        self.exitCode = exitCode
    }

    var description: String { message }

    /// Runs `body`, turning a vault or audit error into a failure the CLI prints.
    static func wrap<T, E: Error & CustomStringConvertible>(_ body: () throws(E) -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw CommandFailure(error.description, exitCode: ExitStatus.failure)
        }
    }
}
