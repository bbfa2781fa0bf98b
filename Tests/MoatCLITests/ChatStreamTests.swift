import Foundation
import MoatTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The live stream of a turn where the owner meets it: the interactive `moat chat` through the admin
/// socket of a real `moat serve`, and `POST /api/chat` with `Accept: text/event-stream` over a real
/// socket, against the scripted model server streaming its answers in small pieces.
@Suite(.serialized) struct ChatStreamTests {
    static let canary = "moat-canary-5f2e9a71c3"

    /// A model server that streams its text two or three characters at a time.
    static func model(_ replies: [ScriptedModelServer.Reply], pieces: Int = 2) async throws -> ScriptedModelServer {
        var options = ScriptedModelServer.Options()
        options.textPieceLength = pieces
        return try await ScriptedModelServer.start(replies: replies, options: options)
    }

    static func trust(_ level: String, home: String) async throws {
        let set = try await MoatBinary.run(["trust", "set", "files", level, "--force", "--reason", "test"], home: home)
        try #require(set.status == 0, "\(set.stderr)")
    }

    /// An owner, a `write` and a `read` API token, and the canary in the vault (set up before the server).
    static func owner(_ home: String) async throws -> (write: String, read: String) {
        let setup = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home, stdin: "a long owner passphrase\n")
        try #require(setup.status == 0, "\(setup.stderr)")
        var tokens: [String] = []
        for scope in ["write", "read"] {
            let created = try await MoatBinary.run(["token", "create", scope, "--scope", scope], home: home)
            try #require(created.status == 0, "\(created.stderr)")
            tokens.append(created.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try canary.write(toFile: home + "/canary.txt", atomically: true, encoding: .utf8)
        chmod(home + "/canary.txt", 0o600)
        let added = try await MoatBinary.run(
            ["vault", "add", "CANARY", "--from-file", home + "/canary.txt"], home: home)
        try #require(added.status == 0, "\(added.stderr)")
        return (tokens[0], tokens[1])
    }

    static func chatRequest(_ body: String, port: Int, token: String, stream: Bool = true) -> String {
        var headers = [("Host", "127.0.0.1:\(port)"), ("Authorization", "Bearer \(token)")]
        if stream { headers.append(("Accept", "text/event-stream")) }
        return RawHTTP.request("POST", "/api/chat", headers: headers, body: body)
    }

    @Test(
        "interactive moat chat: each line is one streamed turn of the same conversation; a tool call and a held approval show as they happen"
    )
    func interactive() async throws {
        let model = try await Self.model([
            .text("Hello, owner: ask me anything."),
            .toolCall("read_file", #"{"path":"notes.txt"}"#),
            .text("Reading notes.txt waits for your approval."),
        ])
        defer { Task { await model.stop() } }
        let home = try await ChatCommandTests.home(model)
        try await Self.trust("suggest", home: home.path)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let chat = try await MoatBinary.run(
            ["chat"], home: home.path, stdin: "hello\n\nwhat is in notes.txt?\n/quit\nnever sent\n", timeout: 120)
        #expect(chat.status == 0, "\(chat.stderr)")
        let out = chat.stdout
        // In the order they happened: the first reply, the call, its decision, the held approval with the
        // command that decides it, then the second reply.
        let marks = [
            "Hello, owner: ask me anything.\n", #"tool call 1: read_file [files] {"path":"notes.txt"}"#,
            "  decided: level 2: read_file in files is held for the owner's approval", "pending approval ",
            "  decide with: moat approvals approve ", "Reading notes.txt waits for your approval.\n",
        ]
        let positions = marks.map { out.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil }, "\(out)")
        let found = positions.compactMap { $0 }
        #expect(found == found.sorted(), "\(out)")
        // One conversation across the lines; the empty line and what followed /quit never reached the model.
        let conversations = out.split(separator: "\n").filter { $0.hasPrefix("conversation ") }
        #expect(conversations.count == 2 && conversations.first == conversations.last, "\(out)")
        #expect(model.requests.count == 3)
        #expect(model.requests[1].body.contains("Hello, owner: ask me anything."))
        #expect(!model.everythingReceived.contains("never sent"))
        // The held call is the one the owner can decide.
        let pendingLine = try #require(out.split(separator: "\n").first { $0.hasPrefix("pending approval ") })
        let id = String(pendingLine.dropFirst("pending approval ".count).prefix { $0 != ":" })
        let list = try await MoatBinary.run(["approvals", "list"], home: home.path)
        #expect(list.stdout.contains(id), "\(list.stdout)")
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(log.contains("\"op\":\"chat.stream\""))
    }

    @Test(
        "moat chat --message --stream --json: the model's text arrives as several deltas, in order, adding up to the reply"
    )
    func deltasAddUp() async throws {
        let reply = "A streamed answer, written a few characters at a time."
        let model = try await Self.model([.text(reply)])
        defer { Task { await model.stop() } }
        let home = try await ChatCommandTests.home(model)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let chat = try await MoatBinary.run(["chat", "--message", "go", "--stream", "--json"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        let lines = chat.stdout.split(separator: "\n").map {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:]
        }
        let deltas = lines.filter { $0["type"] as? String == "delta" }.compactMap { $0["text"] as? String }
        #expect(deltas.count > 10)
        #expect(deltas.joined() == reply)
        // The last line is the turn, as `moat chat --json` prints it.
        #expect(lines.last?["reply"] as? String == reply)
        _ = await server.stop()
        // Without a server the same command streams from its own process.
        model.enqueue(.text(reply))
        let offline = try await MoatBinary.run(["chat", "--message", "again", "--stream"], home: home.path)
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(offline.stdout.hasPrefix("A streamed answer"), "\(offline.stdout)")
    }

    @Test(
        "POST /api/chat as text/event-stream: well-formed events whose deltas add up to the reply, a canary scrubbed in every one, read scope refused"
    )
    func serverSentEvents() async throws {
        let canary = Self.canary
        let model = try await Self.model(
            [
                .toolCall("read_file", #"{"path":"\#(canary).txt"}"#, text: "Looking for \(canary) now."),
                .text("The key is \(canary), as you asked."),
            ], pieces: 3)
        defer { Task { await model.stop() } }
        let home = try await ChatCommandTests.home(model)
        try await Self.trust("suggest", home: home.path)
        let tokens = try await Self.owner(home.path)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        let answer = try await RawHTTP.sendOffPool(
            Self.chatRequest(#"{"message":"find the key"}"#, port: port, token: tokens.write), port: port)
        #expect(answer.status == 200, "\(answer.body)")
        #expect(answer.header("Content-Type") == "text/event-stream; charset=utf-8")
        #expect(answer.header("Cache-Control") == "no-store")
        #expect(answer.header("X-Content-Type-Options") == "nosniff")
        #expect(answer.header("Content-Security-Policy") != nil)
        #expect(answer.header("Transfer-Encoding") == "chunked")
        let body = try #require(ServerSentEvent.dechunk(answer.body), "\(answer.body)")
        // Never the canary, in any event, however the model's pieces cut it.
        #expect(!body.contains(canary))
        #expect(!body.contains(String(canary.prefix(12))))
        let events = ServerSentEvent.parse(body)
        // Every event is `event:` + one line of JSON + a blank line.
        #expect(body.hasSuffix("\n\n"))
        #expect(events.allSatisfy { !$0.json.isEmpty && !$0.data.contains("\n") })
        #expect(Set(events.map(\.event)).isSubset(of: ["delta", "tool", "approval", "done"]))
        #expect(events.last?.event == "done")
        let turn = try #require(events.last?.json)
        #expect(turn["reply"] as? String == "The key is [secret:CANARY], as you asked.")
        func text(round: Int) -> String {
            events.filter { $0.event == "delta" && $0.json["round"] as? Int == round }
                .compactMap { $0.json["text"] as? String }.joined()
        }
        #expect(text(round: 2) == turn["reply"] as? String)
        #expect(text(round: 1) == "Looking for [secret:CANARY] now.")
        #expect(events.filter { $0.event == "delta" }.count > 10)
        // The call as proposed (arguments scrubbed), decided (held at 2 by the domain's trust), then held.
        let tool = events.filter { $0.event == "tool" }.map(\.json)
        #expect(tool.map { $0["stage"] as? String } == ["proposed", "decided", "finished"])
        #expect(tool.first?["arguments"] as? String == #"{"path":"[secret:CANARY].txt"}"#)
        #expect(tool.first?["domain"] as? String == "files")
        #expect(tool[1]["level"] as? Int == 2 && tool[1]["domain_level"] as? Int == 2)
        #expect(tool[1]["limited_by"] as? [String] == ["domain"])
        let approval = try #require(events.first { $0.event == "approval" }?.json)
        let id = try #require(approval["approval_id"] as? String)
        #expect((turn["pending"] as? [[String: Any]])?.first?["approval_id"] as? String == id)
        #expect(events.firstIndex { $0.event == "approval" }! < events.lastIndex { $0.event == "delta" }!)
        // Read scope: refused before any model round, stream or not.
        let before = model.requests.count
        let refused = try await RawHTTP.sendOffPool(
            Self.chatRequest(#"{"message":"hi"}"#, port: port, token: tokens.read), port: port)
        #expect(refused.status == 403)
        #expect(refused.header("Content-Type")?.hasPrefix("application/json") == true)
        // No Accept: the finished turn as JSON, as before.
        model.enqueue(.text("Plain JSON."))
        let plain = try await RawHTTP.sendOffPool(
            Self.chatRequest(#"{"message":"hi"}"#, port: port, token: tokens.write, stream: false), port: port)
        #expect(plain.status == 200 && plain.json["reply"] as? String == "Plain JSON.", "\(plain.body)")
        #expect(model.requests.count == before + 1)
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(!log.contains(canary))
    }

    @Test("a real server-sent events client (httpx-sse) reads POST /api/chat's stream: the deltas, then the turn")
    func realClient() async throws {
        let venv = try await PythonVenv.forTest("httpx-sse", packages: ["httpx", "httpx-sse"])
        let reply = "Streamed to a real client ✓, line one.\nLine two."
        let model = try await Self.model([.text(reply)], pieces: 4)
        defer { Task { await model.stop() } }
        let home = try await ChatCommandTests.home(model)
        let tokens = try await Self.owner(home.path)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = repository.appendingPathComponent("Tests/Clients/sse_chat_check.py").path
        let (status, out, err) = try await venv.run(
            script, ["http://127.0.0.1:\(port)/api/chat", tokens.write, "hello"])
        try #require(status == 0, "httpx-sse failed:\n\(err.suffix(3000))")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect(parsed["content_type"] as? String == "text/event-stream; charset=utf-8")
        let events = try #require(parsed["events"] as? [[String: Any]])
        let deltas = events.filter { $0["event"] as? String == "delta" }.compactMap {
            ($0["data"] as? [String: Any])?["text"] as? String
        }
        #expect(deltas.count > 3)
        #expect(deltas.joined() == reply)
        #expect(events.last?["event"] as? String == "done")
        #expect((events.last?["data"] as? [String: Any])?["reply"] as? String == reply)
        _ = await server.stop()
    }

    @Test("a streaming client that leaves mid-turn does not stop the turn: it completes and is stored")
    func clientLeaves() async throws {
        var slow = ScriptedModelServer.Reply.text("Stored though you left.")
        slow.delay = 2
        let model = try await Self.model([
            .toolCall("list_files", #"{"path":"."}"#), slow, .text("Yes, I remember."),
        ])
        defer { Task { await model.stop() } }
        let home = try await ChatCommandTests.home(model)
        try await Self.trust("act", home: home.path)
        let tokens = try await Self.owner(home.path)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        let conversation = "owner-left-midway"
        let request = Self.chatRequest(
            #"{"message":"list my files","conversation":"\#(conversation)"}"#, port: port, token: tokens.write)
        // Read until the tool call shows, then hang up while the model is still writing its next round.
        let seen: String = try await offCooperativePool {
            let fd = try RawHTTP.connect(port: port, receiveTimeout: 60)
            defer { close(fd) }
            let bytes = Array(request.utf8)
            let sent = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            try #require(sent == bytes.count)
            var received = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !received.contains("event: tool") {
                let count = read(fd, &buffer, buffer.count)
                if count <= 0 { break }
                received += String(decoding: buffer[0..<count], as: UTF8.self)
            }
            return received
        }
        #expect(seen.contains("event: tool"))
        #expect(!seen.contains("Stored though you left."))
        // The next turn of the same conversation (once the first is done) carries the first one's reply.
        var next: MoatBinary.Result?
        for _ in 0..<60 where next?.status != 0 {
            let attempt = try await MoatBinary.run(
                ["chat", "--message", "do you remember?", "--conversation", conversation], home: home.path)
            if attempt.status != 0 {
                #expect(attempt.stderr.contains("still running"), "\(attempt.stderr)")
                try await Task.sleep(for: .seconds(1))
            }
            next = attempt
        }
        #expect(next?.status == 0 && next?.stdout.hasPrefix("Yes, I remember.") == true, "\(next?.stderr ?? "")")
        #expect(model.requests.count == 3)
        #expect(model.requests.last?.body.contains("Stored though you left.") == true)
        let (status, _) = await server.stop()
        #expect(status == 0)
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
