import Foundation
import MoatAgent
import MoatAuth
import MoatChannels
public import MoatCore
import MoatHTTP
import MoatNet
import MoatPolicy
import MoatProviders
import MoatStore
import MoatTools
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
        let tree = try tree(text, file: file)
        do {
            return try read(tree)
        } catch {
            throw GatewayError(.configuration, message(error, file: file))
        }
    }

    /// Every problem `load(path:required:)` would stop at, in file order of discovery, each worded as the
    /// loader words it (`config.yaml:7: gateway.prot: unknown key (did you mean gateway.port?)`); empty
    /// when the file loads. After each problem the offending entry is set aside (as if it were not in the
    /// file) and the file is read again, so one mistake does not hide the next; a file that cannot be
    /// read or parsed at all is one problem.
    public static func problems(path: String, required: Bool) -> [String] {
        let text: String
        do {
            guard let read = try readFile(path, required: required) else { return [] }
            text = read
        } catch {
            return [error.message]
        }
        var tree: ConfigNode
        do {
            tree = try Self.tree(text, file: path)
        } catch {
            return [error.message]
        }
        var problems: [String] = []
        // Each round removes at least one entry, so the number of entries bounds the loop; 200 is a backstop.
        for _ in 0..<200 {
            do {
                let config = try read(tree)
                // `moat serve` refuses this when it opens the agent, after the file has loaded.
                if config.providers.named(config.agent.provider) == nil {
                    let name = ConfigNode.printable(config.agent.provider)
                    let known = config.providers.providers.map(\.name).joined(separator: ", ")
                    problems.append(
                        "\(path): agent.provider: names \(name), which is not under providers: (\(known)); "
                            + "set agent.provider to one of them, or add providers.\(name)")
                }
                break
            } catch {
                problems.append(message(error, file: path))
                guard error.line > 0, let rest = tree.removing(line: error.line) else { break }
                tree = rest
            }
        }
        return problems
    }

    private static func message(_ error: ConfigError, file: String) -> String {
        let location = error.line > 0 ? "\(file):\(error.line)" : file
        return "\(location): \(error.path): \(error.message)"
    }

    /// The file's node tree, after the checks that refuse a file as a whole (YAML references, tags, depth,
    /// duplicate keys, syntax, no settings).
    static func tree(_ text: String, file: String) throws(GatewayError) -> ConfigNode {
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
            let keys = duplicates.map { ConfigNode.printable($0) }.joined(separator: ", ")
            throw GatewayError(
                .configuration,
                "\(file):\(context.mark.line): \(keys): appears twice in the same section; keep one"
            )
        } catch let error as YamlError {
            throw GatewayError(.configuration, "\(file): not valid YAML: \(describe(error))")
        } catch {
            throw GatewayError(.configuration, "\(file): not valid YAML")
        }
        guard let tree = root.map(convert), !tree.isNull else {
            throw GatewayError(
                .configuration,
                "\(file): the file holds no settings; delete it to run on the defaults, "
                    + "or start from config.yaml.example"
            )
        }
        return tree
    }

    /// The top level: each section goes to the settings value of the module that owns it.
    static func read(_ root: ConfigNode) throws(ConfigError) -> GatewayConfiguration {
        var config = GatewayConfiguration()
        for (key, value) in try root.mapping(
            path: "", allowed: ["gateway", "log", "policy", "channels", "providers", "tools", "agent"])
        {
            switch key {
            case "gateway":
                var auth = config.auth
                try config.http.read(value, path: key) { (limits) throws(ConfigError) in
                    try auth.read(limits, path: "gateway.auth.limits")
                }
                config.auth = auth
            case "policy":
                try config.policy.read(value, path: key)
            case "channels":
                try config.channels.read(value, path: key)
            case "providers":
                try config.providers.read(value, path: key)
            case "tools":
                try config.tools.read(value, path: key)
            case "agent":
                try config.agent.read(value, path: key)
            default:
                for (logKey, logValue) in try value.mapping(path: "log", allowed: ["format", "level"]) {
                    if logKey == "format" {
                        config.logFormat = try logValue.enumeration(path: "log.format")
                    } else {
                        config.logLevel = try logValue.enumeration(path: "log.level")
                    }
                }
            }
        }
        // Routes name providers of another section, so they are checked once both are read.
        if let problem = config.agent.routeProblem(config.providers) { throw problem }
        return config
    }

    /// Yams' node tree as the plain ``ConfigNode`` tree the modules read.
    static func convert(_ node: Node) -> ConfigNode {
        let line = node.mark?.line ?? 0
        switch node {
        case .scalar(let scalar):
            return ConfigNode(.scalar(scalar.string, plain: scalar.style == .plain), line: line)
        case .mapping(let mapping):
            return ConfigNode(.mapping(mapping.map { (key: convert($0.key), value: convert($0.value)) }), line: line)
        case .sequence(let sequence):
            return ConfigNode(.sequence(sequence.map(convert)), line: line)
        case .alias:
            // Refused by YAMLReferenceScan before parsing; kept as a null for completeness.
            return ConfigNode(.scalar("", plain: true), line: line)
        }
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
}

extension ConfigNode {
    /// This tree without the mapping entries whose key, and the list items that, start on `line`; nil
    /// when nothing starts there (so a caller going through problems one by one always makes progress).
    func removing(line: Int) -> ConfigNode? {
        switch value {
        case .scalar:
            return nil
        case .mapping(let entries):
            var changed = false
            var kept: [(key: ConfigNode, value: ConfigNode)] = []
            for entry in entries {
                if entry.key.line == line {
                    changed = true
                } else if let inner = entry.value.removing(line: line) {
                    changed = true
                    kept.append((key: entry.key, value: inner))
                } else {
                    kept.append(entry)
                }
            }
            return changed ? ConfigNode(.mapping(kept), line: self.line) : nil
        case .sequence(let items):
            var changed = false
            var kept: [ConfigNode] = []
            for item in items {
                if item.line == line {
                    changed = true
                } else if let inner = item.removing(line: line) {
                    changed = true
                    kept.append(inner)
                } else {
                    kept.append(item)
                }
            }
            return changed ? ConfigNode(.sequence(kept), line: self.line) : nil
        }
    }
}
