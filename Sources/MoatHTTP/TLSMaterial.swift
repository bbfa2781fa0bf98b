public import MoatCore
public import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A certificate chain and private key that were checked before the server uses them.
///
/// Checked at start-up rather than at the first handshake, so a broken setup is refused with a clear
/// message instead of a listener that fails every connection: both files readable PEM, the key
/// matching the leaf certificate, and the certificate inside its validity period.
public struct TLSMaterial: Sendable {
    /// The server TLS configuration: TLS 1.2 minimum, the checked chain and key.
    public let configuration: TLSConfiguration
    /// When the leaf certificate expires (seconds since 1970).
    public let notValidAfter: Int

    /// Loads and checks the files; `now` is injectable for expiry tests.
    public init(files: HTTPSettings.TLSFiles, now: Int? = nil) throws(GatewayError) {
        let now = now ?? Int(time(nil))
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(
                try Self.readPEM(files.certificatePath, what: "gateway.tls.cert"))
        } catch let error as GatewayError {
            throw error
        } catch {
            throw GatewayError(
                .tls,
                "gateway.tls.cert: \(files.certificatePath) holds no readable PEM certificate; "
                    + "expected a file starting with -----BEGIN CERTIFICATE-----"
            )
        }
        guard let leaf = chain.first else {
            throw GatewayError(.tls, "gateway.tls.cert: \(files.certificatePath) holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: try Self.readPEM(files.keyPath, what: "gateway.tls.key"), format: .pem)
        } catch let error as GatewayError {
            throw error
        } catch {
            // The key file's content is never echoed: it is a secret.
            throw GatewayError(
                .tls,
                "gateway.tls.key: \(files.keyPath) holds no readable, unencrypted PEM private key"
            )
        }
        let notAfter = Int(leaf.notValidAfter)
        let notBefore = Int(leaf.notValidBefore)
        if notAfter <= now {
            throw GatewayError(
                .tls,
                "gateway.tls.cert: the certificate in \(files.certificatePath) expired at \(Self.utc(notAfter)); "
                    + "renew it (for a tailnet name: tailscale cert NAME)"
            )
        }
        if notBefore > now {
            throw GatewayError(
                .tls,
                "gateway.tls.cert: the certificate in \(files.certificatePath) is not valid before "
                    + "\(Self.utc(notBefore)); check the machine's clock"
            )
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = Self.tls12CipherSuites
        // BoringSSL checks that the private key belongs to the leaf certificate when the context is built.
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw GatewayError(
                .tls,
                "gateway.tls.key: the private key in \(files.keyPath) does not match the certificate in "
                    + "\(files.certificatePath); use the key the certificate was issued for"
            )
        }
        self.configuration = configuration
        self.notValidAfter = notAfter
    }

    /// The TLS 1.2 suites offered: ECDHE key exchange (forward secrecy) with an AEAD cipher only, as in
    /// Mozilla's "intermediate" profile. No `TLS_RSA_*` (a stolen key would decrypt recorded traffic) and
    /// no CBC-SHA1. TLS 1.3 suites are fixed by BoringSSL and all qualify.
    static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    private static func readPEM(_ path: String, what: String) throws(GatewayError) -> [UInt8] {
        do {
            return try BoundedFile.read(path, limit: 1 << 20)
        } catch .open(let code), .read(let code) {
            throw GatewayError(.tls, "\(what): cannot read \(path): \(BoundedFile.describe(code))")
        } catch {
            throw GatewayError(.tls, "\(what): \(path) is larger than 1 MiB; it is not a PEM file")
        }
    }

    static func utc(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }
}
