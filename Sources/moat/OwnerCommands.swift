import ArgumentParser
import Foundation
import Logging
import MoatAdmin
import MoatAgent
import MoatApp
import MoatAudit
import MoatAuth
import MoatConfig
import MoatCore
import MoatHTTP
import MoatPolicy
import MoatStore
import MoatVault

/// Sends an owner or policy operation to the running server through the admin socket, or — when no
/// server runs — performs it in this process on the same files with the same code (``AdminOperations``).
/// Either way the result comes back typed and is rendered here, so the output is the same.
enum AdminChannel {
    /// Runs `operation` and prints its result (`json` for the listings' `--json`).
    static func run(
        _ operation: AdminOperation, json: Bool = false, state: StateOptions, unlock: VaultUnlockOptions
    ) async throws {
        try print(try await perform(operation, state: state, unlock: unlock), json: json)
    }

    /// Prints `result` as the command's output: the result on stdout, notes on stderr.
    static func print(_ result: AdminResult, json: Bool = false) throws {
        let rendered = try CommandFailure.wrap { () throws in try result.rendered(json: json) }
        if !rendered.output.isEmpty { FileHandle.standardOutput.write(Data(rendered.output.utf8)) }
        if let note = rendered.note, !note.isEmpty { FileHandle.standardError.write(Data(note.utf8)) }
    }

    /// The admin socket of the server running on `layout`, or nil when none runs.
    static func runningServer(_ layout: StateLayout) -> String? {
        let socket = layout.adminSocket
        return AdminClient.isServerListening(at: socket) ? socket : nil
    }

    /// The result of `operation` from the server listening on `socket`; its failure as the command's.
    /// `onEvent` gets a streamed turn's events as they arrive.
    static func send(
        _ operation: AdminOperation, to socket: String, onEvent: (TurnEventView) -> Void = { _ in }
    ) throws -> AdminResult {
        let response: AdminResponse
        do {
            // A turn waits for the model (and its tools): as long as the agent's own limits allow.
            response = try AdminClient.send(
                operation, to: socket, timeout: operation.isAgentTurn ? 900 : 30, onEvent: onEvent)
        } catch {
            throw CommandFailure("cannot talk to the running moat serve through \(socket): \(error)")
        }
        guard response.status == 0, let result = response.result else {
            throw CommandFailure(
                response.error ?? "the operation failed",
                exitCode: response.status == 0 ? ExitStatus.failure : response.status)
        }
        return result
    }

    /// The result of `operation`, from the running server or from this process; `onEvent` gets a
    /// streamed turn's events (``AdminOperation/streamsEvents``) as they arrive, either way.
    static func perform(
        _ operation: AdminOperation, state: StateOptions, unlock: VaultUnlockOptions,
        onEvent: @escaping @Sendable (TurnEventView) -> Void = { _ in }
    ) async throws -> AdminResult {
        if let socket = runningServer(try CommandContext.layout(state)) {
            return try send(operation, to: socket, onEvent: onEvent)
        }
        let context = try CommandContext.open(state: state)
        defer { try? context.state.close() }
        let vault = try context.unlockVault(unlock)
        let operations = try CommandFailure.wrap { () throws(GatewayError) in
            let audit = try context.state.auditLog(vault: vault)
            let engine = try context.state.policyEngine(vault: vault, audit: audit)
            // The agent only for what needs it: a broken provider setting must not block `moat token list`,
            // nor the approval list (it only adds why each held call waits).
            func openAgent() throws(GatewayError) -> AgentOperations {
                AgentOperations(
                    agent: try context.state.agent(
                        vault: vault, audit: audit, engine: engine,
                        notifier: LoggingNotifier(logger: Logger(label: "moat.chat") { _ in SwiftLogNoOpLogHandler() }))
                )
            }
            let agent =
                operation.isAgentTurn ? try openAgent() : operation.showsApprovals ? try? openAgent() : nil
            return context.state.adminOperations(
                authority: try context.state.ownerAuthority(vault: vault, audit: audit), engine: engine,
                agent: agent, pairing: try context.state.pairingDesk(vault: vault, audit: audit, engine: engine),
                baseURL: { nil })
        }
        let show: @Sendable (TurnEvent) async -> Void = { event in onEvent(TurnEventView(event)) }
        do {
            return try await operations.perform(
                operation, client: .local("cli"), events: operation.streamsEvents ? show : nil)
        } catch {
            throw CommandFailure(error.message, exitCode: error.status)
        }
    }
}

struct OwnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "owner",
        abstract: "Set up the owner, change the password, turn on two-factor login, end every session.",
        discussion:
            "With `moat serve` running these go through its admin socket (moat.sock); otherwise they work on the state files directly.",
        subcommands: [Setup.self, Status.self, Password.self, TOTPEnrol.self, RevokeAll.self]
    )

    struct Setup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the owner's username and password (or print a one-time setup link with --link).")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Option(help: ArgumentHelp("The owner's username (default: owner).", valueName: "name"))
        var username: String?

        @Option(help: ArgumentHelp("Read the owner password from this file.", valueName: "file"))
        var ownerPasswordFile: String?

        @Flag(help: "Read the owner password from standard input.")
        var ownerPasswordStdin = false

        @Flag(help: "Replace an existing owner: ends every session and revokes every API token.")
        var reset = false

        @Flag(help: "Print a fresh one-time setup link of the running server instead (valid 15 minutes).")
        var link = false

        func run() async throws {
            if link {
                try await AdminChannel.run(.ownerSetupLink, state: state, unlock: unlock)
                return
            }
            let password = try OwnerPassword.read(
                file: ownerPasswordFile, stdin: ownerPasswordStdin, prompt: "Owner password: ")
            try await AdminChannel.run(
                .ownerSetup(username: username, password: password, reset: reset), state: state, unlock: unlock)
            // A setup link written by `moat serve` is useless now; do not leave it lying around.
            if let layout = try? CommandContext.layout(state) { unlink(layout.setupLinkFile) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show whether an owner exists, TOTP, and tokens.")
        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        func run() async throws {
            try await AdminChannel.run(.ownerStatus, state: state, unlock: unlock)
        }
    }

    struct Password: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a new owner password (ends every session and live token).")
        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions
        @Option(help: ArgumentHelp("Read the new owner password from this file.", valueName: "file"))
        var ownerPasswordFile: String?
        @Flag(help: "Read the new owner password from standard input.")
        var ownerPasswordStdin = false

        func run() async throws {
            let password = try OwnerPassword.read(
                file: ownerPasswordFile, stdin: ownerPasswordStdin, prompt: "New owner password: ")
            try await AdminChannel.run(.ownerPassword(password), state: state, unlock: unlock)
        }
    }

    struct TOTPEnrol: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "totp", abstract: "Turn on two-factor login: scan the QR code, then type a code.")
        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        func run() async throws {
            try await AdminChannel.run(.ownerTOTPBegin, state: state, unlock: unlock)
            FileHandle.standardError.write(Data("Code from the app: ".utf8))
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw CommandFailure("no code given; two-factor login stays off", exitCode: ExitStatus.usage)
            }
            var bytes = Array(line.utf8)
            let code = SecretBytes(wiping: &bytes)
            try await AdminChannel.run(.ownerTOTPConfirm(code: code), state: state, unlock: unlock)
        }
    }

    struct RevokeAll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-all",
            abstract: "End every session and live token at once (and API tokens with --tokens).")
        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions
        @Flag(help: "Revoke every API token too.")
        var tokens = false

        func run() async throws {
            try await AdminChannel.run(.ownerRevokeAll(tokens: tokens), state: state, unlock: unlock)
        }
    }
}

/// Reads an owner password from a file, standard input or the terminal (without echo, asked twice).
enum OwnerPassword {
    static func read(file: String?, stdin: Bool, prompt: String) throws -> SecretBytes {
        if file != nil && stdin {
            throw CommandFailure("give the owner password once: a file or standard input", exitCode: ExitStatus.usage)
        }
        let source: SecretSource = file.map { .file($0) } ?? (stdin ? .standardInput : .terminal)
        return try CommandFailure.wrap { () throws(VaultError) in
            try SecretInput.password(from: source, prompt: prompt, confirm: true)
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "API tokens for scripts: create (shown once), list, revoke.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token; it is printed once on standard output, details on standard error.")
        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions
        @Argument(help: "A name to recognise it by.") var name: String
        @Option(help: "read (GET only), write, or admin (also tokens and sessions).") var scope = "read"
        @Option(help: ArgumentHelp("Lifetime such as 30d, 12h, 90m, or never (default: 90d).", valueName: "time"))
        var expires: String?

        func run() async throws {
            let operation = try CommandFailure.wrap { () throws(AuthError) in
                guard let tokenScope = TokenScope(rawValue: scope) else {
                    throw AuthError(.invalidInput, "--scope must be read, write or admin")
                }
                return AdminOperation.tokenCreate(
                    name: name, scope: tokenScope, expiry: try TokenExpiry(parsing: expires))
            }
            try await AdminChannel.run(operation, state: state, unlock: unlock)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens: prefix, name, scope, times, state.")
        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await AdminChannel.run(.tokenList, json: json, state: state, unlock: unlock)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke the token with this prefix.")
        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions
        @Argument(help: "The token's 8-character prefix (see `moat token list`).") var prefix: String

        func run() async throws {
            try await AdminChannel.run(.tokenRevoke(prefix: prefix), state: state, unlock: unlock)
        }
    }
}
