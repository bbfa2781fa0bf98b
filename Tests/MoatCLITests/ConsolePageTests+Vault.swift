import Foundation
import MoatTestSupport
import Testing

extension ConsolePageTests {
    @Test("the vault page lists each secret's name and policy and never its value")
    func vaultPage() async throws {
        let model = try await ScriptedModelServer.start(replies: [])
        defer { Task { await model.stop() } }
        let (home, running, port) = try await Self.serve(model, password: "a long owner passphrase")
        let value = "sk-console-test-" + UUID().uuidString
        try value.write(toFile: home.file("value"), atomically: true, encoding: .utf8)
        let added = try await MoatBinary.run(
            [
                "vault", "add", "WEATHER_KEY", "--from-file", home.file("value"), "--allow-tool", "http_request",
                "--allow-host", "api.weather.example",
            ], home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        unlink(home.file("value"))
        let (cookie, _) = try await Self.login(port: port, password: "a long owner passphrase")
        #expect(try await OwnerCommandTests.send("GET", "/vault", port: port).status == 303)
        let page = try await OwnerCommandTests.send("GET", "/vault", port: port, headers: [("Cookie", cookie)])
        #expect(page.status == 200)
        #expect(
            page.body.contains("<td><code>WEATHER_KEY</code></td><td>http_request</td><td>api.weather.example</td>"),
            "\(page.body)")
        #expect(!page.body.contains(value) && !page.body.contains("sk-console-test"))
        #expect(page.body.contains(#"aria-current="page">Vault<"#))

        let (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
        #expect(!log.contains(value))
    }
}
