import Foundation
import MoatAdmin
import MoatApp
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatTestSupport
import Testing

/// The matrix of issue 2: {loopback and non-loopback hosts} × {TLS states} × {auth modes}.
@Suite struct BindPolicyTests {
    enum TLSState: String, CaseIterable {
        case none, valid, missingFile, expired, wrongKey
    }

    static let hosts: [(String, Bool)] = [
        ("127.0.0.1", true), ("::1", true), ("localhost", true),
        ("0.0.0.0", false), ("::", false), ("192.168.1.20", false), ("lan-and-loopback.test", false),
    ]

    /// A resolver that knows the test names without DNS; "lan-and-loopback.test" mimics a host name
    /// that resolves to loopback *and* a LAN address.
    static let resolver = HostResolver { (host: String) throws(GatewayError) -> [IPAddress] in
        switch host {
        case "localhost": return [IPAddress("127.0.0.1")!, IPAddress("::1")!]
        case "lan-and-loopback.test": return [IPAddress("127.0.0.1")!, IPAddress("10.1.2.3")!]
        default:
            guard let literal = IPAddress(host) else { throw GatewayError(.bindRefused, "cannot resolve \(host)") }
            return [literal]
        }
    }

    final class Fixture: Sendable {
        let temp = TemporaryDirectory()
        let valid: (cert: String, key: String)
        let other: (cert: String, key: String)

        init() async throws {
            valid = try await TestCertificates.make(in: temp, name: "valid", days: 30)
            other = try await TestCertificates.make(in: temp, name: "other", days: 30)
        }

        func files(_ state: TLSState) -> GatewayConfiguration.TLSFiles? {
            switch state {
            case .none: nil
            case .valid, .expired: .init(certificatePath: valid.cert, keyPath: valid.key)
            case .missingFile: .init(certificatePath: temp.file("absent.crt"), keyPath: valid.key)
            case .wrongKey: .init(certificatePath: valid.cert, keyPath: other.key)
            }
        }
    }

    @Test("exactly the safe combinations of host, TLS and auth mode start")
    func matrix() async throws {
        let fixture = try await Fixture()
        var started = 0
        for (host, isLoopback) in Self.hosts {
            for tlsState in TLSState.allCases {
                for mode in HTTPSettings.AuthMode.allCases {
                    var config = HTTPSettings()
                    config.host = host
                    config.tls = fixture.files(tlsState)
                    config.authMode = mode
                    // "expired" is the valid certificate seen from 60 days in the future.
                    let now = tlsState == .expired ? Int(time(nil)) + 60 * 86400 : nil
                    let tlsWorks = tlsState == .none || tlsState == .valid
                    let shouldStart =
                        isLoopback ? tlsWorks : (tlsState == .valid && mode != .none)
                    let outcome = Result { () throws(GatewayError) in
                        try BindPolicy.evaluate(config, resolver: Self.resolver) { files throws(GatewayError) in
                            try TLSMaterial(files: files, now: now)
                        }
                    }
                    switch outcome {
                    case .success(let decision):
                        #expect(shouldStart, "\(host) tls=\(tlsState) auth=\(mode) started but must not")
                        #expect(decision.isLoopback == isLoopback)
                        #expect(IPAddress(host).map { $0 == decision.address } ?? true)
                        started += 1
                    case .failure(let error):
                        #expect(!shouldStart, "\(host) tls=\(tlsState) auth=\(mode) refused: \(error.message)")
                        #expect(error.exitCode == 78)
                    }
                }
            }
        }
        // 3 loopback hosts × 2 working TLS states × 3 modes, plus 4 non-loopback hosts × valid TLS × 2 modes.
        #expect(started == 3 * 2 * 3 + 4 * 2)
    }

    @Test("the refusal names what is missing and shows the tailscale serve alternative")
    func refusalMessage() async throws {
        var config = HTTPSettings()
        config.host = "0.0.0.0"
        config.authMode = .none
        let error = #expect(throws: GatewayError.self) {
            try BindPolicy.evaluate(config, resolver: Self.resolver)
        }
        let message = error?.message ?? ""
        #expect(message.contains("refusing to listen on 0.0.0.0 port 18789"))
        #expect(message.contains("TLS: set gateway.tls.cert and gateway.tls.key"))
        #expect(message.contains("authentication: gateway.auth.mode is none"))
        #expect(message.contains("tailscale serve --bg 18789"))
    }

    @Test("auth mode none is refused off loopback even with valid TLS")
    func noneWithTLS() async throws {
        let fixture = try await Fixture()
        var config = HTTPSettings()
        config.host = "192.168.1.20"
        config.tls = fixture.files(.valid)
        config.authMode = .none
        let error = #expect(throws: GatewayError.self) { try BindPolicy.evaluate(config, resolver: Self.resolver) }
        #expect(error?.message.contains("gateway.auth.mode is none") == true)
        #expect(error?.message.contains("TLS:") == false)
    }

    @Test("an unresolvable host name is refused, never bound")
    func unresolvable() {
        var config = HTTPSettings()
        config.host = "no-such-host.invalid"
        #expect(throws: GatewayError.self) { try BindPolicy.evaluate(config, resolver: Self.resolver) }
    }

    @Test("TLS problems say what is wrong with which file")
    func tlsMessages() async throws {
        let fixture = try await Fixture()
        let far = Int(time(nil)) + 400 * 86400
        let expired = #expect(throws: GatewayError.self) {
            try TLSMaterial(files: fixture.files(.valid)!, now: far)
        }
        #expect(expired?.message.contains("expired at") == true)
        let early = #expect(throws: GatewayError.self) {
            try TLSMaterial(files: fixture.files(.valid)!, now: 0)
        }
        #expect(early?.message.contains("check the machine's clock") == true)
        let mismatch = #expect(throws: GatewayError.self) { try TLSMaterial(files: fixture.files(.wrongKey)!) }
        #expect(mismatch?.message.contains("does not match the certificate") == true)
        let missing = #expect(throws: GatewayError.self) { try TLSMaterial(files: fixture.files(.missingFile)!) }
        #expect(missing?.message.contains("No such file or directory") == true)
        let notPEM = try fixture.temp.write("garbage.crt", "hello")
        let garbage = #expect(throws: GatewayError.self) {
            try TLSMaterial(files: .init(certificatePath: notPEM, keyPath: fixture.valid.key))
        }
        #expect(garbage?.message.contains("no readable PEM certificate") == true)
        // The key's bytes never appear in an error about the key.
        let keyText = try String(contentsOfFile: fixture.other.key, encoding: .utf8)
        let body = keyText.split(separator: "\n")[1]
        #expect(mismatch?.message.contains(body) == false)
        let swapped = #expect(throws: GatewayError.self) {
            try TLSMaterial(files: .init(certificatePath: fixture.valid.cert, keyPath: fixture.valid.cert))
        }
        #expect(swapped?.message.contains("no readable, unencrypted PEM private key") == true)
    }
}
