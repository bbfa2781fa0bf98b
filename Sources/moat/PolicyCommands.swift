public import ArgumentParser
import Foundation
import MoatAudit
import MoatCore
import MoatGateway
import MoatPolicy
import MoatStore
import MoatVault

/// Opens the policy engine on `moat.db` and the vault (for the row-MAC and audit keys).
///
/// Until the admin socket exists (issue 6) these commands work on the files directly, like `moat vault`;
/// SQLite's locking and the re-check inside each write keep them safe next to a running server.
enum PolicyCommandContext {
    static func engine(state: StateOptions, unlock: VaultUnlockOptions) throws -> PolicyEngine {
        let context = try CommandContext.open(state: state)
        let settings = try settings(state)
        let vault = try context.unlockVault(unlock)
        let keys = try AuditKeyring.keys(from: vault)
        let authenticator = try PolicyKeyring.authenticator(from: vault)
        return PolicyEngine(
            database: context.database,
            authenticator: authenticator,
            audit: try context.auditLog(keys),
            settings: settings
        )
    }

    static func settings(_ state: StateOptions) throws -> PolicySettings {
        do {
            let options = GatewayServer.Options(
                home: state.home, configPath: state.config, environment: ProcessInfo.processInfo.environment)
            return try GatewayServer.load(options).1.policy
        } catch {
            throw CommandFailure(error.message, exitCode: ExitStatus.configuration)
        }
    }

    /// Runs `body`, turning a policy error into a failure the CLI prints.
    static func run<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PolicyError {
            throw CommandFailure(error.message)
        }
    }
}

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
            let engine = try PolicyCommandContext.engine(state: state, unlock: unlock)
            for item in try await PolicyCommandContext.run({ try await engine.trust() }) {
                var line = "\(item.domain.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0))\(item.level)"
                if let change = item.lastChange {
                    line +=
                        "  (change \(change.id), \(PolicyEngine.timestamp(change.createdAt)), \(change.kind.rawValue))"
                } else {
                    line += "  (default)"
                }
                if item.tampered { line += "  TAMPERED ROWS IGNORED, see `moat audit tail`" }
                print(CommandContext.terminalSafe(line))
            }
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
            let engine = try PolicyCommandContext.engine(state: state, unlock: unlock)
            let change = try await PolicyCommandContext.run {
                try await engine.setTrust(domain, to: level, reason: reason, force: force)
            }
            print("change \(change.id): \(domain) \(change.from) -> \(change.to) (\(change.kind.rawValue))")
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
            let engine = try PolicyCommandContext.engine(state: state, unlock: unlock)
            for change in try await PolicyCommandContext.run({ try await engine.history(domain) }) {
                var line =
                    "\(change.id)  \(PolicyEngine.timestamp(change.createdAt))  \(change.domain)  "
                    + "\(change.from.rawValue) -> \(change.to.rawValue)  \(change.kind.rawValue)  by \(change.actor)"
                if let undone = change.rollbackOf { line += "  (undoes \(undone))" }
                line += "  reason: \(change.reason)  evidence: \(change.evidence)"
                print(CommandContext.terminalSafe(line))
            }
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
            let engine = try PolicyCommandContext.engine(state: state, unlock: unlock)
            let change = try await PolicyCommandContext.run {
                try await engine.rollback(changeID, reason: reason, force: force)
            }
            print("change \(change.id): \(change.domain) \(change.from) -> \(change.to) (rollback of \(changeID))")
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

    static func line(_ record: ApprovalRecord) -> String {
        CommandContext.terminalSafe(
            "\(record.id)  \(record.status)  \(record.domain)  \(record.request.tool)  "
                + "\(record.request.destination.isEmpty ? "-" : record.request.destination)  by \(record.principal)  "
                + "expires \(PolicyEngine.timestamp(record.expiresAt))"
        )
    }

    static func json(_ record: ApprovalRecord) -> [String: Any] {
        [
            "id": record.id, "status": record.status.description, "domain": record.domain.rawValue,
            "tool": record.request.tool, "arguments": record.request.arguments,
            "destination": record.request.destination, "request_hash": record.requestHash,
            "principal": record.principal, "created_at": PolicyEngine.timestamp(record.createdAt),
            "expires_at": PolicyEngine.timestamp(record.expiresAt),
        ]
    }
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
            let engine = try PolicyCommandContext.engine(state: state, unlock: unlock)
            let records = try await PolicyCommandContext.run { try await engine.approvals(pendingOnly: !all) }
            if json {
                let data = try JSONSerialization.data(
                    withJSONObject: records.map(ApprovalsCommand.json), options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                if records.isEmpty { print(all ? "no approvals" : "no pending approvals") }
                for record in records { print(ApprovalsCommand.line(record)) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one approval with its exact request.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The approval id.")
        var id: String

        func run() async throws {
            let engine = try PolicyCommandContext.engine(state: state, unlock: unlock)
            let record = try await PolicyCommandContext.run { try await engine.approval(id) }
            print(ApprovalsCommand.line(record))
            print(CommandContext.terminalSafe("tool:        \(record.request.tool)"))
            print(CommandContext.terminalSafe("arguments:   \(record.request.arguments)"))
            print(CommandContext.terminalSafe("destination: \(record.request.destination)"))
            print("hash:        \(record.requestHash)")
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve one pending action (runs once, as shown).")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The approval id.")
        var id: String

        func run() async throws {
            let engine = try PolicyCommandContext.engine(state: state, unlock: unlock)
            let record = try await PolicyCommandContext.run { try await engine.approve(id) }
            print("approved \(record.id)")
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
            let engine = try PolicyCommandContext.engine(state: state, unlock: unlock)
            let record = try await PolicyCommandContext.run { try await engine.deny(id, reason: reason) }
            print("denied \(record.id)")
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
            for flag in flags { print(CommandContext.terminalSafe(flag.description)) }
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
            let settings = try PolicyCommandContext.settings(state)
            switch await URLGuard(settings: settings.ssrf).check(url) {
            case .allow:
                print("allow")
            case .deny(let reason):
                print(CommandContext.terminalSafe("deny: \(reason)"))
                throw ExitCode(ExitStatus.failure)
            }
        }
    }
}
