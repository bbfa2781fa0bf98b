import Foundation
import MoatStore

/// The systemd unit `moat service install` writes: `moat serve` as a notify service with a watchdog,
/// hardened as far as the sandbox launcher allows (Docs/Operations.md, "Running as a systemd service").
struct ServiceUnit: Equatable {
    enum Scope: String {
        case user, system
    }

    /// The credential that carries the seal's PIN (`LoadCredentialEncrypted=`), when the seal has one.
    struct PINCredential: Equatable {
        /// The encrypted credential file (`systemd-creds encrypt` output).
        let path: String
        static let name = "moat-seal-pin"
    }

    let scope: Scope
    /// The absolute path of the `moat` binary.
    let executable: String
    /// `--home` and `--config` as given to `install`, passed on to `moat serve`.
    let home: String?
    let config: String?
    let stateDirectory: String
    /// The user a system unit runs as (`User=`); nil for a user unit.
    let user: String?
    let pinCredential: PINCredential?
    /// The unit's process runs as root (a `--user` unit of root's own manager): the sandbox launcher then
    /// drops root's supplementary groups and maps the sandbox to another user, which takes CAP_SETGID
    /// and CAP_SETUID (Docs/Sandbox.md, "Identity").
    var runsAsRoot = false

    static let name = "moat.service"
    static let watchdogSeconds = 30
    static let memoryMax = "1G"

    /// The directory the unit goes in: `$XDG_CONFIG_HOME/systemd/user` (or `~/.config/systemd/user`) for
    /// a user unit, `/etc/systemd/system` for a system unit.
    static func directory(_ scope: Scope, environment: [String: String], home: String) -> String {
        switch scope {
        case .system:
            return "/etc/systemd/system"
        case .user:
            if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
                return xdg + "/systemd/user"
            }
            return home + "/.config/systemd/user"
        }
    }

    /// `systemctl --user` or `systemctl`, for the commands the output suggests.
    var systemctl: String { scope == .user ? "systemctl --user" : "systemctl" }

    /// A word of an `ExecStart=` line: quoted when it holds anything but safe characters, with `%`
    /// (specifier) and `$` (variable) escaped.
    static func quoted(_ word: String) -> String {
        let safe = word.allSatisfy { $0.isLetter || $0.isNumber || "/._-+:,=@".contains($0) }
        if safe { return word }
        var escaped = ""
        for character in word {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "%": escaped += "%%"
            case "$": escaped += "$$"
            default: escaped.append(character)
            }
        }
        return "\"" + escaped + "\""
    }

    /// A path in a directive that takes one path (`ReadWritePaths=`): `%` doubled, spaces refused earlier.
    static func pathValue(_ path: String) -> String { path.replacingOccurrences(of: "%", with: "%%") }

    var execStart: String {
        var words = [executable, "serve", "--log-format", "json"]
        if let home { words += ["--home", home] }
        if let config { words += ["--config", config] }
        var line = words.map(Self.quoted).joined(separator: " ")
        if pinCredential != nil { line += " --pin-file %d/\(PINCredential.name)" }
        return line
    }

    /// The unit file's text. Every hardening line says why it is there or why a stricter one is not.
    var text: String {
        var lines: [String] = [
            "# Written by `moat service install`. `moat service status` says whether this file is still what",
            "# install writes; `moat service install --force` replaces it. Docs/Operations.md explains each line.",
            "[Unit]",
            "Description=Moat, a security gateway for a personal AI agent",
            "Documentation=man:systemd.exec(5)",
        ]
        if scope == .system {
            lines += ["Wants=network-online.target", "After=network-online.target"]
        }
        lines += [
            "",
            "[Service]",
            "Type=notify",
            "NotifyAccess=main",
            "ExecStart=\(execStart)",
            "WatchdogSec=\(Self.watchdogSeconds)s",
            "# Unlocking the vault derives a key with Argon2id (64 MiB), which a loaded machine may take a while for.",
            "TimeoutStartSec=120s",
            "TimeoutStopSec=60s",
            "Restart=on-failure",
            "RestartSec=5s",
            "# 64 usage, 65 damaged data, 78 configuration (an unsealed vault, an unsafe mode): a restart repeats it.",
            "RestartPreventExitStatus=64 65 78",
            "SyslogIdentifier=moat",
            "UMask=0077",
        ]
        if let user { lines.append("User=\(user)") }
        if let pinCredential {
            lines.append("LoadCredentialEncrypted=\(PINCredential.name):\(Self.pathValue(pinCredential.path))")
        }
        lines += [
            "",
            "# Hardening. The sandbox launcher (moat-sandbox) clones user, mount, PID, network, IPC, UTS and",
            "# cgroup namespaces, mounts a fresh /proc, pivots its root, sets the sandbox's host name and",
            "# installs its own seccomp filter: the lines below allow exactly that and nothing more.",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=read-only",
            "ReadWritePaths=\(Self.pathValue(stateDirectory))",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "ProtectKernelModules=yes",
            "ProtectControlGroups=yes",
            "ProtectClock=yes",
            "RestrictRealtime=yes",
            "RestrictSUIDSGID=yes",
            "LockPersonality=yes",
            "KeyringMode=private",
            "RemoveIPC=yes",
            runsAsRoot
                ? "# Root's own manager: the sandbox drops root's groups and maps it to another user.\n"
                    + "CapabilityBoundingSet=CAP_SETUID CAP_SETGID" : "CapabilityBoundingSet=",
            "AmbientCapabilities=",
            "# AF_NETLINK: getaddrinfo() with AI_ADDRCONFIG asks the kernel's routing socket which families exist.",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            "RestrictNamespaces=user mnt pid net ipc uts cgroup",
            "SystemCallArchitectures=native",
            "SystemCallFilter=@system-service @mount seccomp sethostname landlock_create_ruleset "
                + "landlock_add_rule landlock_restrict_self",
            "SystemCallErrorNumber=EPERM",
            "# Not set, because the sandbox needs what they take away: ProtectKernelTunables= and",
            "# ProtectKernelLogs= cover parts of /proc (the kernel then refuses the sandbox's own /proc),",
            "# ProtectProc=/ProcSubset= hide it, ProtectHostname= forbids sethostname() in the sandbox's UTS",
            "# namespace, MemoryDenyWriteExecute= would be inherited by sandboxed tools that JIT (node, java).",
            "MemoryMax=\(Self.memoryMax)",
            "TasksMax=512",
            "LimitNOFILE=65536",
            "",
            "[Install]",
            "WantedBy=\(scope == .user ? "default.target" : "multi-user.target")",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
