public import MoatCore

extension HTTPSettings {
    /// Reads the `gateway:` section. Its `auth.limits` belong to owner authentication: that node is
    /// handed to `authLimits` (the loader passes `AuthSettings`' reader).
    public mutating func read(
        _ node: ConfigNode, path: String, authLimits: (ConfigNode) throws(ConfigError) -> Void
    ) throws(ConfigError) {
        var tlsCert: String?
        var tlsKey: String?
        var tlsLine = 0
        for (key, value) in try node.mapping(path: path, allowed: ["host", "port", "allowed_hosts", "tls", "auth"]) {
            let keyPath = path + "." + key
            switch key {
            case "host":
                let host = try value.string(path: keyPath)
                guard !host.isEmpty, host.utf8.count <= 253, !host.contains(where: { $0 == " " || $0 == "/" }) else {
                    throw value.fail(keyPath, "must be an IP address or a host name, e.g. 127.0.0.1")
                }
                self.host = host
            case "port":
                port = try value.integer(path: keyPath, range: 0...65535, allowed: "a port from 1 to 65535")
            case "allowed_hosts":
                allowedHosts = try value.stringList(path: keyPath).map { (entry, item) throws(ConfigError) in
                    guard HostGuard.isValidAllowedHost(entry) else {
                        throw item.fail(
                            keyPath,
                            "\"\(ConfigNode.printable(entry))\" is not a host name or host:port (no scheme, path or "
                                + "wildcard), e.g. laptop.tail1234.ts.net")
                    }
                    return entry.lowercased()
                }
            case "tls":
                tlsLine = value.line
                for (tlsKeyName, tlsValue) in try value.mapping(path: keyPath, allowed: ["cert", "key"]) {
                    let text = try tlsValue.optionalString(path: keyPath + "." + tlsKeyName)
                    if tlsKeyName == "cert" { tlsCert = text } else { tlsKey = text }
                }
            default:
                try readAuth(value, path: keyPath, authLimits: authLimits)
            }
        }
        switch (tlsCert, tlsKey) {
        case (let cert?, let key?):
            tls = TLSFiles(certificatePath: cert, keyPath: key)
        case (nil, nil):
            break  // no TLS files: the value read over (the default, none) stands
        case (nil, _):
            throw ConfigError(
                line: tlsLine, path: path + ".tls.cert",
                message: "missing: gateway.tls.key is set, so the certificate is needed too")
        case (_, nil):
            throw ConfigError(
                line: tlsLine, path: path + ".tls.key",
                message: "missing: gateway.tls.cert is set, so the private key is needed too")
        }
        if authMode == .token, tailscaleOwner != nil {
            throw ConfigError(
                line: 0, path: path + ".auth.tailscale.owner",
                message: "cannot be used with gateway.auth.mode: token, which turns browser identities off; "
                    + "remove one of the two")
        }
    }

    private mutating func readAuth(
        _ node: ConfigNode, path: String, authLimits: (ConfigNode) throws(ConfigError) -> Void
    ) throws(ConfigError) {
        for (key, value) in try node.mapping(path: path, allowed: ["mode", "tailscale", "limits"]) {
            let keyPath = path + "." + key
            switch key {
            case "mode":
                let text = try value.string(path: keyPath)
                guard text != "none" else {
                    throw value.fail(
                        keyPath,
                        "none is not accepted: loopback is not trusted (tailscale serve and every local proxy "
                            + "arrive from 127.0.0.1); use password (the default) or token")
                }
                guard let mode = AuthMode(rawValue: text), mode != .none else {
                    throw value.fail(
                        keyPath, "\"\(ConfigNode.printable(text))\" is not allowed: use one of password, token")
                }
                authMode = mode
            case "tailscale":
                try readTailscale(value, path: keyPath)
            default:
                try authLimits(value)
            }
        }
    }

    private mutating func readTailscale(_ node: ConfigNode, path: String) throws(ConfigError) {
        for (key, value) in try node.mapping(path: path, allowed: ["owner", "socket", "proxy_uid"]) {
            if key == "proxy_uid" {
                guard case .scalar(let text, _) = value.value, let uid = UInt32(text) else {
                    throw value.fail(
                        path + ".proxy_uid", "must be the numeric user id tailscaled runs as (0 for root, the default)")
                }
                tailscaleProxyUID = uid
                continue
            }
            let text = try value.optionalString(path: path + "." + key)
            if key == "owner" {
                if let text, !text.contains("@") || text.contains(where: { $0 == " " || $0 == "," }) {
                    throw value.fail(path + ".owner", "must be one Tailscale login, e.g. alice@example.com")
                }
                tailscaleOwner = text
            } else if let text {
                guard text.hasPrefix("/") else {
                    throw value.fail(path + ".socket", "must be an absolute path to tailscaled's socket")
                }
                tailscaleSocket = text
            }
        }
    }
}
