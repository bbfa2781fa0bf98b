import ArgumentParser
import Foundation
import MoatAdmin
import MoatCore

struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Talk to the agent as the owner: one turn with --message (Docs/Agent.md).",
        discussion: """
            The turn runs in moat serve when it runs (through its admin socket), otherwise in this process. \
            Every tool call the model asks for is gated by its domain's trust level: calls held for your \
            approval are listed with the command that decides them.
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var unlock: VaultUnlockOptions

    @Option(help: ArgumentHelp("The message (one turn).", valueName: "text"))
    var message: String

    @Option(help: ArgumentHelp("Continue this conversation (printed after each reply).", valueName: "id"))
    var conversation: String?

    @Flag(help: "Print the turn as JSON.")
    var json = false

    func run() async throws {
        guard !message.isEmpty else {
            throw CommandFailure("--message is empty: say what the agent should do", exitCode: ExitStatus.usage)
        }
        try await AdminChannel.run(
            .chat(message: message, conversation: conversation), json: json, state: state, unlock: unlock)
    }
}
