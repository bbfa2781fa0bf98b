import Foundation
import MoatTestSupport
import Testing

/// `moat config check`: the real binary on real files, with the loader `moat serve` uses.
@Suite struct ConfigCheckTests {
    /// Runs `moat config check --config FILE` on `text` written as a private file.
    static func check(_ text: String) async throws -> MoatBinary.Result {
        let temp = TemporaryDirectory()
        let file = temp.file("moat.yaml")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        return try await MoatBinary.run(["config", "check", "--config", file], home: temp.file("home"))
    }

    @Test("a good file prints OK and exits 0")
    func goodFile() async throws {
        let result = try await Self.check(
            """
            gateway:
              port: 18790
            providers:
              local:
                base_url: http://127.0.0.1:11434/v1
                model: qwen2.5:1.5b
            agent:
              max_rounds_per_turn: 4
            """)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasPrefix("OK: "))
    }

    @Test("the shipped config.yaml.example passes")
    func example() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("config.yaml.example"), encoding: .utf8)
        let result = try await Self.check(text)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    }

    @Test("a typo'd key is named with its line and the key it was probably meant to be")
    func typo() async throws {
        let result = try await Self.check("gateway:\n  prot: 18790\n")
        #expect(result.status == 1)
        #expect(
            result.stdout.contains(":2: gateway.prot: unknown key (did you mean gateway.port?)"), "\(result.stdout)")
        #expect(result.stderr.contains("1 problem"))
    }

    @Test("an out-of-range value is named with what is allowed")
    func outOfRange() async throws {
        let result = try await Self.check("gateway:\n  port: 70000\n")
        #expect(result.status == 1)
        #expect(result.stdout.contains(":2: gateway.port: 70000 is out of range: must be a port from 1 to 65535"))
    }

    @Test("a route or agent.provider naming a provider that is not configured is refused with the fix")
    func badProviderReference() async throws {
        let route = try await Self.check("agent:\n  routes:\n    owner: [local, claude]\n")
        #expect(route.status == 1)
        #expect(route.stdout.contains("names provider claude, which is not under providers"), "\(route.stdout)")
        let provider = try await Self.check("agent:\n  provider: claude\n")
        #expect(provider.status == 1)
        #expect(provider.stdout.contains("agent.provider: names claude, which is not under providers: (local)"))
        #expect(provider.stdout.contains("add providers.claude"))
    }

    @Test("every problem of a file is listed, not only the first; each one also stops moat serve")
    func everyProblem() async throws {
        let text = """
            gateway:
              prot: 1
              port: 70000
            log:
              level: loud
            policy:
              approval_expiry_minutes: 99999
            agent:
              provider: nowhere
            """
        let result = try await Self.check(text)
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 5, "\(result.stdout)")
        #expect(lines[0].contains(":2: gateway.prot: unknown key"))
        #expect(lines[1].contains(":3: gateway.port:"))
        #expect(lines[2].contains(":5: log.level: \"loud\" is not allowed"))
        #expect(lines[3].contains(":7: policy.approval_expiry_minutes:"))
        #expect(lines[4].contains("agent.provider: names nowhere"))
        #expect(result.stderr.contains("5 problems"))
        // The same file stops serve (exit 78) at its first problem.
        let temp = TemporaryDirectory()
        let file = temp.file("moat.yaml")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        let serve = try await MoatBinary.run(["serve", "--config", file], home: temp.file("home"))
        #expect(serve.status == 78)
        #expect(serve.stderr.contains(":2: gateway.prot: unknown key"))
    }

    @Test("a file others may write, unparsable YAML and a bind refused by policy are problems too")
    func fileAndBindProblems() async throws {
        let temp = TemporaryDirectory()
        let file = temp.file("moat.yaml")
        try "gateway:\n  port: 18790\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o666)
        let writable = try await MoatBinary.run(["config", "check", "--config", file], home: temp.file("home"))
        #expect(writable.status == 1)
        #expect(writable.stdout.contains("another user could change it"), "\(writable.stdout)")
        let broken = try await Self.check("gateway: [\n")
        #expect(broken.status == 1)
        #expect(broken.stdout.contains("not valid YAML"))
        let exposed = try await Self.check("gateway:\n  host: 0.0.0.0\n")
        #expect(exposed.status == 1)
        #expect(exposed.stdout.contains("TLS") || exposed.stdout.contains("tls"), "\(exposed.stdout)")
    }
}
