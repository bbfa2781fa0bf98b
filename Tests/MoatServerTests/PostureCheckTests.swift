import Foundation
import MoatAdmin
import MoatApp
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatStore
import MoatTestSupport
import Testing

@Suite struct PostureCheckTests {
    func options(_ temp: TemporaryDirectory) -> GatewayServer.Options {
        GatewayServer.Options(home: temp.path, environment: [:])
    }

    @Test("a fresh home passes every check without creating anything")
    func freshHome() throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let findings = PostureCheck.run(GatewayServer.Options(home: home, environment: [:]))
        #expect(findings.allSatisfy { $0.status == .pass }, "\(findings)")
        #expect(Set(findings.map(\.check)) == ["config", "bind", "tls", "auth", "file modes", "database", "vault"])
        #expect(FileModes.mode(of: home) == nil)
    }

    @Test("unsafe modes, a bad config and auth none are reported with fixes")
    func problems() throws {
        let temp = TemporaryDirectory()
        TemporaryDirectory.chmod(temp.path, 0o755)
        try temp.write("moat.db", "junk", mode: 0o644)
        var findings = PostureCheck.run(options(temp))
        #expect(
            findings.contains { $0.check == "file modes" && $0.status == .fail && $0.fix == "chmod 0700 \(temp.path)" })
        #expect(findings.contains { $0.check == "database" && $0.status == .fail })

        // There is no unauthenticated mode: the file is refused.
        try temp.write("config.yaml", "gateway:\n  auth:\n    mode: none\n")
        findings = PostureCheck.run(options(temp))
        #expect(findings.contains { $0.check == "config" && $0.status == .fail && $0.message.contains("not trusted") })

        try temp.write("config.yaml", "gateway:\n  prot: 1\n")
        findings = PostureCheck.run(options(temp))
        #expect(findings.first { $0.check == "config" }?.status == .fail)
    }

    @Test("a certificate close to expiry is a warning; an unsafe bind is a failure")
    func tlsAndBind() async throws {
        let temp = TemporaryDirectory()
        let (cert, key) = try await TestCertificates.make(in: temp, days: 10)
        try temp.write("config.yaml", "gateway:\n  tls:\n    cert: \(cert)\n    key: \(key)\n")
        var findings = PostureCheck.run(options(temp))
        #expect(findings.first { $0.check == "tls" }?.status == .warn)

        try temp.write("config.yaml", "gateway:\n  host: 0.0.0.0\n")
        findings = PostureCheck.run(options(temp))
        #expect(findings.first { $0.check == "bind" }?.status == .fail)
        let json = PostureCheck.json(findings)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]
        #expect(parsed?.count == findings.count)
    }
}
