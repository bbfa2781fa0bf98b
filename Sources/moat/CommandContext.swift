import ArgumentParser
import Foundation
import MoatApp
import MoatAudit
import MoatConfig
import MoatCore
import MoatStore
import MoatVault

extension StateOptions {
    /// The installation's options from `--home`, `--config` and the environment (no server flags).
    var installationOptions: Installation.Options {
        Installation.Options(home: home, configPath: config, environment: ProcessInfo.processInfo.environment)
    }
}

/// A command's view of the installation, opened through the composition root (``Installation``) with
/// the same checks as `moat serve` (private modes, a database that is Moat's, a valid configuration),
/// so an administrative command never works on state the server would refuse.
struct CommandContext {
    let state: InstallationState

    var layout: StateLayout { state.layout }
    var database: MoatDatabase { state.database }
    var configuration: GatewayConfiguration { state.configuration }

    /// Where the state lives (`--home`, `MOAT_HOME`, XDG), as a command failure when it cannot be found.
    static func layout(_ state: StateOptions) throws(CommandFailure) -> StateLayout {
        try CommandFailure.wrap { () throws(GatewayError) in try Installation.layout(state.installationOptions) }
    }

    /// The configuration alone (for commands that read settings without opening the state).
    static func configuration(_ state: StateOptions) throws(CommandFailure) -> GatewayConfiguration {
        try CommandFailure.wrap { () throws(GatewayError) in
            try Installation.locate(state.installationOptions).configuration
        }
    }

    /// Opens the installation; `readConfiguration` false for the audit commands, which read no setting
    /// and must work when the config file is what is wrong.
    static func open(state: StateOptions, readConfiguration: Bool = true) throws(CommandFailure) -> CommandContext {
        CommandContext(
            state: try CommandFailure.wrap { () throws(GatewayError) in
                try Installation.locate(state.installationOptions, readConfiguration: readConfiguration)
                    .open(.existing)
            })
    }

    /// Opens the vault the way `moat vault` commands do (password options, else the seal, else a prompt).
    func unlockVault(_ options: VaultUnlockOptions) throws -> UnlockedVault {
        let context = VaultContext(layout: layout, database: database)
        return try CommandFailure.wrap { () throws(VaultError) in try context.unlock(options) }
    }

    func auditLog(_ keys: AuditKeys) throws(CommandFailure) -> AuditLog {
        try CommandFailure.wrap { () throws(GatewayError) in try Installation.auditLog(database: database, keys: keys) }
    }
}

/// A command failure with a message for the owner and an exit code: the one way a command ends with
/// an error (``MoatCommand/main()`` prints it as `moat: <message>` and exits with its code).
struct CommandFailure: Error, CustomStringConvertible {
    let message: String
    let exitCode: Int32
    /// Printed without the `moat: ` prefix (a config file error already starts with `file:line:`).
    var bare = false

    init(_ message: String, exitCode: Int32 = ExitStatus.failure) {
        self.message = message
        self.exitCode = exitCode
    }

    /// An error of any module, with the exit code its kind maps to (``ExitStatus/code(for:)``).
    init(_ error: any Error) {
        if let failure = error as? CommandFailure {
            self = failure
            return
        }
        self.init(ExitStatus.message(for: error), exitCode: ExitStatus.code(for: error))
        bare = (error as? GatewayError)?.code == .configuration
    }

    var description: String { message }

    /// The line for stderr: `moat: <message>`, unless the message names its own origin.
    var printed: String {
        let text = bare || message.hasPrefix("moat") || message.hasPrefix("refusing") ? message : "moat: " + message
        return text.hasSuffix("\n") ? text : text + "\n"
    }

    /// Runs `body`, turning a module error into a failure the CLI prints.
    static func wrap<T, E: Error>(_ body: () throws(E) -> T) throws(CommandFailure) -> T {
        do {
            return try body()
        } catch {
            throw CommandFailure(error)
        }
    }
}
