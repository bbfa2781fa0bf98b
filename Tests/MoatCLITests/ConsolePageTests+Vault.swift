import Foundation
import MoatTestSupport
import Testing

extension ConsolePageTests {
    @Test(
        "the vault page lists each secret's name, policy and last use (time, tool, host) and never its value; a secret never sent says never"
    )
    func vaultPage() async throws {
        let api = try await LoopbackHTTPServer.start(host: "127.0.0.1") { _ in .init(body: "sunny") }
        defer { Task { await api.stop() } }
        let weather = #"{"method":"GET","url":"\#(api.origin)/today","headers":{"X-Key":"{{secret:WEATHER_KEY}}"}}"#
        // OTHER_KEY's policy names another host: the call is refused before anything is sent, so no use.
        let other = #"{"method":"GET","url":"\#(api.origin)/other","headers":{"X-Key":"{{secret:OTHER_KEY}}"}}"#
        let model = try await ScriptedModelServer.start(replies: [
            .toolCall("http_request", weather), .toolCall("http_request", other), .text("It is sunny."),
        ])
        defer { Task { await model.stop() } }
        let prepared = try await ChatCommandTests.home(model)
        let config = try String(contentsOfFile: prepared.file("config.yaml"), encoding: .utf8)
        try (config + "\npolicy:\n  ssrf:\n    allow_hosts: [\"127.0.0.1:\(api.port)\"]\n").write(
            toFile: prepared.file("config.yaml"), atomically: true, encoding: .utf8)
        let (home, running, port) = try await Self.serve(home: prepared, password: "a long owner passphrase")
        let value = "sk-console-test-" + UUID().uuidString
        try value.write(toFile: home.file("value"), atomically: true, encoding: .utf8)
        for (name, host) in [("WEATHER_KEY", "127.0.0.1"), ("OTHER_KEY", "api.other.example")] {
            let added = try await MoatBinary.run(
                [
                    "vault", "add", name, "--from-file", home.file("value"), "--allow-tool", "http_request",
                    "--allow-host", host,
                ],
                home: home.path)
            #expect(added.status == 0, "\(added.stderr)")
        }
        unlink(home.file("value"))
        let (cookie, _) = try await Self.login(port: port, password: "a long owner passphrase")
        #expect(try await OwnerCommandTests.send("GET", "/vault", port: port).status == 303)
        func page() async throws -> String {
            let page = try await OwnerCommandTests.send("GET", "/vault", port: port, headers: [("Cookie", cookie)])
            #expect(page.status == 200)
            return page.body
        }
        // Before any call: both never used.
        let before = try await page()
        #expect(
            before.contains("<td><code>WEATHER_KEY</code></td><td>http_request</td><td>127.0.0.1</td>"), "\(before)")
        #expect(Self.lastUse("WEATHER_KEY", in: before) == "never" && Self.lastUse("OTHER_KEY", in: before) == "never")
        #expect(before.contains(#"aria-current="page">Vault<"#))

        #expect(
            try await MoatBinary.run(
                ["trust", "set", "integrations", "full", "--force", "--reason", "my weather API"], home: home.path
            ).status == 0)
        let chat = try await MoatBinary.run(["chat", "--message", "what is the weather?"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        #expect(api.requests.map(\.target) == ["/today"] && api.requests.first?.header("X-Key") == value)

        // WEATHER_KEY: used now, by http_request, to 127.0.0.1; OTHER_KEY (refused by its policy): never.
        let after = try await page()
        let text = try #require(Self.lastUse("WEATHER_KEY", in: after), "\(after)")
        #expect(text.hasSuffix(" by http_request to 127.0.0.1"), "\(text)")
        let time = String(text.prefix { $0 != " " })
        #expect(time.wholeMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z/) != nil, "\(text)")
        #expect(Self.lastUse("OTHER_KEY", in: after) == "never", "\(after)")
        #expect(!after.contains(value) && !after.contains("sk-console-test"))
        // The use is the audit log's `vault.use` entry, written before the request left: names, never the value.
        let audit = try await MoatBinary.run(["audit", "export", "--format", "jsonl"], home: home.path)
        let uses = audit.stdout.split(separator: "\n").filter { $0.contains(#""action":"vault.use""#) }
        #expect(uses.count == 1 && uses.first?.contains(#""target":"WEATHER_KEY""#) == true, "\(uses)")
        #expect(!audit.stdout.contains(value))

        let (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
        #expect(!log.contains(value))
    }

    /// The "Last use" cell of secret `name`'s row on the vault page.
    static func lastUse(_ name: String, in page: String) -> String? {
        guard let row = page.range(of: "<tr><td><code>\(name)</code></td>") else { return nil }
        let rest = page[row.upperBound...]
        guard let cell = rest.range(of: #"<td class="last-use">"#),
            let end = rest[cell.upperBound...].range(of: "</td>")
        else { return nil }
        return String(rest[cell.upperBound..<end.lowerBound])
    }
}
