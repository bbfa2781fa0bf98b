import Foundation
import MoatTestSupport
import Testing

/// Routing through the real `moat serve`: a route whose first provider is down (a closed port) falls
/// back to the second, the owner sees which answered, a chosen provider is validated, and `moat usage`
/// shows the limit beside the use.
@Suite(.serialized) struct RoutingServeTests {
    @Test("moat serve: a dead local provider falls back to the next; moat chat shows which answered")
    func fallbackThroughServe() async throws {
        // A bound socket that never listens, kept open: a port freed by stopping a server could be taken
        // by another test's server at once, and the "dead" provider would then hang on its answer.
        let deadURL = "http://127.0.0.1:\(try LoopbackPort.bound().port)/v1"
        let live = try await ScriptedModelServer.start(replies: [
            .text("Answered by the second.", usage: .init(prompt: 40, completion: 10)),
            .text("Chosen directly."),
        ])
        defer { Task { await live.stop() } }
        let home = try await ServedHome.copy()
        let config = """
            providers:
              dead:
                base_url: \(deadURL)
                model: scripted
                retries: {max_attempts: 1}
              live:
                base_url: \(live.baseURL)
                model: scripted
                daily_token_limit: 100000
            agent:
              provider: dead
              routes:
                owner: [dead, live]
            """
        try config.write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        chmod(home.file("config.yaml"), 0o600)
        let running = try await RunningServer.start(arguments: [], home: home.path)
        await waitForFile(home.file("moat.sock"), within: 60)

        let chat = try await MoatBinary.run(["chat", "--message", "hello", "--json"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        let turn = try #require(
            try JSONSerialization.jsonObject(with: Data(chat.stdout.utf8)) as? [String: Any], "\(chat.stdout)")
        #expect(turn["reply"] as? String == "Answered by the second.")
        #expect(turn["provider"] as? String == "live")
        #expect(turn["fallbacks"] as? [String] == ["dead"])

        let chosen = try await MoatBinary.run(["chat", "--provider", "live", "--message", "again"], home: home.path)
        #expect(chosen.status == 0, "\(chosen.stderr)")
        #expect(chosen.stdout.contains("answered by provider live\n"), "\(chosen.stdout)")

        let unknown = try await MoatBinary.run(["chat", "--provider", "nosuch", "--message", "x"], home: home.path)
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("nosuch") && unknown.stderr.contains("dead, live"), "\(unknown.stderr)")
        #expect(live.requests.count == 2)

        let usage = try await MoatBinary.run(["usage"], home: home.path)
        #expect(usage.status == 0, "\(usage.stderr)")
        #expect(
            usage.stdout.contains("LIMIT/DAY") && usage.stdout.contains("daily_token_limit 100000"), "\(usage.stdout)")
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "60"], home: home.path)
        #expect(audit.stdout.contains("agent.model.fallback"), "\(audit.stdout)")
        let (status, _) = await running.stop()
        #expect(status == 0)
    }

    @Test("moat serve refuses a route naming a provider that is not configured, naming the key and the fix")
    func unknownRouteProvider() async throws {
        let home = try await ServedHome.copy()
        try "agent:\n  routes:\n    contacts: [local, claude]\n".write(
            toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        chmod(home.file("config.yaml"), 0o600)
        let check = try await MoatBinary.run(["usage"], home: home.path)
        #expect(check.status != 0)
        #expect(
            check.stderr.contains("agent.routes.contacts") && check.stderr.contains("add providers.claude"),
            "\(check.stderr)")
    }
}
