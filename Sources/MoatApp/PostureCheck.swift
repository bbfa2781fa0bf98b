import MoatAdmin
import MoatAudit
import MoatAuth
public import MoatConfig
public import MoatCore
public import MoatHTTP
import MoatStore
import MoatVault

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `moat doctor`: the security posture of this installation, one finding per check.
///
/// Read-only: it never creates a directory, never migrates the database and never changes a mode.
public enum PostureCheck {
    /// One check's result.
    public struct Finding: Sendable, Equatable {
        public enum Status: String, Sendable {
            case pass, warn, fail
        }
        /// A short name, e.g. `bind`, `file modes`.
        public let check: String
        public let status: Status
        /// What was found.
        public let message: String
        /// What to do about it, when something is to be done.
        public let fix: String?
        /// What `moat doctor --fix` can do about it itself, when anything.
        public let repair: Repair?

        public init(check: String, status: Status, message: String, fix: String? = nil, repair: Repair? = nil) {
            self.check = check
            self.status = status
            self.message = message
            self.fix = fix
            self.repair = repair
        }
    }

    /// A change `moat doctor --fix` can make, each confirmed and recorded in the audit log.
    public enum Repair: Sendable, Equatable, CustomStringConvertible {
        /// Set `path`'s permission bits to `mode` (a state file or directory others can reach).
        case chmod(path: String, mode: UInt32)
        /// Remove the admin socket a server that is gone left behind.
        case removeStaleSocket(path: String)
        /// Sign a checkpoint of the audit log's head (a server stopped without its shutdown checkpoint).
        case writeCheckpoint
        /// Seal the vault to this machine (needs the master password: the recovery key file or a prompt).
        case sealVault

        public var description: String {
            switch self {
            case .chmod(let path, let mode): "chmod \(String(mode, radix: 8)) \(path)"
            case .removeStaleSocket(let path): "remove the stale admin socket \(path)"
            case .writeCheckpoint: "sign a checkpoint of the audit log's head"
            case .sealVault: "seal the vault to this machine without a PIN"
            }
        }
    }

    /// Runs every check; `now` is injectable for certificate-expiry tests.
    public static func run(
        _ options: Installation.Options,
        resolver: HostResolver = .system,
        now: Int? = nil
    ) -> [Finding] {
        var findings: [Finding] = []
        let layout: StateLayout
        let configuration: GatewayConfiguration
        do {
            let installation = try Installation.locate(options)
            layout = installation.layout
            configuration = installation.configuration
            findings.append(
                Finding(
                    check: "config", status: .pass,
                    message: "configuration valid (\(installation.configurationSource))"))
        } catch {
            findings.append(
                Finding(
                    check: "config", status: .fail, message: error.message,
                    fix: error.code == .unsafeState
                        ? "make it a regular file that only you (or root) can change, as the message says"
                        : "correct the file at that line")
            )
            // Without a configuration the remaining checks would describe defaults that will not run.
            if let layout = try? Installation.layout(options) {
                findings += stateFindings(layout)
            }
            return findings
        }

        findings += bindFindings(configuration, resolver: resolver, now: now)
        findings += stateFindings(layout)
        return findings
    }

    static func bindFindings(_ configuration: GatewayConfiguration, resolver: HostResolver, now: Int?) -> [Finding] {
        var findings: [Finding] = []
        do {
            let decision = try BindPolicy.evaluate(configuration.http, resolver: resolver) {
                files throws(GatewayError) in
                try TLSMaterial(files: files, now: now)
            }
            if decision.isLoopback {
                findings.append(
                    Finding(
                        check: "bind",
                        status: .pass,
                        message: "listens on loopback only (\(configuration.host) port \(configuration.port))"
                    )
                )
            } else {
                findings.append(
                    Finding(
                        check: "bind",
                        status: .warn,
                        message: "listens beyond loopback (\(configuration.host)) with TLS and authentication",
                        fix: "prefer the loopback default with `tailscale serve --bg \(configuration.port)`"
                    )
                )
            }
            if let tls = decision.tls {
                let current = now ?? Int(time(nil))
                let days = (tls.notValidAfter - current) / 86400
                findings.append(
                    days < 30
                        ? Finding(
                            check: "tls",
                            status: .warn,
                            message: "certificate expires in \(days) days",
                            fix: "renew the certificate before it expires"
                        )
                        : Finding(check: "tls", status: .pass, message: "certificate valid for \(days) more days")
                )
            } else {
                findings.append(
                    Finding(check: "tls", status: .pass, message: "not configured (not needed on loopback)"))
            }
        } catch {
            let status: Finding.Status = .fail
            findings.append(
                Finding(
                    check: error.code == .tls ? "tls" : "bind",
                    status: status,
                    message: error.message,
                    fix: error.code == .tls ? "fix gateway.tls in config.yaml" : "see the message"
                )
            )
        }
        if configuration.authMode == .none {
            findings.append(
                Finding(
                    check: "auth",
                    status: .warn,
                    message: "gateway.auth.mode is none: any local program or proxy reaching the port acts as owner",
                    fix: "set gateway.auth.mode to password"
                )
            )
        } else {
            findings.append(
                Finding(
                    check: "auth", status: .pass, message: "gateway.auth.mode is \(configuration.authMode.rawValue)")
            )
            if let owner = configuration.tailscaleOwner {
                findings.append(
                    Finding(
                        check: "tailscale", status: .pass,
                        message: "tailscale serve identity is on for \(owner), confirmed with tailscaled's whois "
                            + "(safe only on a machine where no one else runs programs; Docs/RemoteAccess.md)")
                )
            }
        }
        return findings
    }

    static func stateFindings(_ layout: StateLayout) -> [Finding] {
        var findings: [Finding] = []
        if FileModes.mode(of: layout.stateDirectory) == nil {
            findings.append(
                Finding(
                    check: "file modes",
                    status: .pass,
                    message: "\(layout.stateDirectory) does not exist yet; moat serve creates it with mode 0700"
                )
            )
        } else {
            let problems = layout.permissionProblems()
            if problems.isEmpty {
                findings.append(
                    Finding(
                        check: "file modes", status: .pass,
                        message: "\(layout.stateDirectory) and its files are private")
                )
            }
            for problem in problems {
                findings.append(
                    Finding(
                        check: "file modes", status: .fail, message: "\(problem.path) \(problem.problem)",
                        fix: problem.fix, repair: problem.repairMode.map { .chmod(path: problem.path, mode: $0) })
                )
            }
        }
        if AdminClient.isStaleSocket(at: layout.adminSocket) {
            findings.append(
                Finding(
                    check: "admin socket", status: .warn,
                    message: "\(layout.adminSocket) was left by a server that is gone (nothing answers on it)",
                    fix: "rm \(layout.adminSocket) (moat serve also replaces it at start)",
                    repair: .removeStaleSocket(path: layout.adminSocket))
            )
        }
        if FileModes.mode(of: layout.databaseFile) == nil {
            findings.append(
                Finding(
                    check: "database", status: .pass,
                    message: "no database yet; moat serve creates \(layout.databaseFile)")
            )
        } else {
            do {
                let problems = try MoatDatabase.inspect(path: layout.databaseFile, migrations: MoatSchema.migrations)
                if problems.isEmpty {
                    findings.append(Finding(check: "database", status: .pass, message: "integrity check ok"))
                    if AuthSchema.ownerExists(databasePath: layout.databaseFile) == false {
                        findings.append(
                            Finding(
                                check: "owner", status: .warn,
                                message: "no owner is set up yet: until then every API answers 503",
                                fix: "open the setup link moat serve printed (or setup-link.txt), "
                                    + "or run moat owner setup"
                            )
                        )
                    } else if AuthSchema.ownerExists(databasePath: layout.databaseFile) == true {
                        findings.append(Finding(check: "owner", status: .pass, message: "the owner is set up"))
                    }
                    findings += checkpointFindings(layout)
                } else {
                    findings.append(
                        Finding(
                            check: "database",
                            status: .fail,
                            message: "integrity check failed: \(problems.prefix(3).joined(separator: "; "))",
                            fix: "restore moat.db from a backup"
                        )
                    )
                }
            } catch {
                // A trigger, view or changed table Moat did not create can hide audit entries.
                let fix =
                    error.code == .foreignSchema
                    ? "restore moat.db from a backup, or remove the object (sqlite3 moat.db) and run "
                        + "moat audit verify --checkpoint FILE with a checkpoint you kept"
                    : "see the message"
                findings.append(Finding(check: "database", status: .fail, message: error.message, fix: fix))
            }
        }
        findings += vaultFindings(layout)
        return findings
    }

    /// A log whose newest entries no signed checkpoint covers while no server runs: the last server
    /// stopped without its shutdown checkpoint (killed, crashed, power cut). A running server writes one
    /// at shutdown, so nothing is reported while it runs.
    static func checkpointFindings(_ layout: StateLayout) -> [Finding] {
        guard !AdminClient.isServerListening(at: layout.adminSocket),
            let coverage = AuditReader.checkpointCoverage(databasePath: layout.databaseFile),
            coverage.startsAfter > 0
        else { return [] }
        let uncovered = coverage.entries - coverage.checkpointed
        return [
            Finding(
                check: "audit", status: .warn,
                message: "the last \(uncovered) of \(coverage.entries) audit entries are not covered by a signed "
                    + "checkpoint (moat serve stopped without its shutdown checkpoint)",
                fix: "moat audit checkpoint", repair: .writeCheckpoint)
        ]
    }

    /// The vault, from its headers only (doctor never asks for a password or opens the seal): fail when
    /// `vault.moat` or `vault.seal` is unreadable or damaged, warn when sealed without a PIN or when the
    /// recovery key file is still lying in the state directory.
    static func vaultFindings(_ layout: StateLayout) -> [Finding] {
        let paths = VaultPaths(stateDirectory: layout.stateDirectory)
        var findings: [Finding] = []
        do {
            guard let status = try VaultStatus.inspect(paths) else {
                return [
                    Finding(check: "vault", status: .pass, message: "no vault yet; moat serve creates and seals one")
                ]
            }
            switch status.seal {
            case nil:
                findings.append(
                    Finding(
                        check: "vault",
                        status: .pass,
                        message: "\(paths.vault) readable (\(status.parameters)); not sealed: moat serve asks for "
                            + "the master password on a terminal",
                        repair: .sealVault
                    )
                )
            case .some(let seal) where seal.holdsPassword:
                findings.append(
                    Finding(
                        check: "vault", status: .warn, message: seal.exposure, fix: "moat vault seal; moat vault rekey")
                )
            case .some(let seal) where seal.hasPIN || seal.protection != .fingerprint:
                findings.append(
                    Finding(
                        check: "vault", status: .pass,
                        message: "\(paths.vault) readable (\(status.parameters)); sealed "
                            + (seal.hasPIN ? "with a PIN, " : "without a PIN, ") + "\(seal.binding): \(seal.exposure)")
                )
            case .some(let seal):
                findings.append(
                    Finding(
                        check: "vault",
                        status: .warn,
                        message: "sealed without a PIN, \(seal.binding): \(seal.exposure)",
                        fix: "moat vault seal --pin"
                    )
                )
            }
        } catch {
            findings.append(
                Finding(
                    check: "vault",
                    status: .fail,
                    message: error.message,
                    fix: "restore the file from a backup (or delete vault.seal and run moat vault seal)"
                )
            )
        }
        if FileModes.mode(of: paths.recoveryKey) != nil {
            findings.append(
                Finding(
                    check: "vault",
                    status: .warn,
                    message: "\(paths.recoveryKey) still holds the vault's recovery key",
                    fix: "store the key somewhere safe (a password manager, paper), then delete the file"
                )
            )
        }
        return findings
    }

    /// The findings as aligned text lines.
    public static func text(_ findings: [Finding]) -> String {
        let width = findings.map(\.check.count).max() ?? 0
        return findings.map { finding in
            let pad = String(repeating: " ", count: width - finding.check.count)
            var line = "\(finding.status.rawValue)  \(finding.check)\(pad)  \(finding.message)"
            if let fix = finding.fix, finding.status != .pass {
                line += "\n      fix: \(fix)"
            }
            return line
        }.joined(separator: "\n")
    }

    /// The findings as a JSON array of `{check, status, message, fix}`; after `--fix` (`fixed` given),
    /// each object also has `fixed`: what was changed for its check (an array, empty when nothing).
    public static func json(_ findings: [Finding], fixed: [String: [String]]? = nil) -> String {
        let items = findings.map { finding in
            var object = "{\"check\":\(JSONLinesLogHandler.quote(finding.check))"
            object += ",\"status\":\(JSONLinesLogHandler.quote(finding.status.rawValue))"
            object += ",\"message\":\(JSONLinesLogHandler.quote(finding.message))"
            object += ",\"fix\":" + (finding.fix.map(JSONLinesLogHandler.quote) ?? "null")
            if let fixed {
                let done = (fixed[finding.check] ?? []).map(JSONLinesLogHandler.quote)
                object += ",\"fixed\":[" + done.joined(separator: ",") + "]"
            }
            return object + "}"
        }
        return "[" + items.joined(separator: ",\n ") + "]"
    }
}
