public import Foundation
import MoatCore

/// Self-signed certificates made with the `openssl` command for TLS tests.
public enum TestCertificates {
    /// Writes `name.crt` and `name.key` (EC P-256, or RSA 2048 when `rsa`; self-signed for
    /// localhost/127.0.0.1) into `directory`.
    @discardableResult
    public static func make(
        in directory: TemporaryDirectory, name: String = "server", days: Int = 30, rsa: Bool = false
    ) throws -> (cert: String, key: String) {
        let cert = directory.file("\(name).crt")
        let key = directory.file("\(name).key")
        let process = try ChildProcess(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", rsa ? "rsa:2048" : "ec", "-pkeyopt",
                rsa ? "rsa_keygen_bits:2048" : "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", cert, "-days", "\(days)", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RawHTTPError("openssl req failed with status \(process.terminationStatus)")
        }
        return (cert, key)
    }

    /// Makes the pair like the synchronous form, waiting for `openssl` on a thread of its own.
    @discardableResult
    public static func make(
        in directory: TemporaryDirectory, name: String = "server", days: Int = 30, rsa: Bool = false
    ) async throws -> (cert: String, key: String) {
        try await offCooperativePool { try make(in: directory, name: name, days: days, rsa: rsa) }
    }
}
