import ArgumentParser
import MoatAdmin
import MoatCore

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Show the model tokens the agent used, per day, principal and provider.",
        discussion: """
            Counted after every model round: the provider's own usage figures when it sends them, otherwise \
            an estimate (about four characters per token). Days are UTC. The daily limit per principal is \
            agent.tokens_per_day in config.yaml.
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var unlock: VaultUnlockOptions

    @Option(help: ArgumentHelp("How many days back, today included (1-366).", valueName: "n"))
    var days = 7

    @Flag(help: "Print the entries as JSON.")
    var json = false

    func run() async throws {
        guard (1...366).contains(days) else {
            throw CommandFailure("--days must be from 1 to 366", exitCode: ExitStatus.usage)
        }
        try await AdminChannel.run(.usage(days: days), json: json, state: state, unlock: unlock)
    }
}
