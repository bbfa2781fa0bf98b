import Foundation
import MoatTestSupport
import Testing

/// `moat doctor --fix` through the real binary on a real served home: what it repairs, that it asks
/// (and without a terminal or --yes changes nothing), and that each repair is in the audit log.
@Suite(.serialized, .tags(.slow)) struct DoctorFixTests {
    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? nil
    }

    static func doctor(_ home: TemporaryDirectory, _ extra: [String] = []) async throws -> MoatBinary.Result {
        try await MoatBinary.run(["doctor"] + extra, home: home.path)
    }

    /// Leaves a socket file nobody listens on (a server killed before it could remove it).
    static func staleSocket(at path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(fd)
        try #require(bound == 0)
    }

    @Test(
        "broken modes: doctor fails; --fix without a terminal or --yes changes nothing; --fix --yes repairs and records it"
    )
    func modes() async throws {
        let home = try await ServedHome.copy()
        let database = home.file("moat.db")
        #expect(chmod(database, 0o644) == 0 && chmod(home.path, 0o755) == 0)
        let red = try await Self.doctor(home)
        #expect(red.status == 1)
        #expect(red.stdout.contains("fail  file modes"), "\(red.stdout)")

        let unconfirmed = try await Self.doctor(home, ["--fix"])
        #expect(unconfirmed.status == 1)
        #expect(unconfirmed.stderr.contains("not fixed: chmod 600 \(database) (no terminal to ask on; pass --yes)"))
        #expect(Self.mode(database) == 0o644 && Self.mode(home.path) == 0o755)

        let fixed = try await Self.doctor(home, ["--fix", "--yes", "--json"])
        #expect(fixed.status == 0, "\(fixed.stdout)\(fixed.stderr)")
        #expect(
            fixed.stderr.contains("fixed: chmod 600 \(database)")
                && fixed.stderr.contains("fixed: chmod 700 \(home.path)"))
        #expect(fixed.stdout.contains(#""fixed":["chmod 700 "#) || fixed.stdout.contains(#""fixed":["chmod 600 "#))
        #expect(Self.mode(database) == 0o600 && Self.mode(home.path) == 0o700)

        let green = try await Self.doctor(home, ["--json"])
        #expect(green.status == 0)
        #expect(green.stdout.contains(#"{"check":"file modes","status":"pass","message":"#))
        // Without --fix the JSON has the fields it always had, and no new one.
        #expect(!green.stdout.contains(#""fixed""#))
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "10"], home: home.path)
        #expect(audit.stdout.components(separatedBy: "doctor.fix").count - 1 == 2, "\(audit.stdout)")
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test(
        "a server killed without its shutdown checkpoint: doctor warns of the stale socket and the uncovered entries, --fix --yes repairs both"
    )
    func killedServer() async throws {
        let home = try await ServedHome.copy()
        let server = try await RunningServer.start(arguments: [], home: home.path)
        // A live server's socket and its open log are not problems and are never touched.
        let running = try await Self.doctor(home, ["--fix", "--yes"])
        #expect(
            !running.stdout.contains("admin socket") && !running.stdout.contains("warn  audit"), "\(running.stdout)")
        #expect(!running.stderr.contains("fixed:"))
        _ = await server.stop(signal: SIGKILL)
        #expect(FileManager.default.fileExists(atPath: home.file("moat.sock")))

        let warned = try await Self.doctor(home)
        #expect(warned.stdout.contains("warn  admin socket"), "\(warned.stdout)")
        #expect(warned.stdout.contains("not covered by a signed checkpoint"), "\(warned.stdout)")
        let fixed = try await Self.doctor(home, ["--fix", "--yes"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(
            fixed.stderr.contains("fixed: remove the stale admin socket")
                || fixed.stderr.contains("fixed: removed the stale admin socket"))
        #expect(fixed.stderr.contains("fixed: sign a checkpoint of the audit log's head"), "\(fixed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: home.file("moat.sock")))
        let after = try await Self.doctor(home)
        #expect(
            !after.stdout.contains("warn  admin socket") && !after.stdout.contains("not covered"), "\(after.stdout)")
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test("a socket file nobody listens on is removed by --fix --yes and nothing else is touched")
    func staleSocketOnly() async throws {
        let home = try await ServedHome.copy()
        try Self.staleSocket(at: home.file("moat.sock"))
        await #expect(try Self.doctor(home).stdout.contains("warn  admin socket"))
        let declined = try await Self.doctor(home, ["--fix"])
        #expect(declined.stderr.contains("not fixed: remove the stale admin socket"))
        #expect(FileManager.default.fileExists(atPath: home.file("moat.sock")))
        let fixed = try await Self.doctor(home, ["--fix", "--yes"])
        #expect(fixed.stdout.contains("pass  admin socket"), "\(fixed.stdout)")
        #expect(!FileManager.default.fileExists(atPath: home.file("moat.sock")))
    }

    @Test(
        "an unsealed vault is sealed by --fix --yes with the recovery key file; without it and without a terminal it is left unsealed"
    )
    func unsealedVault() async throws {
        let home = try await ServedHome.copy()
        try FileManager.default.removeItem(atPath: home.file("vault.seal"))
        let key = try String(contentsOfFile: home.file("recovery-key.txt"), encoding: .utf8)
        try FileManager.default.removeItem(atPath: home.file("recovery-key.txt"))
        let refused = try await Self.doctor(home, ["--fix", "--yes"])
        #expect(refused.stderr.contains("not fixed: seal the vault"), "\(refused.stderr)")
        #expect(refused.stderr.contains("no terminal to ask on"))
        #expect(!FileManager.default.fileExists(atPath: home.file("vault.seal")))

        try home.write("recovery-key.txt", key)
        let fixed = try await Self.doctor(home, ["--fix", "--yes"])
        #expect(fixed.stderr.contains("fixed: sealed the vault"), "\(fixed.stderr)")
        #expect(!(fixed.stdout + fixed.stderr).contains(key.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(try await MoatBinary.run(["vault", "unseal-check"], home: home.path).status == 0)
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "5"], home: home.path)
        #expect(audit.stdout.contains("vault.seal") && audit.stdout.contains("doctor.fix"), "\(audit.stdout)")
    }
}
