import Foundation
import MoatAuth
public import MoatCore
import MoatHTTP
import MoatNet
import MoatPolicy
import MoatStore
internal import Yams

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads `config.yaml` strictly.
///
/// An unknown key, a wrong type, an out-of-range value, a duplicate key, a YAML anchor or alias, or an
/// empty file is an error that names the file, the line, the key and what is allowed, in the form
/// editors understand:
/// `config.yaml:7: gateway.prot: unknown key (did you mean gateway.port?)`.
public enum ConfigurationLoader {
    /// The largest config file Moat reads; a bigger one is certainly a mistake.
    static let maximumSize = 1 << 20

    /// Loads `path`. When `required` is false a missing file means "use the defaults".
    public static func load(path: String, required: Bool) throws(GatewayError) -> GatewayConfiguration {
        guard let text = try readFile(path, required: required) else {
            return GatewayConfiguration()
        }
        return try parse(text, file: path)
    }

    /// Parses configuration text; `file` is only used in messages.
    public static func parse(_ text: String, file: String) throws(GatewayError) -> GatewayConfiguration {
        if let reference = YAMLReferenceScan.firstReference(in: text) {
            let problem =
                switch reference.kind {
                case "anchor": "YAML anchors (&name) are not accepted in a Moat config"
                case "alias": "YAML aliases (*name) are not accepted in a Moat config"
                case "tag": "YAML tags (!name, !!type) are not accepted in a Moat config"
                default: "nested more than \(YAMLReferenceScan.maximumDepth) levels deep; a Moat config is a few levels"
                }
            throw GatewayError(
                .configuration,
                "\(file):\(reference.line): \(problem); "
                    + "write each value out in full (quote a value that starts with &, * or !)"
            )
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
            let keys = duplicates.map { printable($0) }.joined(separator: ", ")
            throw GatewayError(
                .configuration,
                "\(file):\(context.mark.line): \(keys): appears twice in the same section; keep one"
            )
        } catch let error as YamlError {
            throw GatewayError(.configuration, "\(file): not valid YAML: \(describe(error))")
        } catch {
            throw GatewayError(.configuration, "\(file): not valid YAML")
        }
        guard let root, !(root.scalar.map { isNull($0) } ?? false) else {
            throw GatewayError(
                .configuration,
                "\(file): the file holds no settings; delete it to run on the defaults, "
                    + "or start from config.yaml.example"
            )
        }
        var reader = Reader(file: file)
        return try reader.read(root)
    }

    /// Reads the file the way Moat reads its own state: a regular file, not through a symbolic link,
    /// owned by this user or root and writable by no one else, in a directory no one else can write to.
    /// Another user who could edit it could add `allowed_hosts` (re-opening DNS rebinding) or move the bind.
    private static func readFile(_ path: String, required: Bool) throws(GatewayError) -> String? {
        let bytes: [UInt8]
        let status: BoundedFile.Status
        do {
            (bytes, status) = try BoundedFile.readWithStatus(path, limit: maximumSize, followLinks: false)
        } catch .open(let code) {
            if code == ENOENT && !required {
                return nil
            }
            if code == ELOOP {
                throw GatewayError(
                    .unsafeState,
                    "\(path): is a symbolic link; Moat does not follow links for its config: "
                        + "point --config at the real file, or replace the link with it")
            }
            let fix = code == ENOENT ? " (check the path given to --config)" : ""
            throw GatewayError(.configuration, "\(path): cannot read: \(BoundedFile.describe(code))\(fix)")
        } catch .read(let code) {
            throw GatewayError(.configuration, "\(path): cannot read: \(BoundedFile.describe(code))")
        } catch .notRegular(let what) {
            throw GatewayError(
                .unsafeState, "\(path): is \(what), not a regular file; a config file must be a regular file")
        } catch {
            throw GatewayError(.configuration, "\(path): larger than 1 MiB; this is not a Moat config file")
        }
        let problems = FileModes.configFileProblems(path, owner: status.owner, mode: status.mode)
        guard problems.isEmpty else {
            throw GatewayError(
                .unsafeState,
                "refusing to read \(path): another user could change it (as OpenSSH refuses for ~/.ssh/config):\n"
                    + PermissionProblem.report(problems)
            )
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw GatewayError(.configuration, "\(path): not UTF-8 text")
        }
        return text
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let location = "line \(mark.line), column \(mark.column)"
            if let context { return "\(problem) \(context.text) (\(location))" }
            return "\(problem) (\(location))"
        default:
            return "the YAML parser rejected it"
        }
    }

    static func isNull(_ scalar: Node.Scalar) -> Bool {
        scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// Walks the node tree with the schema written out in code, so each key's rule sits next to it.
    private struct Reader {
        let file: String
        var config = GatewayConfiguration()
        var tlsCert: String?
        var tlsKey: String?
        var tlsLine = 0

        init(file: String) {
            self.file = file
        }

        mutating func read(_ root: Node) throws(GatewayError) -> GatewayConfiguration {
            for (key, value) in try mapping(root, path: "", allowed: ["gateway", "log", "policy"]) {
                switch key {
                case "gateway": try readGateway(value)
                case "policy": try readPolicy(value)
                default: try readLog(value)
                }
            }
            switch (tlsCert, tlsKey) {
            case (let cert?, let key?):
                config.tls = .init(certificatePath: cert, keyPath: key)
            case (nil, nil):
                config.tls = nil
            case (nil, _):
                throw fail(
                    tlsLine, "gateway.tls.cert", "missing: gateway.tls.key is set, so the certificate is needed too")
            case (_, nil):
                throw fail(
                    tlsLine, "gateway.tls.key", "missing: gateway.tls.cert is set, so the private key is needed too")
            }
            if config.authMode == .token, config.tailscaleOwner != nil {
                throw fail(
                    0, "gateway.auth.tailscale.owner",
                    "cannot be used with gateway.auth.mode: token, which turns browser identities off; "
                        + "remove one of the two")
            }
            return config
        }

        mutating func readGateway(_ node: Node) throws(GatewayError) {
            let keys = ["host", "port", "allowed_hosts", "tls", "auth"]
            for (key, value) in try mapping(node, path: "gateway", allowed: keys) {
                let path = "gateway." + key
                switch key {
                case "host":
                    let host = try string(value, path: path)
                    guard !host.isEmpty, host.utf8.count <= 253, !host.contains(where: { $0 == " " || $0 == "/" })
                    else {
                        throw fail(value, path, "must be an IP address or a host name, e.g. 127.0.0.1")
                    }
                    config.host = host
                case "port":
                    config.port = try integer(value, path: path, range: 0...65535, allowed: "a port from 1 to 65535")
                case "allowed_hosts":
                    config.allowedHosts = try stringList(value, path: path).map { (entry, node) throws(GatewayError) in
                        guard HostGuard.isValidAllowedHost(entry) else {
                            throw fail(
                                node,
                                path,
                                "\"\(printable(entry))\" is not a host name or host:port (no scheme, path or wildcard), "
                                    + "e.g. laptop.tail1234.ts.net"
                            )
                        }
                        return entry.lowercased()
                    }
                case "tls":
                    tlsLine = line(value)
                    for (tlsKey, tlsValue) in try mapping(value, path: path, allowed: ["cert", "key"]) {
                        let text = try optionalString(tlsValue, path: path + "." + tlsKey)
                        if tlsKey == "cert" { tlsCert = text } else { self.tlsKey = text }
                    }
                default:
                    try readAuth(value)
                }
            }
        }

        mutating func readAuth(_ node: Node) throws(GatewayError) {
            for (key, value) in try mapping(node, path: "gateway.auth", allowed: ["mode", "tailscale", "limits"]) {
                let path = "gateway.auth." + key
                switch key {
                case "mode":
                    let text = try string(value, path: path)
                    guard text != "none" else {
                        throw fail(
                            value, path,
                            "none is not accepted: loopback is not trusted (tailscale serve and every local proxy "
                                + "arrive from 127.0.0.1); use password (the default) or token")
                    }
                    guard let mode = GatewayConfiguration.AuthMode(rawValue: text), mode != .none else {
                        throw fail(value, path, "\"\(printable(text))\" is not allowed: use one of password, token")
                    }
                    config.authMode = mode
                case "tailscale":
                    for (tsKey, tsValue) in try mapping(value, path: path, allowed: ["owner", "socket", "proxy_uid"]) {
                        if tsKey == "proxy_uid" {
                            guard let uid = tsValue.scalar.flatMap({ UInt32($0.string) }) else {
                                throw fail(
                                    tsValue, path + ".proxy_uid",
                                    "must be the numeric user id tailscaled runs as (0 for root, the default)")
                            }
                            config.tailscaleProxyUID = uid
                            continue
                        }
                        let text = try optionalString(tsValue, path: path + "." + tsKey)
                        if tsKey == "owner" {
                            if let text, !text.contains("@") || text.contains(where: { $0 == " " || $0 == "," }) {
                                throw fail(
                                    tsValue, path + ".owner", "must be one Tailscale login, e.g. alice@example.com")
                            }
                            config.tailscaleOwner = text
                        } else if let text {
                            guard text.hasPrefix("/") else {
                                throw fail(tsValue, path + ".socket", "must be an absolute path to tailscaled's socket")
                            }
                            config.tailscaleSocket = text
                        }
                    }
                default:
                    try readLimits(value)
                }
            }
        }

        /// The limits may be made stricter, never looser than the defaults (ASVS level 2 and the window
        /// they are counted in): each key's allowed range, and the setting it writes.
        static let limitRanges: [(key: String, range: ClosedRange<Int>, unit: String)] = [
            ("password_failures", 1...10, ""), ("address_failures", 1...20, ""), ("totp_failures", 1...5, ""),
            ("setup_failures", 1...10, ""), ("window_minutes", 15...1440, " minutes"),
            ("concurrent_password_checks", 1...2, ""), ("session_idle_minutes", 1...120, " minutes"),
            ("session_max_hours", 1...24, " hours"),
        ]

        mutating func readLimits(_ node: Node) throws(GatewayError) {
            let keys = Self.limitRanges.map(\.key)
            for (key, value) in try mapping(node, path: "gateway.auth.limits", allowed: keys) {
                let path = "gateway.auth.limits." + key
                guard let limit = Self.limitRanges.first(where: { $0.key == key }) else { continue }
                let loosest = key == "window_minutes" ? "15 (shorter is looser)" : "\(limit.range.upperBound)"
                let number = try integer(
                    value, path: path, range: limit.range,
                    allowed:
                        "a whole number from \(limit.range.lowerBound) to \(limit.range.upperBound)\(limit.unit); "
                        + "the default \(loosest) is the loosest Moat allows")
                switch key {
                case "password_failures": config.auth.passwordFailuresPerAccount = number
                case "address_failures": config.auth.passwordFailuresPerAddress = number
                case "totp_failures": config.auth.totpFailures = number
                case "setup_failures": config.auth.setupFailuresPerAddress = number
                case "window_minutes": config.auth.failureWindow = TimeInterval(number * 60)
                case "concurrent_password_checks": config.auth.concurrentPasswordChecks = number
                case "session_idle_minutes": config.auth.sessionIdleTimeout = TimeInterval(number * 60)
                default: config.auth.sessionAbsoluteTimeout = TimeInterval(number * 3600)
                }
            }
        }

        mutating func readLog(_ node: Node) throws(GatewayError) {
            for (key, value) in try mapping(node, path: "log", allowed: ["format", "level"]) {
                if key == "format" {
                    config.logFormat = try enumeration(value, path: "log.format")
                } else {
                    config.logLevel = try enumeration(value, path: "log.level")
                }
            }
        }

        mutating func readPolicy(_ node: Node) throws(GatewayError) {
            let keys = ["trust", "evidence_approvals", "approval_expiry_minutes", "ssrf"]
            for (key, value) in try mapping(node, path: "policy", allowed: keys) {
                let path = "policy." + key
                switch key {
                case "trust":
                    let domains = TrustDomain.allCases.map(\.rawValue)
                    for (domain, levelNode) in try mapping(value, path: path, allowed: domains) {
                        let level = try integer(
                            levelNode, path: path + "." + domain, range: 0...4, allowed: "a trust level from 0 to 4")
                        config.policy.trustDefaults[TrustDomain(rawValue: domain)!] = TrustLevel(rawValue: level)!
                    }
                case "evidence_approvals":
                    config.policy.evidenceApprovals = try integer(
                        value, path: path, range: 1...1000, allowed: "a number of approvals from 1 to 1000")
                case "approval_expiry_minutes":
                    let minutes = try integer(value, path: path, range: 1...10080, allowed: "minutes from 1 to 10080")
                    config.policy.approvalLifetime = TimeInterval(minutes * 60)
                default:
                    try readSSRF(value)
                }
            }
        }

        mutating func readSSRF(_ node: Node) throws(GatewayError) {
            for (key, value) in try mapping(
                node, path: "policy.ssrf", allowed: ["allow_hosts", "block_hosts", "allow_ports"])
            {
                let path = "policy.ssrf." + key
                if key == "allow_ports" {
                    if case .scalar(let scalar) = value, isNull(scalar) { continue }
                    guard case .sequence(let sequence) = value else {
                        throw fail(value, path, "must be a list of ports, e.g. [8123]")
                    }
                    var ports: [Int] = []
                    for item in sequence {
                        ports.append(try integer(item, path: path, range: 1...65535, allowed: "a port from 1 to 65535"))
                    }
                    config.policy.ssrf.allowPorts = ports
                    continue
                }
                let hosts = try stringList(value, path: path).map { (entry, node) throws(GatewayError) in
                    guard SSRFSettings.isValidHostEntry(entry) else {
                        throw fail(
                            node,
                            path,
                            "\"\(printable(entry))\" is not a host name, IP address or *.suffix (no scheme, port or path)"
                        )
                    }
                    return entry.lowercased()
                }
                if key == "allow_hosts" {
                    config.policy.ssrf.allowHosts = hosts
                } else {
                    config.policy.ssrf.blockHosts = hosts
                }
            }
        }

        // MARK: Typed readers

        func mapping(_ node: Node, path: String, allowed: [String]) throws(GatewayError) -> [(String, Node)] {
            guard case .mapping(let mapping) = node else {
                if case .scalar(let scalar) = node, isNull(scalar) {
                    return []  // an empty section (`gateway:` with nothing under it) keeps the defaults
                }
                throw fail(
                    node, path.isEmpty ? "(top level)" : path, "must be a mapping of keys, one per line (key: value)")
            }
            var seen = Set<String>()
            var result: [(String, Node)] = []
            for (keyNode, value) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    throw fail(keyNode, path, "keys must be plain words")
                }
                let key = keyScalar.string
                let fullKey = path.isEmpty ? key : path + "." + key
                guard allowed.contains(key) else {
                    var message = "unknown key"
                    if let suggestion = closest(to: key, in: allowed) {
                        message += " (did you mean \(path.isEmpty ? suggestion : path + "." + suggestion)?)"
                    } else {
                        let scope = path.isEmpty ? "at the top level" : "under \(path)"
                        message += "; allowed \(scope): \(allowed.joined(separator: ", "))"
                    }
                    throw fail(keyNode, printable(fullKey), message)
                }
                guard seen.insert(key).inserted else {
                    throw fail(keyNode, fullKey, "appears twice; keep one")
                }
                result.append((key, value))
            }
            return result
        }

        func scalar(_ node: Node, path: String, expected: String) throws(GatewayError) -> Node.Scalar {
            guard case .scalar(let scalar) = node else {
                throw fail(node, path, "must be \(expected), not a \(node.isMapping ? "mapping" : "list")")
            }
            return scalar
        }

        func string(_ node: Node, path: String) throws(GatewayError) -> String {
            let value = try scalar(node, path: path, expected: "a string")
            if isNull(value) {
                throw fail(node, path, "must be a string, not empty")
            }
            return value.string
        }

        func optionalString(_ node: Node, path: String) throws(GatewayError) -> String? {
            let value = try scalar(node, path: path, expected: "a file path")
            if isNull(value) { return nil }
            guard !value.string.isEmpty else { return nil }
            return value.string
        }

        func integer(_ node: Node, path: String, range: ClosedRange<Int>, allowed: String) throws(GatewayError) -> Int {
            let value = try scalar(node, path: path, expected: "a number")
            guard value.style == .plain, let number = Int(value.string) else {
                throw fail(node, path, "must be a whole number (\(allowed)), not \"\(printable(value.string))\"")
            }
            guard range.contains(number) else {
                throw fail(node, path, "\(number) is out of range: must be \(allowed)")
            }
            return number
        }

        func stringList(_ node: Node, path: String) throws(GatewayError) -> [(String, Node)] {
            if case .scalar(let scalar) = node, isNull(scalar) { return [] }
            guard case .sequence(let sequence) = node else {
                throw fail(node, path, "must be a list, e.g. [laptop.tail1234.ts.net]")
            }
            var result: [(String, Node)] = []
            for item in sequence {
                result.append((try string(item, path: path), item))
            }
            return result
        }

        func enumeration<Value: RawRepresentable & CaseIterable>(
            _ node: Node,
            path: String
        ) throws(GatewayError) -> Value where Value.RawValue == String {
            let choices = Value.allCases.map(\.rawValue)
            let value = try scalar(node, path: path, expected: "one of \(choices.joined(separator: ", "))")
            guard let result = Value(rawValue: value.string) else {
                throw fail(
                    node,
                    path,
                    "\"\(printable(value.string))\" is not allowed: use one of \(choices.joined(separator: ", "))"
                )
            }
            return result
        }

        // MARK: Messages

        func line(_ node: Node) -> Int {
            node.mark?.line ?? 0
        }

        func fail(_ node: Node, _ path: String, _ message: String) -> GatewayError {
            fail(line(node), path, message)
        }

        func fail(_ line: Int, _ path: String, _ message: String) -> GatewayError {
            let location = line > 0 ? "\(file):\(line)" : file
            return GatewayError(.configuration, "\(location): \(path): \(message)")
        }
    }

    /// The allowed key nearest to `key` by edit distance, if it is close enough to be a typo.
    static func closest(to key: String, in allowed: [String]) -> String? {
        let scored = allowed.map { ($0, editDistance(key.lowercased(), $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        let limit = max(1, min(3, best.0.count / 3))
        return best.1 <= limit ? best.0 : nil
    }

    /// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
    /// neighbours each cost 1, so `prot` is one step from `port`.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in stride(from: 1, through: a.count, by: 1) {
            for j in stride(from: 1, through: b.count, by: 1) {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }

    /// User input echoed in a message is cut short and stripped of control characters, so a hostile
    /// config value cannot forge terminal output or flood the log.
    static func printable(_ text: String, limit: Int = 64) -> String {
        PrintableText.excerpt(text, limit: limit)
    }
}

extension Node {
    fileprivate var isMapping: Bool {
        if case .mapping = self { return true }
        return false
    }
}
