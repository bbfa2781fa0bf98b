import ArgumentParser
import MoatAdmin
import MoatCore

struct PairingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pairing",
        abstract: "List, approve and deny the people who asked to talk to the agent on a messaging channel.",
        discussion: """
            Someone who is not a contact and writes to the agent on a channel (Telegram, Matrix) gets a pairing \
            code like ABCD-EFGH, valid 10 minutes; nothing they write reaches the model. You are told the \
            channel, the sender and the code. Approve it with the ceilings you choose: the sender becomes a \
            contact (never the owner). Docs/Channels.md.
            """,
        subcommands: [List.self, Approve.self, Deny.self]
    )
}

extension PairingCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List pending pairings and owner bindings.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        func run() async throws {
            try await AdminChannel.run(.pairingList, state: state, unlock: unlock)
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a pairing code: its sender becomes a contact with per-domain ceilings.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The code the sender was given, e.g. ABCD-EFGH.")
        var code: String

        @Option(
            name: .customLong("ceiling"),
            help: "DOMAIN=LEVEL (repeatable), e.g. --ceiling web=2. Unnamed domains: messaging 2, others 1.")
        var ceilings: [String] = []

        func run() async throws {
            var bytes = Array(code.utf8)
            let parsed = try ContactAddress.ceilings(ceilings)
            try await AdminChannel.run(
                .pairingApprove(code: SecretBytes(wiping: &bytes), ceilings: parsed), state: state, unlock: unlock)
        }
    }

    struct Deny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deny a pairing code: its sender gets no new code until this one would have expired.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The code, e.g. ABCD-EFGH.")
        var code: String

        func run() async throws {
            var bytes = Array(code.utf8)
            try await AdminChannel.run(.pairingDeny(code: SecretBytes(wiping: &bytes)), state: state, unlock: unlock)
        }
    }
}

struct ChannelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channel",
        abstract: "Bind your own Telegram or Matrix account to the owner, list and remove bindings.",
        discussion: """
            `moat channel bind telegram` shows a one-time code; send it from your own account to the agent \
            within 10 minutes. From then on, messages, `approve ID` / `deny ID` and approval taps from that \
            account are the owner's, and approval prompts and notices go there. Docs/Channels.md.
            """,
        subcommands: [Bind.self, Unbind.self, List.self]
    )
}

extension ChannelCommand {
    struct Bind: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a code to send from your own account on CHANNEL; that account becomes the owner's.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The channel, e.g. telegram or matrix.")
        var channel: String

        func run() async throws {
            try await AdminChannel.run(.channelBind(channel: channel), state: state, unlock: unlock)
        }
    }

    struct Unbind: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the owner's account on CHANNEL: it is no longer the owner's.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The channel, e.g. telegram or matrix.")
        var channel: String

        func run() async throws {
            try await AdminChannel.run(.channelUnbind(channel: channel), state: state, unlock: unlock)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the owner's bound accounts.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        func run() async throws {
            try await AdminChannel.run(.channelList, state: state, unlock: unlock)
        }
    }
}
