import ArgumentParser
import Foundation
import MoatApp
import MoatConfig
import MoatCore
import MoatStore

/// `moat config`: the configuration file.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check the configuration file.",
        subcommands: [Check.self]
    )
}

extension ConfigCommand {
    /// `moat config check`: loads config.yaml with the loader `moat serve` uses and lists every problem.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate config.yaml as moat serve would; print OK or every problem (exit 0 or 1).",
            discussion: """
                Each problem names the file, the line and the key, and says what is allowed. The same checks \
                as moat serve: the file's owner and mode, YAML, every key and value, provider references, \
                and the bind policy (a non-loopback gateway.host needs gateway.tls). Nothing is started or \
                changed.
                """
        )

        @OptionGroup var state: StateOptions

        func run() async throws {
            let layout = try CommandContext.layout(state)
            let path = state.config ?? layout.configFile
            var problems = ConfigurationLoader.problems(path: path, required: state.config != nil)
            if problems.isEmpty {
                // Then what serve checks with the loaded file before it listens, through the same code.
                do {
                    _ = try GatewayServer.prepare(state.installationOptions)
                } catch {
                    problems.append(error.message)
                }
            }
            guard problems.isEmpty else {
                let count = problems.count == 1 ? "1 problem" : "\(problems.count) problems"
                let text = problems.map { PrintableText.stripKeepingLines($0) + "\n" }.joined()
                FileHandle.standardOutput.write(Data(text.utf8))
                throw CommandFailure("\(path): \(count); moat serve would refuse to start")
            }
            let exists = FileManager.default.fileExists(atPath: path)
            let line = exists ? "OK: \(path)\n" : "OK: no \(path); moat serve runs on the defaults\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
    }
}
