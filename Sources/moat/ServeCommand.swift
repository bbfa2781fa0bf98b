import ArgumentParser
import Foundation
import Logging
import MoatCore
import MoatGateway
import MoatStore

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

    func run() async throws {
        // Every file Moat creates (database, WAL, later the vault) is private to the owner.
        umask(0o077)
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
            throw reportAndExit(error)
        }
        LogOutput.bootstrap(format: server.configuration.logFormat, level: server.configuration.logLevel)
        let logger = Logger(label: "moat")
        logger.info("config loaded", metadata: ["source": "\(server.configurationSource)"])
        do {
            try await server.run(database: database, logger: logger)
        } catch let error as GatewayError {
            throw reportAndExit(error)
        }
    }
}

/// Prints a `GatewayError` for the owner and turns it into the process exit code.
func reportAndExit(_ error: GatewayError) -> ExitCode {
    let text = error.code == .configuration ? error.message : "moat: " + error.message
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    return ExitCode(error.exitCode)
}
