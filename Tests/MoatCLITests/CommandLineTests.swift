import Foundation
import MoatTestSupport
import Testing

@Suite struct CommandLineTests {
    @Test("--version prints the version")
    func version() async throws {
        let result = try await MoatBinary.run(["--version"], home: nil)
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }

    @Test("--help lists every subcommand with a one-line summary")
    func help() async throws {
        let result = try await MoatBinary.run(["--help"], home: nil)
        #expect(result.status == 0)
        #expect(result.stdout.contains("serve"))
        #expect(result.stdout.contains("Run the gateway"))
        #expect(result.stdout.contains("doctor"))
        #expect(result.stdout.contains("Check the security posture"))
    }

    @Test("shell completions are generated for bash")
    func completions() async throws {
        let result = try await MoatBinary.run(["--generate-completion-script", "bash"], home: nil)
        #expect(result.status == 0)
        #expect(result.stdout.contains("complete"))
        #expect(result.stdout.contains("serve"))
    }

    @Test("doctor prints pass/warn/fail lines, JSON on request, and exits 1 when a check fails")
    func doctor() async throws {
        let temp = TemporaryDirectory()
        var result = try await MoatBinary.run(["doctor"], home: temp.path)
        #expect(result.status == 0)
        #expect(result.stdout.contains("pass  bind"))

        TemporaryDirectory.chmod(temp.path, 0o777)
        result = try await MoatBinary.run(["doctor"], home: temp.path)
        #expect(result.status == 1)
        #expect(result.stdout.contains("fail  file modes"))
        #expect(result.stdout.contains("fix: chmod 0700"))

        result = try await MoatBinary.run(["doctor", "--json"], home: temp.path)
        #expect(result.status == 1)
        let parsed = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        #expect(parsed?.contains { $0["status"] as? String == "fail" } == true)
    }

    @Test("an invalid flag value is a usage error that says what was wrong")
    func badFlag() async throws {
        let result = try await MoatBinary.run(["serve", "--port", "seventy"], home: nil)
        #expect(result.status == 64)
        #expect(result.stderr.contains("--port"))
        let format = try await MoatBinary.run(["serve", "--log-format", "xml"], home: nil)
        #expect(format.status == 64)
    }
}
