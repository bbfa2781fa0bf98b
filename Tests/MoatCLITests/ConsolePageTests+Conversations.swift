import Foundation
import MoatTestSupport
import Testing

extension ConsolePageTests {
    /// The conversation's id, from the link on `/conversations`.
    static func conversationID(_ page: RawHTTP.Response) throws -> String {
        let range = try #require(page.body.range(of: #"href="/conversations/[^"]+""#, options: .regularExpression))
        return String(page.body[range].dropFirst(#"href="/conversations/"#.count).dropLast())
    }

    static func occurrences(of needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    @Test(
        "the conversations page shows each principal's turns and tool calls with their decisions, marks tainted turns")
    func conversationsPage() async throws {
        let server = try await ScriptedModelServer.start(replies: [
            .toolCall("read_file", #"{"path":"notes.txt"}"#),
            .text("It waits for your approval."),
            .text(#"notes.txt says: groceries <img src=x onerror=alert(3)>"# + "\u{202E}gpj.exe"),
            .text("You are welcome."),
        ])
        defer { Task { await server.stop() } }
        let (home, running, port) = try await Self.serve(server, password: "a long owner passphrase")
        let origin = "http://127.0.0.1:\(port)"
        func get(_ path: String, _ headers: [(String, String)]) async throws -> RawHTTP.Response {
            try await OwnerCommandTests.send("GET", path, port: port, headers: headers)
        }
        let empty = try await get("/conversations", [])
        #expect(empty.status == 303 && empty.header("Location") == "/login")
        let (cookie, csrf) = try await Self.login(port: port, password: "a long owner passphrase")
        let session = [("Cookie", cookie)]
        let none = try await get("/conversations", session)
        #expect(none.body.contains(#"id="no-conversations""#), "\(none.status) \(none.body)")

        let chat = try await MoatBinary.run(["chat", "--message", "what is in <my> notes?"], home: home.path)
        let pendingID = try ApprovalAPITests.pendingID(chat)
        let list = try await get("/conversations", session)
        #expect(list.status == 200)
        #expect(list.body.contains("<h2>You (owner)</h2>"), "\(list.body)")
        #expect(list.body.contains(#"aria-current="page">Conversations<"#))
        let id = try Self.conversationID(list)
        #expect(try await get("/conversations/\(id)", []).status == 303)

        // Held: the call and its decision are shown; nothing untrusted was read yet.
        let held = try await get("/conversations/\(id)", session)
        #expect(held.status == 200, "\(held.body)")
        #expect(held.body.contains("what is in &lt;my&gt; notes?"), "\(held.body)")
        #expect(held.body.contains("<code>read_file</code>"))
        #expect(held.body.contains(#"class="decision decision-pending">pending"#), "\(held.body)")
        #expect(held.body.contains("approval \(pendingID)"))
        #expect(!held.body.contains("badge-taint") && !held.body.contains("turn tainted"))

        // Approved from the console: the result and the reply appear, and the turn that read the file's
        // text (tool output, untrusted by default) is marked tainted, as is the next one.
        let approved = try await Self.form(
            "/approvals/\(pendingID)/approve", port: port, fields: [("csrf_token", csrf)],
            headers: session + [("Origin", origin)])
        #expect(approved.header("Location")?.contains("result=approved") == true)
        let next = try await MoatBinary.run(
            ["chat", "--message", "thanks", "--conversation", id], home: home.path)
        #expect(next.status == 0, "\(next.stderr)")
        let page = try await get("/conversations/\(id)", session)
        #expect(page.body.contains("groceries: milk, eggs"), "the tool result is missing: \(page.body)")
        #expect(page.body.contains("groceries &lt;img src=x onerror=alert(3)&gt;gpj.exe"), "\(page.body)")
        #expect(!page.body.contains("<img") && !page.body.contains("\u{202E}"))
        #expect(page.body.contains("You are welcome."))
        #expect(page.body.contains(#"id="taint-now""#))
        #expect(Self.occurrences(of: #"class="turn tainted""#, in: page.body) == 2, "\(page.body)")
        let read = "This turn read: read tool output (untrusted by default)"
        #expect(Self.occurrences(of: read, in: page.body) == 1, "\(page.body)")
        // The held call was decided before anything untrusted was read.
        #expect(!page.body.contains("decided while tainted"))
        #expect(!page.body.contains(csrf))

        let missing = try await get("/conversations/no-such-conversation", session)
        #expect(missing.status == 404 && missing.body.contains("There is no such conversation"))

        let (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
