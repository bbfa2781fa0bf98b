public import MoatCore

/// Decides whether the gateway may listen where it was asked to.
///
/// The rule: an address that is not loopback — `0.0.0.0`, `::`, a LAN address, or a name that
/// resolves to any non-loopback address — needs both TLS and an auth mode other than `none`.
/// `auth.mode: none` is never accepted off loopback, even with TLS. The check is a pure function of
/// its inputs (the resolver and the TLS loader are injected) so every combination is tested.
public enum BindPolicy {
    /// A bind that was allowed.
    public struct Decision: Sendable {
        /// The address the server binds: the one that was checked, never a second lookup of the name.
        public let address: IPAddress
        public let port: Int
        /// True when every address the host stands for is loopback.
        public let isLoopback: Bool
        /// The checked TLS material, when TLS is configured.
        public let tls: TLSMaterial?
    }

    /// Evaluates the bind for `configuration`.
    ///
    /// - Throws: ``GatewayError`` with code `bindRefused` or `tls` and a message that lists what is
    ///   missing and shows the `tailscale serve` alternative.
    public static func evaluate(
        _ configuration: HTTPSettings,
        resolver: HostResolver = .system,
        loadTLS: (HTTPSettings.TLSFiles) throws(GatewayError) -> TLSMaterial = { files throws(GatewayError) in
            try TLSMaterial(files: files)
        }
    ) throws(GatewayError) -> Decision {
        let host = configuration.host
        let addresses = try resolver.resolve(host)
        guard let first = addresses.first else {
            throw GatewayError(
                .bindRefused,
                "gateway.host \"\(PrintableText.excerpt(host, limit: 64))\" resolves to no address; use 127.0.0.1"
            )
        }
        let loopback = addresses.allSatisfy(\.isLoopback)

        // TLS, when configured, must load on any bind: a broken certificate is an error even on loopback.
        var tls: TLSMaterial?
        var tlsProblem: String?
        if let files = configuration.tls {
            do {
                tls = try loadTLS(files)
            } catch {
                if loopback { throw error }
                tlsProblem = error.message
            }
        }
        if loopback {
            return Decision(address: first, port: configuration.port, isLoopback: true, tls: tls)
        }

        var missing: [String] = []
        if configuration.tls == nil {
            missing.append("TLS: set gateway.tls.cert and gateway.tls.key to a PEM certificate and its key")
        } else if let tlsProblem {
            missing.append("working TLS: \(tlsProblem)")
        }
        if configuration.authMode == .none {
            missing.append("authentication: gateway.auth.mode is none; set it to password or token")
        }
        guard missing.isEmpty else {
            let target = first.isUnspecified ? "every interface" : "a non-loopback address"
            var message =
                "refusing to listen on \(PrintableText.excerpt(host, limit: 64)) port \(configuration.port): "
                + "it is \(target), which needs TLS and authentication. Missing:\n"
            for item in missing {
                message += "  - \(item)\n"
            }
            message +=
                "To reach Moat from your other devices without exposing it, keep the default loopback bind "
                + "and run:\n  tailscale serve --bg \(configuration.port == 0 ? HTTPSettings.defaultPort : configuration.port)\n"
                + "then add this machine's tailnet name to gateway.allowed_hosts (see Docs/Configuration.md)."
            throw GatewayError(.bindRefused, message)
        }
        return Decision(address: first, port: configuration.port, isLoopback: false, tls: tls)
    }
}
