import Foundation
import MoatTestSupport
import MoatVault
import Testing

/// A state directory written by the previous release (Tests/Fixtures/previous-release, made by its
/// `make-fixture.sh` with the `moat` named in its README) opens with this one: every later change to the
/// schema, the row MACs or the vault format must keep these files working.
@Suite(
    .serialized,
    .enabled(if: SystemdCredentials.installed() != nil, "systemd-creds is not installed (the fixture's seal needs it)")
)
struct PreviousReleaseTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/previous-release").path

    /// A private copy of the fixture's state (the modes Moat demands; git keeps only 0644) and the
    /// environment that unseals it: the fixture's own systemd credential host key, which systemd-creds
    /// reads only with mode 0400.
    static func copy(_ temp: TemporaryDirectory) throws -> (home: String, environment: [String: String]) {
        let home = temp.file("home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: false)
        TemporaryDirectory.chmod(home, 0o700)
        for name in ["moat.db", "vault.moat", "vault.seal"] {
            try FileManager.default.copyItem(atPath: fixture + "/home/" + name, toPath: home + "/" + name)
            TemporaryDirectory.chmod(home + "/" + name, 0o600)
        }
        let hostKey = temp.file("host-key.secret")
        try FileManager.default.copyItem(atPath: fixture + "/host-key.secret", toPath: hostKey)
        TemporaryDirectory.chmod(hostKey, 0o400)
        return (home, ["SYSTEMD_CREDENTIAL_SECRET": hostKey])
    }

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: fixture + "/" + name, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("the previous release's vault, secrets, trust change and audit checkpoint open with this one")
    func stateOpens() async throws {
        let temp = TemporaryDirectory()
        let (home, environment) = try Self.copy(temp)
        func moat(_ arguments: [String]) async throws -> MoatBinary.Result {
            try await MoatBinary.run(arguments, home: home, extraEnvironment: environment)
        }
        let list = try await moat(["vault", "list"])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("GITHUB_TOKEN") && list.stdout.contains("tools: http; hosts: api.github.com"))
        #expect(list.stdout.contains("SMTP_PASSWORD"))
        let trust = try await moat(["trust", "show"])
        #expect(trust.status == 0, "\(trust.stderr)")
        #expect(trust.stdout.contains("web          2 (suggest)  (change 1,"), "\(trust.stdout)")
        let history = try await moat(["trust", "history", "web"])
        #expect(history.stdout.contains("compatibility fixture"), "\(history.stdout)")
        let verify = try await moat(["audit", "verify", "--checkpoint", Self.fixture + "/checkpoint.txt"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("chain intact"))
        let tokens = try await moat(["token", "list"])
        #expect(tokens.status == 0 && tokens.stdout.contains("fixture"), "\(tokens.stderr)")
        // The doctor finds the database Moat's (no foreign schema) and the owner row in it.
        let doctor = try await moat(["doctor", "--json"])
        #expect(doctor.stdout.contains(#"{"check":"database","status":"pass""#), "\(doctor.stdout)")
        #expect(doctor.stdout.contains(#"{"check":"owner","status":"pass""#), "\(doctor.stdout)")
    }

    @Test("the previous release's API token still authenticates against the owner it made")
    func tokenAuthenticates() async throws {
        let temp = TemporaryDirectory()
        let (home, environment) = try Self.copy(temp)
        let token = try Self.text("api-token.txt")
        let server = try await RunningServer.start(arguments: [], home: home, extraEnvironment: environment)
        let port = try #require(server.port)
        func session(_ bearer: String) async throws -> RawHTTP.Response {
            try await RawHTTP.send(
                RawHTTP.request(
                    "GET", "/api/auth/session",
                    headers: [("Host", "127.0.0.1:\(port)"), ("Authorization", "Bearer \(bearer)")]),
                port: port)
        }
        let accepted = try await session(token)
        #expect(accepted.status == 200, "\(server.log)")
        #expect(accepted.json["via"] as? String == "token")
        #expect(accepted.json["username"] as? String == "owner")
        // The token's secret part changed in one character: the stored row is what authenticates, not luck.
        let last = token.last == "A" ? "B" : "A"
        #expect(try await session(String(token.dropLast()) + last).status == 401)
        await #expect(server.stop().status == 0)
    }
}
