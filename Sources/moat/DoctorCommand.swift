import ArgumentParser
import Foundation
import MoatAdmin
import MoatApp
import MoatAudit
import MoatConfig
import MoatCore
import MoatHTTP
import MoatStore
import MoatVault

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the security posture: bind and TLS, auth, file modes, config, database, vault.",
        discussion: """
            Prints one line per check (pass, warn or fail) with the fix. Exits 1 when a check fails. With --fix, \
            repairs what it can (file modes, a stale admin socket, a missing audit checkpoint, an unsealed \
            vault when the master password is at hand), asking before each on the terminal unless --yes; each \
            repair is recorded in the audit log, then every check runs again.
            """
    )

    @OptionGroup var state: StateOptions

    @Flag(help: "Print the findings as a JSON array.")
    var json = false

    @Flag(help: "Repair what can be repaired, asking before each change on the terminal.")
    var fix = false

    @Flag(help: "With --fix: make every repair without asking.")
    var yes = false

    func validate() throws {
        if yes && !fix { throw ValidationError("--yes only goes with --fix") }
    }

    func run() async throws {
        var findings = PostureCheck.run(state.installationOptions)
        var fixed: [String: [String]]?
        if fix {
            let done = await DoctorRepair(state: state, askFirst: !yes).apply(findings)
            fixed = Dictionary(grouping: done, by: \.check).mapValues { $0.map(\.change) }
            findings = PostureCheck.run(state.installationOptions)
            // A check that reports only problems (the stale socket, the missing checkpoint) says it is done.
            for (check, changes) in fixed ?? [:] where !findings.contains(where: { $0.check == check }) {
                findings.append(
                    PostureCheck.Finding(check: check, status: .pass, message: changes.joined(separator: "; ")))
            }
        }
        print(json ? PostureCheck.json(findings, fixed: fixed) : PostureCheck.text(findings))
        if findings.contains(where: { $0.status == .fail }) {
            throw ExitCode(ExitStatus.failure)
        }
    }
}

/// The repairs of `moat doctor --fix`: each asked for on the terminal (unless `--yes`), made, reported
/// on stderr, and recorded in the audit log as `doctor.fix`.
struct DoctorRepair {
    let state: StateOptions
    let askFirst: Bool

    struct Done {
        let check: String
        let change: String
        let target: String
    }

    /// Makes the repairs the findings offer, in an order that lets each one work: modes first (the
    /// database does not open while the state is not private), the vault's seal before the checkpoint
    /// (which needs the vault's audit key).
    func apply(_ findings: [PostureCheck.Finding]) async -> [Done] {
        let order: (PostureCheck.Repair) -> Int = {
            switch $0 {
            case .chmod: 0
            case .removeStaleSocket: 1
            case .sealVault: 2
            case .writeCheckpoint: 3
            }
        }
        let offered = findings.compactMap { finding in finding.repair.map { (finding.check, $0) } }
            .sorted { order($0.1) < order($1.1) }
        var done: [Done] = []
        for (check, repair) in offered {
            guard confirmed(repair.description) else {
                note(
                    "not fixed: \(repair) ("
                        + (askFirst && !Self.hasTerminal ? "no terminal to ask on; pass --yes)" : "declined)"))
                continue
            }
            do {
                let (change, target) = try await make(repair)
                note("fixed: \(change)")
                done.append(Done(check: check, change: change, target: target))
            } catch {
                note("not fixed: \(repair): \(CommandFailure(error).message)")
            }
        }
        record(done)
        return done
    }

    private func make(_ repair: PostureCheck.Repair) async throws -> (change: String, target: String) {
        switch repair {
        case .chmod(let path, let mode):
            guard chmod(path, mode_t(mode)) == 0 else {
                throw CommandFailure("chmod \(path): \(String(cString: strerror(errno)))")
            }
            return (repair.description, path)
        case .removeStaleSocket(let path):
            // Probed again right before: a server that started meanwhile keeps its socket.
            guard AdminClient.isStaleSocket(at: path) else {
                throw CommandFailure("\(path) is no longer a stale socket; left alone")
            }
            guard unlink(path) == 0 else { throw CommandFailure("rm \(path): \(String(cString: strerror(errno)))") }
            return ("removed the stale admin socket \(path)", path)
        case .sealVault:
            let layout = try CommandContext.layout(state)
            let recoveryKey = VaultPaths(stateDirectory: layout.stateDirectory).recoveryKey
            var password: SecretBytes?
            if FileManager.default.fileExists(atPath: recoveryKey) {
                password = try RecoveryKey.read(from: recoveryKey)
            } else if !Self.hasTerminal {
                throw CommandFailure("it needs the master password and there is no terminal to ask on: moat vault seal")
            }
            let binding = try VaultCommand.Seal.seal(
                state, unlock: try VaultUnlockOptions.parse([]), pin: false, password: password)
            return ("sealed the vault (\(binding.split(separator: "\n").first ?? ""))", "vault.seal")
        case .writeCheckpoint:
            _ = try await AuditCommand.Checkpoint.write(state, unlock: try VaultUnlockOptions.parse([]))
            return (repair.description, "audit_checkpoints")
        }
    }

    /// Records each repair as `doctor.fix`, once the state is private again and the vault opens without
    /// a prompt (from a seal without a PIN); otherwise says why it could not.
    private func record(_ done: [Done]) {
        guard !done.isEmpty else { return }
        do {
            let context = try CommandContext.open(state: state, readConfiguration: false)
            defer { try? context.state.close() }
            let paths = VaultPaths(stateDirectory: context.layout.stateDirectory)
            guard let seal = try VaultStatus.inspect(paths)?.seal, !seal.hasPIN else {
                note("the repairs were not recorded in the audit log: the vault does not open without a prompt")
                return
            }
            let vault = try UnlockedVault.unseal(paths: paths, pin: nil)
            let log = try context.auditLog(try AuditKeyring.keys(from: vault))
            for repair in done {
                _ = try log.appendNow(
                    AuditEvent(
                        actor: "owner", action: "doctor.fix", target: repair.target, outcome: "fixed",
                        metadata: ["check": .string(repair.check), "change": .string(repair.change)]))
            }
        } catch {
            note("the repairs were not recorded in the audit log: \(CommandFailure(error).message)")
        }
    }

    static var hasTerminal: Bool {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// True with `--yes`; otherwise the answer typed on the terminal (y or yes), false without one.
    private func confirmed(_ change: String) -> Bool {
        guard askFirst else { return true }
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let question = Array("fix: \(change)? [y/N] ".utf8)
        _ = question.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var answer: [UInt8] = []
        var byte: UInt8 = 0
        while answer.count < 16, read(fd, &byte, 1) == 1, byte != UInt8(ascii: "\n") { answer.append(byte) }
        let text = String(decoding: answer, as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
        return text == "y" || text == "yes"
    }
}
