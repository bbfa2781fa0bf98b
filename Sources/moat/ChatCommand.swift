import ArgumentParser
import Foundation
import MoatAdmin
import MoatAgent
import MoatCore
import Synchronization

struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Talk to the agent as the owner: a conversation, or one turn with --message (Docs/Agent.md).",
        discussion: """
            Without --message, each line you type (or each line of standard input) is one turn of the same \
            conversation, and the reply is shown as the model writes it, with each tool call and the calls \
            held for your approval; /quit or end of input ends it. The turn runs in moat serve when it runs \
            (through its admin socket), otherwise in this process. Every tool call the model asks for is \
            gated by its domain's trust level: calls held for your approval are listed with the command that \
            decides them.
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var unlock: VaultUnlockOptions

    @Option(help: ArgumentHelp("The message (one turn); without it, a conversation line by line.", valueName: "text"))
    var message: String?

    @Option(help: ArgumentHelp("Continue this conversation (printed after each reply).", valueName: "id"))
    var conversation: String?

    @Option(
        help: ArgumentHelp(
            "For a new conversation: the provider (a name under providers: in config.yaml) that answers it; "
                + "its later turns keep it.", valueName: "name"))
    var provider: String?

    @Flag(help: "Print the turn as JSON (with --stream or without --message: each event as a JSON line first).")
    var json = false

    @Flag(help: "With --message: show the reply as it is written, with each tool call (always so without --message).")
    var stream = false

    func run() async throws {
        var session = ChatSession(
            state: state, unlock: unlock, json: json, conversation: conversation, provider: provider)
        guard let message else {
            try await session.converse()
            return
        }
        guard !message.isEmpty else {
            throw CommandFailure("--message is empty: say what the agent should do", exitCode: ExitStatus.usage)
        }
        if stream {
            try await session.turn(message)
        } else {
            try await AdminChannel.run(
                .chat(message: message, conversation: conversation, provider: provider), json: json, state: state,
                unlock: unlock)
        }
    }
}

/// One owner conversation in the terminal: each turn streamed (`chat.stream`), the conversation id
/// carried from turn to turn.
struct ChatSession {
    let state: StateOptions
    let unlock: VaultUnlockOptions
    let json: Bool
    var conversation: String?
    /// The provider chosen for the new conversation; sent with its first turn only.
    var provider: String?

    /// Turns from the terminal (with a prompt) or standard input, until `/quit` or the end of input. A
    /// failed turn is reported and the conversation goes on.
    mutating func converse() async throws {
        let terminal = isatty(STDIN_FILENO) == 1
        if terminal {
            FileHandle.standardError.write(Data("Talking to the agent; /quit or Ctrl-D ends.\n".utf8))
        }
        while true {
            if terminal { FileHandle.standardError.write(Data("> ".utf8)) }
            guard let line = readLine(strippingNewline: true) else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text == "/quit" || text == "/exit" { break }
            do {
                try await turn(text)
            } catch {
                FileHandle.standardError.write(Data(CommandFailure(error).printed.utf8))
            }
        }
    }

    /// One streamed turn: the events as they come, then what the stream did not show.
    mutating func turn(_ text: String) async throws {
        let printer = TurnPrinter(json: json)
        // The id is chosen before the first turn, so a turn that fails (the model server is down) leaves
        // its message in the conversation the next line continues.
        let id = conversation ?? "owner-" + Hex.encode((0..<8).map { _ in UInt8.random(in: 0...255) })
        conversation = id
        let result = try await AdminChannel.perform(
            .chatStream(message: text, conversation: id, provider: provider), state: state, unlock: unlock,
            onEvent: { printer.show($0) })
        guard case .chatTurn(let turn) = result else {
            throw CommandFailure(
                "the running moat serve answered the chat with something else; is it the same version?")
        }
        conversation = turn.conversation
        provider = nil
        printer.finish(turn)
    }
}

/// Prints a turn's events as they arrive: the model's text as it is written, a line per tool call and
/// decision, and each held call with the commands that decide it (or, with `json`, each event as a line).
final class TurnPrinter: Sendable {
    let json: Bool
    private let shown = Mutex(Shown())

    private struct Shown {
        /// The text of the latest round with text, as shown.
        var round = 0
        var text = ""
        /// Whether the cursor is at the start of a line.
        var atLineStart = true
    }

    init(json: Bool) {
        self.json = json
    }

    func show(_ event: TurnEventView) {
        if json {
            write(Self.encoded(event))
            return
        }
        switch event.type {
        case "delta":
            let text = PrintableText.stripKeepingLines(event.text ?? "")
            shown.withLock { shown in
                if shown.round != event.round ?? 0 {
                    shown.round = event.round ?? 0
                    shown.text = ""
                }
                shown.text += event.text ?? ""
                if !text.isEmpty { shown.atLineStart = text.hasSuffix("\n") }
            }
            write(text)
        case "tool":
            line(Self.tool(event))
        case "approval":
            line(
                AdminText.pending(
                    TurnView.Pending(
                        approvalID: event.approvalID ?? "", tool: event.tool ?? "", summary: event.summary ?? "",
                        reason: event.reason ?? "")))
        default:
            break  // a budget's stop and the end are in the turn's last lines
        }
    }

    /// What the stream did not show: the reply when it was not streamed (a budget's stop), the described
    /// calls, the stop, and the conversation id.
    func finish(_ turn: TurnView) {
        if json {
            write(Self.encoded(turn))
            return
        }
        let streamedReply = shown.withLock { $0.text }
        if !turn.reply.isEmpty && streamedReply != turn.reply {
            line(PrintableText.stripKeepingLines(turn.reply))
        }
        line(AdminText.turn(turn, streamed: true))
    }

    /// `tool call 1: NAME [DOMAIN] ARGUMENTS`, then `  decided: …` and `  finished: …` lines.
    static func tool(_ event: TurnEventView) -> String {
        let index = event.index.map(String.init) ?? "?"
        let name = event.tool ?? ""
        var text: String
        switch event.stage {
        case "proposed":
            text = "tool call \(index): \(name)\(event.domain.map { " [\($0)]" } ?? "") \(event.arguments ?? "")"
        case "decided":
            text = "  decided: level \(event.level ?? 0): \(event.explanation ?? "")"
            for reason in event.taint ?? [] { text += "\n  tainted: \(reason)" }
        default:
            let outcome = (event.outcome ?? "").isEmpty ? "" : " (\(event.outcome ?? ""))"
            text = "  \(name): \(event.decision ?? "")\(outcome)"
        }
        return PrintableText.stripKeepingLines(text) + "\n"
    }

    /// `text` on lines of its own (a line break first when the model's text left the cursor mid-line).
    private func line(_ text: String) {
        let midLine = shown.withLock { shown in
            defer { shown.atLineStart = text.isEmpty || text.hasSuffix("\n") }
            return !shown.atLineStart
        }
        write((midLine ? "\n" : "") + text + (text.hasSuffix("\n") || text.isEmpty ? "" : "\n"))
    }

    private func write(_ text: String) {
        if !text.isEmpty { FileHandle.standardOutput.write(Data(text.utf8)) }
    }

    static func encoded(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ((try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
    }
}
