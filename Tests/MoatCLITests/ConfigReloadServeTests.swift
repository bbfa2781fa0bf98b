import Foundation
import MoatTestSupport
import Testing

/// SIGHUP on a real `moat serve`: what can change live is put in force, what cannot is named, and a
/// file that does not load changes nothing while the server keeps answering.
@Suite(.serialized) struct ConfigReloadServeTests {
    static func write(_ text: String, to file: String) throws {
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
    }

    /// Waits until the server's log holds `count` lines containing `text`.
    static func waitForLog(_ running: RunningServer, _ text: String, count: Int = 1) async -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if running.log.components(separatedBy: text).count - 1 >= count { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test(
        "SIGHUP: a lowered agent.message_bytes holds at once, a bind change is listed as needing a restart; a broken file on SIGHUP keeps the old limit and the server keeps answering"
    )
    func reloadOnSIGHUP() async throws {
        let server = try await ScriptedModelServer.start(replies: [.text("first answer"), .text("second answer")])
        defer { Task { await server.stop() } }
        let home = try await ChatCommandTests.home(server)
        let providers = "providers:\n  local:\n    base_url: \(server.baseURL)\n    model: scripted\n"
        let config = home.file("config.yaml")
        try Self.write(providers + "agent:\n  message_bytes: 1000\n", to: config)
        let running = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(running.port)
        await waitForFile(home.file("moat.sock"), within: 60)
        let long = "a message of more than ten bytes"
        let before = try await MoatBinary.run(["chat", "--message", long], home: home.path)
        #expect(before.status == 0, "\(before.stderr)")

        try Self.write(
            providers + "agent:\n  message_bytes: 10\ngateway:\n  allowed_hosts: [studio.lan]\n", to: config)
        kill(running.process.processIdentifier, SIGHUP)
        #expect(await Self.waitForLog(running, "config reloaded"), "\(running.log)")
        let line = running.log.split(separator: "\n").first { $0.contains("config reloaded") }.map(String.init) ?? ""
        #expect(line.contains(#""applied":"agent""#), "\(line)")
        #expect(line.contains(#""needs_restart":"gateway.allowed_hosts""#), "\(line)")
        let refused = try await MoatBinary.run(["chat", "--message", long], home: home.path)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("longer than 10 bytes (agent.message_bytes)"), "\(refused.stderr)")

        // A broken file: the reload is refused, the limit of 10 stays, the server answers.
        try Self.write(providers + "agent:\n  message_bytes: 0\n", to: config)
        kill(running.process.processIdentifier, SIGHUP)
        #expect(await Self.waitForLog(running, "config reload refused"), "\(running.log)")
        #expect(running.log.contains("agent.message_bytes: 0 is out of range"))
        let short = try await MoatBinary.run(["chat", "--message", "hi"], home: home.path)
        #expect(short.status == 0 && short.stdout.hasPrefix("second answer"), "\(short.stderr)")
        let stillRefused = try await MoatBinary.run(["chat", "--message", long], home: home.path)
        #expect(stillRefused.stderr.contains("longer than 10 bytes"), "\(stillRefused.stderr)")
        #expect(try await OwnerCommandTests.send("GET", "/healthz", port: port).status == 200)
        #expect(running.process.isRunning)

        let (status, _) = await running.stop()
        #expect(status == 0)
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "60"], home: home.path)
        let reloads = audit.stdout.split(separator: "\n").filter { $0.contains("config.reload") }
        #expect(reloads.count == 2, "\(audit.stdout)")
        #expect(reloads.contains { $0.contains("failure") })
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
