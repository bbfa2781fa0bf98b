import Foundation
import MoatTestSupport
import Testing

/// The approval and usage routes through the real `moat serve`: a call the agent held is listed on the
/// API, only an `admin` identity decides it, approving runs exactly that call once and the conversation
/// goes on; `GET /api/usage` and `moat usage` show the tokens each round used, per principal and provider.
@Suite(.serialized) struct ApprovalAPITests {
    /// `moat token create NAME --scope SCOPE` → the token.
    static func token(_ name: String, _ scope: String, home: String) async throws -> String {
        let created = try await MoatBinary.run(["token", "create", name, "--scope", scope], home: home)
        try #require(created.status == 0, "\(created.stderr)")
        return created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func json(_ response: RawHTTP.Response) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
    }

    static func pendingID(_ chat: MoatBinary.Result) throws -> String {
        let line = try #require(chat.stdout.split(separator: "\n").first { $0.hasPrefix("pending approval ") })
        return String(line.dropFirst("pending approval ".count).prefix { $0 != ":" })
    }

    @Test("approvals on the API: read lists, write and read cannot decide, admin approves exactly once or denies")
    func approvalsThroughTheAPI() async throws {
        let server = try await ScriptedModelServer.start(replies: [
            .toolCall("read_file", #"{"path":"notes.txt"}"#),
            .text("It waits for your approval."),
            .text("notes.txt says: groceries."),
            .toolCall("read_file", #"{"path":"notes.txt"}"#),
            .text("It waits again."),
            .text("Understood, I will not read it."),
        ])
        defer { Task { await server.stop() } }
        let home = try await ChatCommandTests.home(server)
        #expect(
            try await MoatBinary.run(["trust", "set", "files", "suggest", "--reason", "ask me"], home: home.path).status
                == 0)
        let setup = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home.path, stdin: "a long owner passphrase\n")
        try #require(setup.status == 0, "\(setup.stderr)")
        let read = await [("Authorization", "Bearer " + (try Self.token("reader", "read", home: home.path)))]
        let write = await [("Authorization", "Bearer " + (try Self.token("writer", "write", home: home.path)))]
        let admin = await [("Authorization", "Bearer " + (try Self.token("admin", "admin", home: home.path)))]
        let running = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(running.port)
        await waitForFile(home.file("moat.sock"), within: 60)
        func send(_ method: String, _ path: String, _ headers: [(String, String)], json: String? = nil) async throws
            -> RawHTTP.Response
        {
            try await OwnerCommandTests.send(method, path, port: port, headers: headers, json: json)
        }

        let chat = try await MoatBinary.run(["chat", "--message", "what is in notes.txt?"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        let id = try Self.pendingID(chat)

        let listed = try await send("GET", "/api/approvals", read)
        #expect(listed.status == 200, "\(listed.body)")
        let approvals = try #require(try Self.json(listed)["approvals"] as? [[String: Any]])
        let held = try #require(approvals.first { $0["id"] as? String == id })
        #expect(held["tool"] as? String == "read_file")
        #expect(held["arguments"] as? String == #"{"path":"notes.txt"}"#)
        #expect(held["status"] as? String == "pending")
        #expect((held["request_hash"] as? String)?.count == 64)
        #expect(try await send("GET", "/api/approvals/\(id)", read).status == 200)
        #expect(try await send("GET", "/api/approvals/no-such-approval", read).status == 404)
        #expect(try await send("GET", "/api/approvals?all=yes", read).status == 400)
        #expect(try await send("GET", "/api/approvals", []).status == 401)

        // A write token may start turns but not approve what the gateway held; neither may a read token.
        #expect(try await send("POST", "/api/approvals/\(id)/approve", write).status == 403)
        #expect(try await send("POST", "/api/approvals/\(id)/approve", read).status == 403)
        #expect(try await send("POST", "/api/approvals/\(id)/deny", write, json: "{}").status == 403)
        #expect(server.requests.allSatisfy { !$0.body.contains("groceries") })

        let approved = try await send("POST", "/api/approvals/\(id)/approve", admin)
        #expect(approved.status == 200, "\(approved.body)")
        let decision = try Self.json(approved)
        #expect(decision["approved"] as? Bool == true)
        #expect((decision["turn"] as? [String: Any])?["reply"] as? String == "notes.txt says: groceries.")
        #expect(server.requests.last?.body.contains("groceries") == true)
        let modelRounds = server.requests.count
        // Once: a second approval of the same id runs nothing.
        let again = try await send("POST", "/api/approvals/\(id)/approve", admin)
        #expect(again.status >= 400 && again.status < 500, "\(again.status) \(again.body)")
        #expect(server.requests.count == modelRounds)

        let second = try await MoatBinary.run(["chat", "--message", "read it again"], home: home.path)
        let secondID = try Self.pendingID(second)
        #expect(try await send("POST", "/api/approvals/\(secondID)/deny", admin, json: #"{"reason":7}"#).status == 400)
        let denied = try await send("POST", "/api/approvals/\(secondID)/deny", admin, json: #"{"reason":"not now"}"#)
        #expect(denied.status == 200, "\(denied.body)")
        let refusal = try Self.json(denied)
        #expect(refusal["approved"] as? Bool == false)
        #expect((refusal["turn"] as? [String: Any])?["reply"] as? String == "Understood, I will not read it.")

        // Usage: every model round (2 + 1 + 2 + 1) counted for the owner under the provider `local`.
        let usage = try await send("GET", "/api/usage?days=1", read)
        #expect(usage.status == 200, "\(usage.body)")
        let entries = try #require(try Self.json(usage)["entries"] as? [[String: Any]])
        let owner = try #require(entries.first { $0["principal"] as? String == "owner" })
        #expect(owner["provider"] as? String == "local")
        #expect(owner["rounds"] as? Int == 6)
        #expect((owner["input_tokens"] as? Int ?? 0) > 0)
        for bad in ["0", "367", "abc", "-1", ""] {
            #expect(try await send("GET", "/api/usage?days=\(bad)", read).status == 400, "days=\(bad)")
        }
        let cli = try await MoatBinary.run(["usage", "--days", "1"], home: home.path)
        #expect(cli.status == 0, "\(cli.stderr)")
        #expect(cli.stdout.contains("owner") && cli.stdout.contains("local"), "\(cli.stdout)")
        let cliJSON = try await MoatBinary.run(["usage", "--json"], home: home.path)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(cliJSON.stdout.utf8)) as? [[String: Any]])
        #expect(rows.first?["rounds"] as? Int == 6)
        #expect(try await MoatBinary.run(["usage", "--days", "0"], home: home.path).status == 64)

        let (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
