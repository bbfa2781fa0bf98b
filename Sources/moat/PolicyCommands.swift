public import ArgumentParser
import Foundation
import MoatAdmin
import MoatApp
import MoatAudit
import MoatConfig
import MoatCore
import MoatHTTP
import MoatNet
import MoatPolicy
import MoatStore
import MoatVault

/// The settings `moat policy check-url` needs from the config file.
///
/// `moat trust …` and `moat approvals …` go through ``AdminChannel``: the admin socket when `moat serve`
/// runs, the same ``PolicyOperations`` in this process otherwise.
extension TrustDomain: ExpressibleByArgument {}

extension TrustLevel: ExpressibleByArgument {}

struct TrustCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Show and change per-domain trust levels, with evidence, history and rollback.",
        discussion: """
            Levels: 0 none, 1 inform, 2 suggest (owner approves each action), 3 act (runs, owner told), \
            4 full. Raising a domain to 3 or 4 needs 10 approved actions in it with no denial since its \
            last change, or --force with a reason. See Docs/Policy.md.
            """,
        subcommands: [Show.self, SetLevel.self, History.self, Rollback.self]
    )
}

extension TrustCommand {
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print each domain's level and its last change.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        func run() async throws {
            try await AdminChannel.run(.trustShow, state: state, unlock: unlock)
        }
    }

    struct SetLevel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set DOMAIN to LEVEL (0-4 or none/inform/suggest/act/full), with a recorded reason."
        )

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "messaging, files, web, shell, finance, calendar, email, integrations or system.")
        var domain: TrustDomain

        @Argument(help: "0-4 or none, inform, suggest, act, full.")
        var level: TrustLevel

        @Option(help: "Why; recorded with the change and in the audit log.")
        var reason: String

        @Flag(help: "Raise to 3 or 4 without the evidence the rule asks for (recorded as forced).")
        var force = false

        func run() async throws {
            try await AdminChannel.run(
                .trustSet(domain: domain, level: level, reason: reason, force: force), state: state, unlock: unlock)
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List recorded trust changes (of one domain, or all), oldest first.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "Only this domain.")
        var domain: TrustDomain?

        func run() async throws {
            try await AdminChannel.run(.trustHistory(domain: domain), state: state, unlock: unlock)
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Undo change CHANGE_ID: its domain returns to the earlier level, as a new recorded change.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: ArgumentHelp("The change to undo (see `moat trust history`).", valueName: "change-id"))
        var changeID: Int64

        @Option(help: "Why (default: \"rollback of change N\").")
        var reason: String?

        @Flag(help: "Allow the rollback to raise a domain to 3 or 4 without evidence (recorded).")
        var force = false

        func run() async throws {
            try await AdminChannel.run(
                .trustRollback(id: changeID, reason: reason, force: force), state: state, unlock: unlock)
        }
    }
}

struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals",
        abstract: "List, inspect, approve and deny actions waiting for the owner.",
        discussion: """
            An approval runs exactly the request shown, once, and only before it expires (1 hour by \
            default). Two denials in a row in one domain lower that domain by one level.
            """,
        subcommands: [List.self, Show.self, Approve.self, Deny.self]
    )
}

extension ApprovalsCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List approvals, newest first (pending ones by default).")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Flag(help: "Also list decided, used and expired approvals.")
        var all = false

        @Flag(help: "Print a JSON array.")
        var json = false

        func run() async throws {
            try await AdminChannel.run(.approvalsList(all: all), json: json, state: state, unlock: unlock)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one approval with its exact request.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The approval id.")
        var id: String

        func run() async throws {
            try await AdminChannel.run(.approvalsShow(id: id), state: state, unlock: unlock)
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve one pending action (runs once, as shown).")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The approval id.")
        var id: String

        func run() async throws {
            try await AdminChannel.run(.approvalsApprove(id: id), state: state, unlock: unlock)
        }
    }

    struct Deny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deny one pending action, optionally saying why.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The approval id.")
        var id: String

        @Option(help: "Why (recorded).")
        var reason = ""

        func run() async throws {
            try await AdminChannel.run(.approvalsDeny(id: id, reason: reason), state: state, unlock: unlock)
        }
    }
}

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Try the policy's guards: scan text for prompt injection, check a URL against the SSRF guard.",
        subcommands: [Scan.self, CheckURL.self]
    )
}

extension PolicyCommand {
    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Scan text on stdin for prompt injection; print the flags (exit 0 clean, 1 flagged).")

        func run() throws {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard data.count <= 4 << 20 else { throw CommandFailure("stdin is larger than 4 MiB") }
            let flags = InjectionFlagger.scan(String(decoding: data, as: UTF8.self))
            if flags.isEmpty {
                print("clean")
                return
            }
            for flag in flags { print(PrintableText.strip(flag.description)) }
            throw ExitCode(ExitStatus.failure)
        }
    }

    struct CheckURL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-url",
            abstract: "Check URL against the SSRF guard; print `allow` or `deny: <reason>` (exit 0 or 1)."
        )

        @OptionGroup var state: StateOptions

        @Argument(help: "The URL.")
        var url: String

        func run() async throws {
            let settings = try CommandContext.configuration(state).policy
            switch await URLGuard(settings: settings.ssrf).check(url) {
            case .allow:
                print("allow")
            case .deny(let reason):
                print(PrintableText.strip("deny: \(reason)"))
                throw ExitCode(ExitStatus.failure)
            }
        }
    }
}
