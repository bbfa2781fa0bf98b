import Foundation
import MoatTestSupport
import Testing

/// README's walk-through against a real model: `moat serve`, then `moat chat --message "list the files in
/// my workspace"` with the provider pointed at llama-cpp-python serving SmolLM2-135M-Instruct
/// (`tests/model-server.sh`). It runs whenever that server's venv is present (`tests/model-server.sh
/// install`, cached outside the repository in `$MOAT_MODEL_SERVER_HOME` or `~/.cache/moat-model-server`)
/// and is skipped, saying so, when it is not: PyPI has only llama.cpp's source, which takes tens of
/// minutes to compile, too long for a fresh CI machine.
///
/// What a 135-million-parameter model does here is asserted as it is, not as one would like it: offered
/// the tools with `tool_choice: auto` it calls `list_files` (a real tool call, gated at the `files`
/// domain's level, run in the workspace, audited) but invents the path and calls again after every
/// result; the round budget ends the turn and says so.
@Suite(
    .serialized,
    .enabled(if: ModelServerVenv.present, "the model server's venv is absent: run tests/model-server.sh install"))
struct RealModelChatTests {
    @Test("moat serve + moat chat against a real model: its list_files call is gated, run in the workspace, audited")
    func walkThrough() async throws {
        let (modelServer, baseURL) = try await ModelServerVenv.startServer()
        defer { _ = modelServer.kill() }
        let home = try await ServedHome.copy()
        // Not streamed: llama-cpp-python answers a streamed request offering tools with an empty body.
        let config = """
            providers:
              local:
                base_url: \(baseURL)
                model: smollm2
                stream: false
                timeouts:
                  first_byte_seconds: 600
            agent:
              max_rounds_per_turn: 3
              turn_seconds: 1200
            """
        try config.write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        chmod(home.file("config.yaml"), 0o600)
        let workspace = home.file("workspace")
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        chmod(workspace, 0o700)
        try "milk, eggs\n".write(toFile: workspace + "/groceries.txt", atomically: true, encoding: .utf8)
        let trust = try await MoatBinary.run(
            ["trust", "set", "files", "act", "--force", "--reason", "the agent may read my workspace"], home: home.path)
        #expect(trust.status == 0, "\(trust.stderr)")

        let running = try await RunningServer.start(arguments: [], home: home.path)
        await waitForFile(home.file("moat.sock"), within: 60)
        // A 135M model on a CPU shared with other tests: minutes, not seconds, on a busy machine (a round
        // took over 120 s, the default agent.turn_seconds, in a parallel run of MoatCLITests).
        let chat = try await MoatBinary.run(
            ["chat", "--message", "list the files in my workspace"], home: home.path, timeout: 1200)
        #expect(chat.status == 0, "\(chat.stderr)")
        #expect(chat.stdout.contains("conversation owner-"), "\(chat.stdout)")

        // The model asked for a tool the gateway knows, the files domain's level (3, act and report) let
        // it run, and its result went back to the model: every step is in the audit log.
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "60"], home: home.path)
        let lines = audit.stdout.split(separator: "\n")
        let ran = lines.filter { $0.contains("  agent.tool.run  ") && $0.contains(#""decision":"ran"#) }
        #expect(!ran.isEmpty, "no tool ran:\n\(audit.stdout)\nchat: \(chat.stdout)")
        // Only what the files domain allows ran; a call to another domain (left at 1, inform) was described.
        #expect(ran.allSatisfy { $0.contains(#""domain":"files""#) && $0.contains(#""level":3"#) }, "\(ran)")
        #expect(lines.contains { $0.contains("  agent.tool.result  ") })
        // The round budget held: at most three model rounds.
        #expect(lines.filter { $0.contains("  agent.model  ") }.count <= 3)
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
        let (status, _) = await running.stop()
        #expect(status == 0)
    }
}

/// `tests/model-server.sh`'s venv and the server it runs.
enum ModelServerVenv {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var serverHome: String {
        let environment = ProcessInfo.processInfo.environment
        if let home = environment["MOAT_MODEL_SERVER_HOME"], !home.isEmpty { return home }
        let cache =
            environment["XDG_CACHE_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? (NSHomeDirectory() + "/.cache")
        return cache + "/moat-model-server"
    }

    static var present: Bool {
        FileManager.default.isExecutableFile(atPath: serverHome + "/venv/bin/python")
    }

    /// Starts `tests/model-server.sh serve PORT` and waits until it lists its model.
    static func startServer() async throws -> (WatchedProcess, String) {
        let port = try LoopbackPort.free()
        // Niced: a CPU model takes every core it can, and the in-process servers of the tests running beside
        // it (a full parallel run) must still answer within their limits.
        let server = try WatchedProcess(
            "/usr/bin/nice",
            [
                "-n", "15", "/usr/bin/env", "MOAT_MODEL_SERVER_HOME=\(serverHome)",
                repository.path + "/tests/model-server.sh", "serve", "\(port)",
            ])
        let baseURL = "http://127.0.0.1:\(port)/v1"
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline {
            let request = RawHTTP.request("GET", "/v1/models", headers: [("Host", "127.0.0.1:\(port)")])
            if let response = try? await RawHTTP.sendOffPool(request, port: port), response.status == 200 {
                return (server, baseURL)
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        let (_, stderr) = await server.kill()
        Issue.record("the model server did not answer within 180 s:\n\(stderr.suffix(2000))")
        throw CancellationError()
    }
}
