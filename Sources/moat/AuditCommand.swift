public import ArgumentParser
import Foundation
import MoatAudit
import MoatCore
import MoatStore
import MoatVault

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read, verify and checkpoint the tamper-evident audit log.",
        subcommands: [Verify.self, Checkpoint.self, Tail.self, Export.self]
    )
}

extension AuditCommand {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the whole chain and every checkpoint signature.",
            discussion: """
                With --checkpoint FILE (a checkpoint you kept elsewhere, from `moat audit checkpoint`), also \
                detects a truncated tail, a rewritten history and a restored older database. Exits 0 when \
                intact, 1 when broken.
                """
        )

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Option(help: ArgumentHelp("A checkpoint note you kept elsewhere.", valueName: "file"))
        var checkpoint: String?

        func run() async throws {
            let context = try CommandContext.open(state: state, readConfiguration: false)
            let vault = try context.unlockVault(unlock)
            let keys = try AuditKeyring.keys(from: vault)
            var kept: AuditCheckpoint?
            if let checkpoint {
                guard let text = try? String(contentsOfFile: checkpoint, encoding: .utf8) else {
                    throw CommandFailure("cannot read \(checkpoint); pass the file `moat audit checkpoint` printed")
                }
                kept = try CommandFailure.wrap { () throws(AuditError) in
                    try AuditCheckpoint.parse(text, publicKey: keys.verifyingKey)
                }
            }
            let report = try await context.auditLog(keys).verifyAndRecord(kept: kept)
            print(report.summary)
            if report.brokenSequence != nil { throw ExitCode(ExitStatus.failure) }
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a checkpoint of the log's current head and print it for you to keep elsewhere.",
            discussion: """
                Keep the printed note somewhere an attacker with access to this machine cannot change \
                (a password manager, another machine). `moat audit verify --checkpoint FILE` uses it.
                """
        )

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        func run() async throws {
            print(try await Self.write(state, unlock: unlock), terminator: "")
        }

        /// Records `audit.checkpoint`, signs a checkpoint of the head and returns its note; `moat doctor
        /// --fix` writes a missing checkpoint through here too.
        static func write(_ state: StateOptions, unlock: VaultUnlockOptions) async throws -> String {
            let context = try CommandContext.open(state: state, readConfiguration: false)
            let vault = try context.unlockVault(unlock)
            let keys = try AuditKeyring.keys(from: vault)
            return try await context.auditLog(keys).signedCheckpointNote().note
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the latest entries.")

        @OptionGroup var state: StateOptions

        @Option(name: .short, help: "How many entries.")
        var n = 20

        @Flag(help: "Keep printing new entries as they are appended (Ctrl-C stops).")
        var follow = false

        func validate() throws {
            guard n >= 0 && n <= 100_000 else { throw ValidationError("-n must be from 0 to 100000") }
        }

        func run() async throws {
            let context = try CommandContext.open(state: state, readConfiguration: false)
            var last: Int64 = 0
            for entry in try AuditReader.tail(context.database, count: n) {
                print(Self.format(entry))
                last = entry.sequence
            }
            if n == 0 { last = try AuditReader.count(context.database) }
            while follow {
                try await Task.sleep(for: .milliseconds(500))
                try AuditReader.forEach(context.database, filter: .init(afterSequence: last)) { entry in
                    print(Self.format(entry))
                    last = entry.sequence
                }
                fflush(nil)
            }
        }

        static func format(_ entry: AuditEntry) -> String {
            var line = "\(entry.sequence)  \(entry.time)  \(entry.actor)  \(entry.action)"
            if !entry.target.isEmpty { line += "  \(entry.target)" }
            line += "  \(entry.outcome)"
            if !entry.sourceIP.isEmpty { line += "  from \(entry.sourceIP)" }
            if entry.metadata != "{}" { line += "  \(entry.metadata)" }
            return PrintableText.strip(line)
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export entries as CSV or JSON lines.",
            discussion: """
                Times are RFC 3339 (2026-11-23T20:00:00Z) or a date (2026-11-23), UTC. --action vault.* \
                matches a prefix. CSV cells starting with = + - @ are prefixed with ' so spreadsheets do not \
                run them.
                """
        )

        @OptionGroup var state: StateOptions

        @Option(help: "csv or jsonl.")
        var format: AuditExportFormat

        @Option(help: ArgumentHelp("Only entries at or after this time.", valueName: "time"))
        var since: String?

        @Option(help: ArgumentHelp("Only entries before this time.", valueName: "time"))
        var until: String?

        @Option(help: ArgumentHelp("Only this action (or prefix ending in *).", valueName: "action"))
        var action: String?

        @Option(help: ArgumentHelp("Only this actor.", valueName: "actor"))
        var actor: String?

        @Option(help: ArgumentHelp("Only this outcome (success, denied, intact, …).", valueName: "outcome"))
        var outcome: String?

        func validate() throws {
            for (flag, value) in [("--since", since), ("--until", until)] {
                if let value, AuditReader.Filter.time(value) == nil {
                    throw ValidationError("\(flag) must be " + AuditReader.Filter.timeAdvice)
                }
            }
        }

        func run() throws {
            let context = try CommandContext.open(state: state, readConfiguration: false)
            let filter = AuditReader.Filter(
                since: since.flatMap(AuditReader.Filter.time),
                until: until.flatMap(AuditReader.Filter.time),
                action: action,
                actor: actor,
                outcome: outcome
            )
            try format.export(context.database, filter: filter) { print($0) }
        }
    }
}

extension AuditExportFormat: ExpressibleByArgument {}
