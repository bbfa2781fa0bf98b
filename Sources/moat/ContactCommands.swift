import ArgumentParser
import MoatAdmin
import MoatCore
import MoatPolicy

struct ContactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contact",
        abstract: "Add, list and remove the people (senders on a channel) the agent answers besides the owner.",
        discussion: """
            A contact is a sender on one channel, written CHANNEL:SENDER — webhook:NAME:SENDER for a signed \
            webhook (Docs/Channels.md). Each contact has a ceiling per trust domain: the agent never acts for \
            it above that level, and a contact's message taints the turn (shell, messaging, finance, email \
            and system wait for the owner's approval). Contacts never get owner rights.
            """,
        subcommands: [Add.self, List.self, Remove.self]
    )
}

extension ContactCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a contact with per-domain ceilings.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "CHANNEL:SENDER, e.g. webhook:sms:+15551234567.")
        var address: String

        @Option(
            name: .customLong("ceiling"),
            help: "DOMAIN=LEVEL (repeatable), e.g. --ceiling web=2. Unnamed domains: messaging 2, others 1.")
        var ceilings: [String] = []

        func run() async throws {
            let (channel, sender) = try ContactAddress.parse(address)
            let parsed = try ContactAddress.ceilings(ceilings)
            try await AdminChannel.run(
                .contactAdd(channel: channel, sender: sender, ceilings: parsed), state: state, unlock: unlock)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List contacts and their ceilings.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        func run() async throws {
            try await AdminChannel.run(.contactList, state: state, unlock: unlock)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a contact: its next message is from an unknown sender.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The contact's id (`moat contact list`).")
        var id: String

        func run() async throws {
            try await AdminChannel.run(.contactRemove(id: id), state: state, unlock: unlock)
        }
    }
}

/// The CLI's form of a contact: `CHANNEL:SENDER`.
enum ContactAddress {
    /// `webhook:NAME:SENDER` → (`webhook:NAME`, SENDER); `CHANNEL:SENDER` → (CHANNEL, SENDER).
    static func parse(_ address: String) throws -> (channel: String, sender: String) {
        let usage = CommandFailure(
            "a contact is CHANNEL:SENDER, e.g. webhook:sms:+15551234567 or telegram:123456789",
            exitCode: ExitStatus.usage)
        let parts = address.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard PrintableText.isPrintable(address), parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }) else {
            throw usage
        }
        if parts[0] == "webhook" {
            guard parts.count == 3 else { throw usage }
            return ("webhook:" + parts[1], parts[2])
        }
        return (parts[0], parts.dropFirst().joined(separator: ":"))
    }

    /// The defaults with each `DOMAIN=LEVEL` applied.
    static func ceilings(_ pairs: [String]) throws -> [TrustDomain: TrustLevel] {
        var ceilings = PolicySettings.defaultContactCeilings
        for pair in pairs {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let domain = TrustDomain(rawValue: parts[0]),
                let level = TrustLevel(argument: parts[1])
            else {
                throw CommandFailure(
                    "--ceiling takes DOMAIN=LEVEL with a domain of "
                        + TrustDomain.allCases.map(\.rawValue).joined(separator: ", ") + " and a level 0-4",
                    exitCode: ExitStatus.usage)
            }
            ceilings[domain] = level
        }
        return ceilings
    }
}
