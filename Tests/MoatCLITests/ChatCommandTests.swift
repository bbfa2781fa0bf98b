import Foundation
import MoatTestSupport
import Testing

/// `moat chat` through the real binary against a model server on loopback (the scripted one, which
/// speaks the OpenAI wire format byte for byte): the model's tool calls are gated by trust, run by the
/// real tools, and the reply comes back.
@Suite(.serialized) struct ChatCommandTests {
    /// A served home whose `local` provider is `server`, with one file in its workspace.
    static func home(_ server: ScriptedModelServer) async throws -> TemporaryDirectory {
        try await home(baseURL: server.baseURL)
    }

    /// A served home whose `local` provider is at `baseURL`, with one file in its workspace.
    static func home(baseURL: String, providerLines: String = "") async throws -> TemporaryDirectory {
        let home = try await ServedHome.copy()
        let config = """
            providers:
              local:
                base_url: \(baseURL)
                model: scripted
            """ + providerLines
        try config.write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        chmod(home.file("config.yaml"), 0o600)
        let workspace = home.file("workspace")
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        chmod(workspace, 0o700)
        try "groceries: milk, eggs\n".write(toFile: workspace + "/notes.txt", atomically: true, encoding: .utf8)
        return home
    }

    @Test("moat chat: a trusted list_files call runs in the workspace and the model's reply is printed")
    func listFilesRuns() async throws {
        let server = try await ScriptedModelServer.start(replies: [
            .toolCall("list_files", #"{"path":"."}"#),
            .text("Your workspace holds notes.txt."),
        ])
        defer { Task { await server.stop() } }
        let home = try await Self.home(server)
        let trust = try await MoatBinary.run(
            ["trust", "set", "files", "act", "--force", "--reason", "my own workspace"], home: home.path)
        #expect(trust.status == 0, "\(trust.stderr)")
        let chat = try await MoatBinary.run(["chat", "--message", "list the files in my workspace"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        #expect(chat.stdout.hasPrefix("Your workspace holds notes.txt.\n"))
        #expect(chat.stdout.contains("conversation owner-"))
        // The second model round carried the real tool's result: the file the workspace holds.
        let requests = server.requests
        #expect(requests.count == 2)
        #expect(requests.last?.body.contains("notes.txt") == true)
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "40"], home: home.path)
        #expect(audit.stdout.contains("agent."))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test("moat chat: at the default trust a call is held for approval; approving runs exactly it, once")
    func approvalRunsTheHeldCall() async throws {
        let server = try await ScriptedModelServer.start(replies: [
            .toolCall("read_file", #"{"path":"notes.txt"}"#),
            .text("I asked to read notes.txt; it waits for your approval."),
            .text("notes.txt says: groceries."),
        ])
        defer { Task { await server.stop() } }
        let home = try await Self.home(server)
        #expect(
            try await MoatBinary.run(["trust", "set", "files", "suggest", "--reason", "ask me"], home: home.path).status
                == 0)
        let chat = try await MoatBinary.run(["chat", "--message", "what is in notes.txt?"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        let pendingLine = try #require(chat.stdout.split(separator: "\n").first { $0.hasPrefix("pending approval ") })
        let id = String(pendingLine.dropFirst("pending approval ".count).prefix { $0 != ":" })
        // The file was not read: the model's second round saw no file content.
        #expect(server.requests.allSatisfy { !$0.body.contains("groceries") })
        let approve = try await MoatBinary.run(["approvals", "approve", id], home: home.path)
        #expect(approve.status == 0, "\(approve.stderr)")
        #expect(approve.stdout.hasPrefix("approved \(id)\nnotes.txt says: groceries.\n"))
        #expect(server.requests.last?.body.contains("groceries") == true)
        // An approval runs once.
        let again = try await MoatBinary.run(["approvals", "approve", id], home: home.path)
        #expect(again.status != 0)
    }

    @Test("with moat serve running, moat chat goes through the admin socket; an unreachable model server is named")
    func throughTheServer() async throws {
        let server = try await ScriptedModelServer.start(replies: [.text("Hello from the model.")])
        // A bounded first byte: a request that races the server's stop on a kept connection is named too,
        // within 15 s rather than the default 120 s (longer than `moat chat` is given here).
        let home = try await Self.home(
            baseURL: server.baseURL, providerLines: "\n    timeouts:\n      first_byte_seconds: 15\n")
        let running = try await RunningServer.start(arguments: [], home: home.path)
        await waitForFile(home.file("moat.sock"), within: 60)
        let chat = try await MoatBinary.run(["chat", "--message", "hello"], home: home.path)
        #expect(chat.status == 0 && chat.stdout.hasPrefix("Hello from the model.\n"), "\(chat.stderr)")
        await server.stop()
        let down = try await MoatBinary.run(["chat", "--message", "hello again"], home: home.path)
        #expect(down.status != 0)
        #expect(down.stderr.contains("127.0.0.1:\(server.port)"), "\(down.stderr)")
        let (status, log) = await running.stop()
        #expect(status == 0)
        #expect(log.contains("\"op\":\"chat\""))
    }

    @Test(
        "an outage: the owner is told the model server is not running and how to start it, and the next chat in the conversation still has the message"
    )
    func outageLosesNothing() async throws {
        let stopped = try await ScriptedModelServer.start()
        let port = stopped.port
        await stopped.stop()
        let home = try await Self.home(baseURL: "http://127.0.0.1:\(port)/v1")
        let running = try await RunningServer.start(arguments: [], home: home.path)
        await waitForFile(home.file("moat.sock"), within: 60)
        let down = try await MoatBinary.run(["chat", "--message", "remember the number 4711"], home: home.path)
        #expect(down.status != 0)
        #expect(
            down.stderr.contains("the model server at http://127.0.0.1:\(port) is not running: start it"),
            "\(down.stderr)")
        let hint = try #require(down.stderr.range(of: "moat chat --conversation "), "\(down.stderr)")
        let conversation = String(down.stderr[hint.upperBound...].prefix { $0 != "`" && !$0.isWhitespace })
        #expect(conversation.hasPrefix("owner-"))
        // The server comes back on the same port; the conversation goes on with the earlier message in it.
        let server = try await ScriptedModelServer.start(replies: [.text("You said 4711.")], port: port)
        defer { Task { await server.stop() } }
        let back = try await MoatBinary.run(
            ["chat", "--conversation", conversation, "--message", "which number did I say?"], home: home.path)
        #expect(back.status == 0 && back.stdout.hasPrefix("You said 4711.\n"), "\(back.stderr)")
        let sent = try #require(server.requests.last)
        let messages = try #require(sent.json["messages"] as? [[String: Any]])
        #expect(
            messages.compactMap { $0["content"] as? String }.filter { !$0.isEmpty }.suffix(2)
                == ["remember the number 4711", "which number did I say?"])
        #expect(messages.first?["role"] as? String == "system")
        let (status, _) = await running.stop()
        #expect(status == 0)
    }

    @Test(
        "moat chat: malformed JSON in a streamed tool-call delta fails the turn naming the provider, and nothing runs")
    func malformedToolDeltaRunsNothing() async throws {
        let canary = "sk-moat-canary-cli-0815"
        let server = try await ScriptedModelServer.start(replies: [
            ScriptedModelServer.Reply(
                toolCalls: [.init("write_file", #"{"path":"pwned.txt","content":"\#(canary)"}"#)],
                fault: .malformedToolDelta)
        ])
        defer { Task { await server.stop() } }
        let home = try await Self.home(server)
        let trust = try await MoatBinary.run(
            ["trust", "set", "files", "act", "--force", "--reason", "my own workspace"], home: home.path)
        #expect(trust.status == 0, "\(trust.stderr)")
        let chat = try await MoatBinary.run(["chat", "--message", "write the file"], home: home.path)
        #expect(chat.status != 0)
        #expect(chat.stderr.contains("(provider local)") && chat.stderr.contains("not valid JSON"), "\(chat.stderr)")
        #expect(!chat.stderr.contains(canary) && !chat.stdout.contains(canary))
        #expect(!FileManager.default.fileExists(atPath: home.file("workspace") + "/pwned.txt"), "nothing ran")
        #expect(server.requests.count == 1, "a round whose answer was read is not sent again")
    }
}
