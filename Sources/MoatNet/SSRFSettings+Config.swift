public import MoatCore

extension SSRFSettings: ConfigSection {
    /// Reads `policy.ssrf`.
    public mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        for (key, value) in try node.mapping(path: path, allowed: ["allow_hosts", "block_hosts", "allow_ports"]) {
            let keyPath = path + "." + key
            if key == "allow_ports" {
                if value.isNull { continue }
                guard case .sequence(let sequence) = value.value else {
                    throw value.fail(keyPath, "must be a list of ports, e.g. [8123]")
                }
                var ports: [Int] = []
                for item in sequence {
                    ports.append(try item.integer(path: keyPath, range: 1...65535, allowed: "a port from 1 to 65535"))
                }
                allowPorts = ports
                continue
            }
            let withPort = key == "allow_hosts"
            let hosts = try value.stringList(path: keyPath).map { (entry, item) throws(ConfigError) in
                guard SSRFSettings.isValidHostEntry(entry, withPort: withPort) else {
                    let forms =
                        withPort
                        ? "*.suffix, optionally with :port (no scheme or path)"
                        : "*.suffix (no scheme, "
                            + "port or path)"
                    throw item.fail(
                        keyPath, "\"\(ConfigNode.printable(entry))\" is not a host name, IP address or \(forms)")
                }
                return entry.lowercased()
            }
            if key == "allow_hosts" { allowHosts = hosts } else { blockHosts = hosts }
        }
    }
}
