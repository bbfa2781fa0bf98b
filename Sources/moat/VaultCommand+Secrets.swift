import ArgumentParser
import Foundation
import MoatAdmin
import MoatAudit
import MoatCore
import MoatVault

extension VaultCommand {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the vault with a master password you choose, and seal it to this machine.",
            discussion: """
                The password (at least 12 characters) is asked twice on the terminal, or read with \
                --password-file / --password-stdin. The vault is then sealed without a PIN so `moat serve` \
                starts unattended; --pin asks for a PIN as well, --no-seal leaves it unsealed.
                """
        )

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Flag(help: "Also require a PIN to open the seal (asked on the terminal, or --pin-file).")
        var pin = false

        @Flag(help: "Do not seal: moat serve will then ask for the master password on a terminal.")
        var noSeal = false

        func validate() throws {
            if noSeal && (pin || unlock.pinFile != nil) {
                throw ValidationError("--no-seal and --pin contradict each other")
            }
        }

        func run() throws {
            let context = try VaultContext.prepare(state, create: true)
            let paths = context.paths
            try CommandFailure.wrap { () throws(VaultError) in
                if FileManager.default.fileExists(atPath: paths.vault) {
                    throw VaultError(
                        .alreadyExists,
                        "a vault already exists at \(paths.vault); to change its password use moat vault rekey"
                    )
                }
                if AdminChannel.runningServer(context.layout) != nil {
                    throw VaultError(
                        .alreadyExists,
                        "stop moat serve first: it runs on this home and holds the vault that was at \(paths.vault) "
                            + "open; a new vault made beside it would be overwritten by the server's next change")
                }
                let password = try SecretInput.password(from: unlock.passwordSource ?? .terminal, confirm: true)
                let wantsPIN = pin || unlock.pinFile != nil
                let sealPIN = !noSeal && wantsPIN ? try SecretInput.pin(from: unlock.pinSource, confirm: true) : nil
                // The audit keys are made first and go into the new vault, so its creation is recorded
                // (fail-closed) before vault.moat exists.
                let seed = AuditKeyring.freshSeed()
                let log = try context.auditLog(keys: { try AuditKeyring.keys(fromSeed: seed) }, for: "vault.init")
                let vault = try UnlockedVault.create(
                    paths: paths, password: password, seed: seed, record: context.recorder("vault.init", log: log))
                print("created \(paths.vault) (\(vault.parameters))")
                if !noSeal {
                    try context.recordChange("vault.seal", metadata: ["pin": .bool(sealPIN != nil)], vault: vault)
                    print(SealCommandText.sealed(try vault.seal(password: password, pin: sealPIN)))
                }
                print("Keep the master password safe: it is the only way to open the vault on another machine.")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Show the vault file, its key-derivation parameters and whether it is sealed (no password needed)."
        )

        @OptionGroup var state: StateOptions

        func run() throws {
            let context = try VaultContext.prepare(state, create: false)
            let paths = context.paths
            let status = try CommandFailure.wrap { () throws(VaultError) in try VaultStatus.inspect(paths) }
            guard let status else {
                print("no vault at \(paths.vault): moat vault init (or moat serve) creates one")
                throw ExitCode(ExitStatus.failure)
            }
            print("vault  \(paths.vault) (\(status.size) bytes, \(status.parameters), AES-256-GCM)")
            switch status.seal {
            case nil:
                print("seal   none: moat serve asks for the master password on a terminal")
            case .some(let seal):
                print(
                    "seal   \(paths.seal): " + (seal.hasPIN ? "sealed with a PIN, " : "sealed without a PIN, ")
                        + seal.binding + "\n       a copy of the state directory: " + seal.exposure)
            }
            if FileManager.default.fileExists(atPath: paths.recoveryKey) {
                print("note   \(paths.recoveryKey) still holds the recovery key: store it safely, then delete the file")
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a secret; its value is read from the terminal, standard input or --from-file, never argv.",
            discussion: """
                NAME is upper case, e.g. GITHUB_TOKEN. Tools use it as {{secret:NAME}}; it is resolved only \
                for the tools and hosts allowed here, e.g. --allow-tool http --allow-host api.github.com. \
                Hosts may be exact names, IP addresses, *.example.com (subdomains) or * (any host).
                """
        )

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The secret's name, e.g. GITHUB_TOKEN.")
        var name: String

        @Option(help: ArgumentHelp("Read the value from this file, byte for byte.", valueName: "file"))
        var fromFile: String?

        @Option(
            name: .customLong("allow-tool"),
            help: ArgumentHelp("A tool that may receive the secret (repeatable).", valueName: "tool"))
        var tools: [String] = []

        @Option(
            name: .customLong("allow-host"),
            help: ArgumentHelp("A host it may be sent to (repeatable).", valueName: "host"))
        var hosts: [String] = []

        @Flag(help: "Replace the value and policy of an existing secret.")
        var replace = false

        func validate() throws {
            if unlock.passwordStdin && fromFile == nil {
                throw ValidationError(
                    "standard input carries the value: give the password with --password-file, or the value with --from-file"
                )
            }
        }

        func run() throws {
            let context = try VaultContext.prepare(state, create: false)
            let policy = try CommandFailure.wrap { () throws(VaultError) in
                // Checked before anything is asked, so a typo costs no password prompt.
                try SecretName.validate(name)
                return try SecretPolicy(tools: tools, hosts: hosts)
            }
            let source: SecretSource =
                fromFile.map { .file($0) } ?? (SecretInput.terminalAvailable ? .terminal : .standardInput)
            func operation(_ value: SecretBytes) -> AdminOperation {
                .vaultAdd(name: name, value: value, tools: policy.tools, hosts: policy.hosts, replace: replace)
            }
            // With `moat serve` running, the server changes the vault it holds open (and records it).
            if let socket = AdminChannel.runningServer(context.layout) {
                let value = try CommandFailure.wrap { () throws(VaultError) in
                    try SecretInput.value(from: source, name: name)
                }
                try AdminChannel.print(try AdminChannel.send(operation(value), to: socket))
                return
            }
            let result = try CommandFailure.wrap { () throws(VaultError) in
                let vault = try context.unlock(unlock)
                let value = try SecretInput.value(from: source, name: name)
                return try context.perform(operation(value), on: vault)
            }
            try AdminChannel.print(result)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the secrets' names, policies and dates (never their values)."
        )

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Flag(help: "Print a JSON array of {name, tools, hosts, created, updated}.")
        var json = false

        func run() throws {
            let context = try VaultContext.prepare(state, create: false)
            // With `moat serve` running, the list is what the server holds (no password or PIN asked).
            if let socket = AdminChannel.runningServer(context.layout) {
                try AdminChannel.print(try AdminChannel.send(.vaultList, to: socket), json: json)
                return
            }
            // Reading records nothing, so no audit log (nor moat.db) is needed here.
            let secrets = try CommandFailure.wrap { () throws(VaultError) in try context.unlock(unlock).secrets() }
            try AdminChannel.print(.vaultSecrets(secrets), json: json)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a secret.")

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Argument(help: "The secret's name.")
        var name: String

        func run() throws {
            let context = try VaultContext.prepare(state, create: false)
            try CommandFailure.wrap { () throws(VaultError) in try SecretName.validate(name) }
            if let socket = AdminChannel.runningServer(context.layout) {
                try AdminChannel.print(try AdminChannel.send(.vaultRemove(name: name), to: socket))
                return
            }
            let result = try CommandFailure.wrap { () throws(VaultError) in
                try context.perform(.vaultRemove(name: name), on: try context.unlock(unlock))
            }
            try AdminChannel.print(result)
        }
    }
}
