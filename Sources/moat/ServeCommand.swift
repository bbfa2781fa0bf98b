import ArgumentParser
import Foundation
import Logging
import MoatAudit
import MoatCore
import MoatGateway
import MoatStore
import MoatVault

/// `--log-format`: `auto` is only a config value, the flag picks one of the two explicitly.
enum LogFormatArgument: String, ExpressibleByArgument, CaseIterable {
    case text, json

    var format: GatewayConfiguration.LogFormat { self == .text ? .text : .json }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway (127.0.0.1:18789 by default) until SIGINT or SIGTERM."
    )

    @OptionGroup var state: StateOptions

    @Option(help: ArgumentHelp("Address or name to listen on (overrides gateway.host).", valueName: "address"))
    var host: String?

    @Option(help: ArgumentHelp("TCP port to listen on (overrides gateway.port).", valueName: "port"))
    var port: Int?

    @Option(
        help: ArgumentHelp(
            "Log line format on stderr: text or json (default: text on a terminal).", valueName: "format"))
    var logFormat: LogFormatArgument?

    @Option(help: ArgumentHelp("Read the vault seal's PIN from this file, when the seal has one.", valueName: "file"))
    var pinFile: String?

    func run() async throws {
        // Every file Moat creates (database, WAL, later the vault) is private to the owner.
        umask(0o077)
        // Before any file is opened: the connection cap is derived from the limit in force.
        let openFiles = ProcessHardening.raiseOpenFileLimit()
        let options = GatewayServer.Options(
            home: state.home,
            configPath: state.config,
            host: host,
            port: port,
            logFormat: logFormat?.format,
            environment: ProcessInfo.processInfo.environment
        )
        let server: GatewayServer
        let database: MoatDatabase
        do {
            server = try GatewayServer.prepare(options)
            database = try server.openState()
        } catch {
            if error.code == .bindRefused {
                await recordBindRefusal(options)
            }
            throw reportAndExit(error)
        }
        LogOutput.bootstrap(format: server.configuration.logFormat, level: server.configuration.logLevel)
        let logger = Logger(label: "moat")
        logger.info("config loaded", metadata: ["source": "\(server.configurationSource)"])
        let opening: GatewayServer.VaultOpening
        do {
            opening = try server.openVault(pinFile: pinFile, stderrIsTerminal: isatty(STDERR_FILENO) == 1)
        } catch {
            try? database.close()
            throw reportAndExit(error)
        }
        if let key = opening.recoveryKeyToShow {
            showRecoveryKey(key, vault: opening.vault.paths.vault)
        }
        if let file = opening.recoveryKeyFile {
            let message =
                "created a new vault; its recovery key (master password) was written to a file: "
                + "store it somewhere safe, then delete the file"
            logger.warning("\(message)", metadata: ["file": "\(file)"])
        }
        if opening.source == .seal, let seal = try? VaultSeal.inspect(opening.vault.paths.seal), seal.holdsPassword {
            logger.warning("the vault's seal is in the old format", metadata: ["problem": "\(seal.exposure)"])
        }
        let secrets = (try? opening.vault.secrets().count) ?? 0
        logger.notice("vault unlocked", metadata: ["source": "\(opening.source.rawValue)", "secrets": "\(secrets)"])
        let audit: AuditLog
        do {
            audit = try await server.openAudit(
                database: database,
                vault: opening.vault,
                vaultSource: opening.source.rawValue
            )
        } catch {
            try? database.close()
            throw reportAndExit(error)
        }
        do {
            try await server.run(
                database: database, vault: opening.vault, audit: audit, logger: logger, openFiles: openFiles)
        } catch let error as GatewayError {
            throw reportAndExit(error)
        }
    }
}

/// Records a refused bind in an existing installation's audit log, when that is possible without a
/// prompt (state present and private, vault sealed without a PIN). Best effort: the refusal stands
/// either way, and an empty home is left untouched.
func recordBindRefusal(_ options: GatewayServer.Options) async {
    guard let (layout, configuration, _) = try? GatewayServer.load(options),
        FileModes.mode(of: layout.databaseFile) != nil, layout.permissionProblems().isEmpty
    else { return }
    let paths = VaultPaths(stateDirectory: layout.stateDirectory)
    guard let status = try? VaultStatus.inspect(paths), status.seal?.hasPIN == false,
        let vault = try? UnlockedVault.unseal(paths: paths, pin: nil),
        let database = try? MoatDatabase(path: layout.databaseFile, migrations: MoatSchema.migrations),
        let keys = try? AuditKeyring.keys(from: vault),
        let origin = try? AuditLog.origin(for: database)
    else { return }
    defer { try? database.close() }
    let log = AuditLog(database: database, keys: keys, origin: origin)
    _ = try? await log.append(
        AuditEvent(
            actor: "system",
            action: "gateway.bind.refused",
            target: configuration.host,
            outcome: "denied",
            metadata: [
                "port": .int(Int64(configuration.port)),
                "tls": .bool(configuration.tls != nil),
                "auth_mode": .string(configuration.authMode.rawValue),
            ]
        )
    )
}

/// Shows a newly generated master password once, on the terminal only (never through the logger).
func showRecoveryKey(_ key: SecretBytes, vault: String) {
    let before = """

        Moat created a new vault (\(vault)) and sealed it to this machine.
        Recovery key, shown only this once: it is the vault's master password. Write it down and keep it
        offline; you need it to open the vault on another machine or after this one's identity changes.


        """
    FileHandle.standardError.write(Data((before + "    ").utf8))
    // Straight from secret memory to the terminal: no String or Data copy of the key.
    _ = key.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    FileHandle.standardError.write(Data("\n\n".utf8))
}

/// Prints a `GatewayError` for the owner and turns it into the process exit code.
func reportAndExit(_ error: GatewayError) -> ExitCode {
    let text = error.code == .configuration ? error.message : "moat: " + error.message
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    return ExitCode(error.exitCode)
}
