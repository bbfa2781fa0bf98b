import ArgumentParser
import Foundation
import MoatCore

/// The `moat` command line: one binary for the gateway and for its owner's administration.
@main
struct MoatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moat",
        abstract: "A local-first security gateway between your messaging channels, an AI model and its tools.",
        discussion: """
            State lives in MOAT_HOME (or --home DIR) when set, otherwise in $XDG_CONFIG_HOME/moat and \
            $XDG_STATE_HOME/moat. Documentation: Docs/ in the source tree.
            """,
        version: MoatVersion.current,
        subcommands: [
            ServeCommand.self, DoctorCommand.self, ServiceCommand.self, VaultCommand.self, AuditCommand.self,
            SandboxCommand.self,
            TrustCommand.self, ApprovalsCommand.self, ContactCommand.self, PairingCommand.self, ChannelCommand.self,
            ChatCommand.self, UsageCommand.self,
            PolicyCommand.self,
            OwnerCommand.self,
            TokenCommand.self,
            BackupCommand.self,
            RestoreCommand.self,
            MetricsCommand.self,
            ConfigCommand.self,
        ]
    )

    /// Parses and runs the command; a ``CommandFailure`` (or any module's ``ClassifiedError``) is printed
    /// as `moat: <message>` and ends the process with its kind's exit code (argument-parser would print
    /// "Error:" and always exit 1).
    static func main() async {
        // Every file any command creates (database, WAL, vault, seal, socket, setup link) is private to
        // the owner: set once, here, before anything can create one.
        umask(0o077)
        do {
            // Before anything is parsed or read: no command's memory may end up in a core dump.
            try ProcessHardening.protectMemory()
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            FileHandle.standardError.write(Data(failure.printed.utf8))
            Foundation.exit(failure.exitCode)
        } catch let error as any ClassifiedError {
            let failure = CommandFailure(error)
            FileHandle.standardError.write(Data(failure.printed.utf8))
            Foundation.exit(failure.exitCode)
        } catch {
            exit(withError: error)
        }
    }
}

/// Where Moat's state is and which config file to read; shared by every subcommand.
struct StateOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("Directory for config and state (overrides MOAT_HOME).", valueName: "dir")
    )
    var home: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Config file to read (default: config.yaml in the config directory).", valueName: "file")
    )
    var config: String?
}
