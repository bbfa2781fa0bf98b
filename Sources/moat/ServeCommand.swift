import ArgumentParser
import Foundation
import Logging
import MoatAdmin
import MoatApp
import MoatAudit
import MoatConfig
import MoatCore
import MoatHTTP
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
        // SIGHUP reloads the configuration (ConfigReloader); until that service runs, one is ignored
        // rather than ending the process.
        signal(SIGHUP, SIG_IGN)
        // Before any file is opened: the connection cap is derived from the limit in force.
        let openFiles = ProcessHardening.raiseOpenFileLimit()
        // Read, then removed before any thread reads the environment, so no program Moat starts can
        // speak to the service manager for it.
        let notifier = Result { () throws(SystemdNotifier.Unusable) in
            try SystemdNotifier.fromEnvironment(ProcessInfo.processInfo.environment)
        }
        SystemdNotifier.unsetEnvironment()
        let options = Installation.Options(
            home: state.home,
            configPath: state.config,
            host: host,
            port: port,
            logFormat: logFormat?.format,
            environment: ProcessInfo.processInfo.environment
        )
        let server: GatewayServer
        let opened: InstallationState
        do {
            server = try GatewayServer.prepare(options)
            opened = try server.openState()
        } catch {
            if error.code == .bindRefused {
                await recordBindRefusal(options)
            }
            throw CommandFailure(error)
        }
        LogOutput.bootstrap(format: server.configuration.logFormat, level: server.configuration.logLevel)
        let logger = Logger(label: "moat")
        logger.info("config loaded", metadata: ["source": "\(server.configurationSource)"])
        if case .failure(let unusable) = notifier {
            logger.warning("not telling the service manager of readiness", metadata: ["reason": "\(unusable)"])
        }
        let opening: GatewayServer.VaultOpening
        do {
            opening = try server.openVault(pinFile: pinFile, stderrIsTerminal: isatty(STDERR_FILENO) == 1)
        } catch {
            try? opened.close()
            throw CommandFailure(error)
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
                state: opened, vault: opening.vault, vaultSource: opening.source.rawValue,
                metrics: .processWide)
        } catch {
            try? opened.close()
            throw CommandFailure(error)
        }
        do {
            try await server.run(
                state: opened, vault: opening.vault, audit: audit, logger: logger, openFiles: openFiles,
                metrics: .processWide, notifier: try? notifier.get())
        } catch {
            throw CommandFailure(error)
        }
    }
}

/// Records a refused bind in an existing installation's audit log, when that is possible without a
/// prompt (state present and private, vault sealed without a PIN). Best effort: the refusal stands
/// either way, and an empty home is left untouched.
func recordBindRefusal(_ options: Installation.Options) async {
    // Only when the vault opens without a prompt, checked before the database is opened (and migrated):
    // otherwise the refused start changes nothing.
    guard let installation = try? Installation.locate(options),
        (try? Installation.checkState(installation.layout, .existing)) != nil,
        let status = try? VaultStatus.inspect(installation.vaultPaths), status.seal?.hasPIN == false,
        let vault = try? UnlockedVault.unseal(paths: installation.vaultPaths, pin: nil),
        let database = try? Installation.openDatabase(installation.layout)
    else { return }
    defer { try? database.close() }
    let configuration = installation.configuration
    guard let log = try? Installation.auditLog(database: database, vault: vault) else { return }
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
