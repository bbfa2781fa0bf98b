import Foundation
import MoatTestSupport
import Testing

/// `GET /api/metrics` and `moat metrics` on a real `moat serve`: the counters move with a chat turn,
/// only the owner may read them, and nothing a sender wrote reaches a label.
@Suite(.serialized) struct MetricsServeTests {
    /// The value of the sample `series` (`name{label="v",…}` exactly as the text shows it), or nil.
    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1).split(separator: " ").first ?? "")
        }
        return nil
    }

    /// A chat home (the scripted model as `local`) with an owner and a read-scoped API token.
    static func ownedHome(_ server: ScriptedModelServer) async throws -> (TemporaryDirectory, token: String) {
        let home = try await ChatCommandTests.home(server)
        let setup = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home.path, stdin: "a long owner passphrase\n")
        try #require(setup.status == 0, "\(setup.stderr)")
        let created = try await MoatBinary.run(["token", "create", "scraper", "--scope", "read"], home: home.path)
        try #require(created.status == 0, "\(created.stderr)")
        return (home, created.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func scrape(port: Int, token: String?) async throws -> RawHTTP.Response {
        try await OwnerCommandTests.send(
            "GET", "/api/metrics", port: port, headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    @Test(
        "a served home scraped after a chat turn shows messages, tool decisions, provider rounds, tokens, audit appends and requests moved; the message's canary text is nowhere in the scrape"
    )
    func countersMoveAndNoCanary() async throws {
        let canary = "CANARY-7f3a9c-metrics"
        let server = try await ScriptedModelServer.start(replies: [
            .toolCall("list_files", #"{"path":"."}"#),
            .text("Described, not run."),
        ])
        defer { Task { await server.stop() } }
        let (home, token) = try await Self.ownedHome(server)
        let running = try await RunningServer.start(arguments: [], home: home.path)
        defer { _ = running.stop() }
        let port = try #require(running.port)
        let before = try await Self.scrape(port: port, token: token)
        #expect(before.status == 200)
        #expect(before.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(Self.sample(before.body, #"moat_messages_total{channel="owner"}"#) == nil)
        #expect(Self.sample(before.body, #"moat_vault_unlocks_total{source="seal"}"#) == 1)

        await waitForFile(home.file("moat.sock"), within: 60)
        let chat = try await MoatBinary.run(["chat", "--message", "please list my files \(canary)"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        let conversation = try #require(
            chat.stdout.split(separator: " ").map(String.init).first { $0.hasPrefix("owner-") }?
                .trimmingCharacters(in: .whitespacesAndNewlines))

        let after = try await Self.scrape(port: port, token: token).body
        #expect(Self.sample(after, #"moat_messages_total{channel="owner"}"#) == 1, "\(after)")
        #expect(Self.sample(after, #"moat_tool_calls_total{decision="described"}"#) == 1, "\(after)")
        #expect(Self.sample(after, #"moat_provider_round_seconds_count{provider="local"}"#) == 2, "\(after)")
        #expect((Self.sample(after, #"moat_provider_tokens_total{provider="local",direction="input"}"#) ?? 0) > 0)
        #expect((Self.sample(after, #"moat_provider_tokens_total{provider="local",direction="output"}"#) ?? 0) > 0)
        #expect((Self.sample(after, "moat_audit_append_seconds_count") ?? 0) > 3)
        #expect(Self.sample(after, "moat_approvals_pending") == 0)
        #expect(
            Self.sample(after, #"moat_http_requests_total{route="/api/metrics",method="GET",status="2xx"}"#) == 1,
            "\(after)")
        // Nothing the sender wrote, no conversation id, no token: names, closed-set labels and numbers only.
        for secret in [canary, conversation, token, "list my files"] {
            #expect(!after.contains(secret), "\(secret) in the scrape")
        }

        // The same text through the admin socket.
        let cli = try await MoatBinary.run(["metrics"], home: home.path)
        #expect(cli.status == 0, "\(cli.stderr)")
        #expect(Self.sample(cli.stdout, #"moat_messages_total{channel="owner"}"#) == 1)
        #expect(!cli.stdout.contains(canary))
    }

    @Test("an unauthenticated scrape, a flipped token byte and a cookie-less browser get 401 and no metrics")
    func scrapeNeedsTheOwner() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Task { await server.stop() } }
        let (home, token) = try await Self.ownedHome(server)
        let running = try await RunningServer.start(arguments: [], home: home.path)
        defer { _ = running.stop() }
        let port = try #require(running.port)
        var flipped = Array(token.utf8)
        flipped[flipped.count - 1] =
            flipped[flipped.count - 1] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        for attempt in [nil, String(decoding: flipped, as: UTF8.self), ""] {
            let refused = try await Self.scrape(port: port, token: attempt)
            #expect(refused.status == 401, "\(String(describing: attempt))")
            #expect(!refused.body.contains("moat_"))
        }
        #expect(try await Self.scrape(port: port, token: token).status == 200)
        // The unauthenticated attempts were counted by status class, under the route's template.
        let text = try await Self.scrape(port: port, token: token).body
        #expect(
            (Self.sample(text, #"moat_http_requests_total{route="/api/metrics",method="GET",status="4xx"}"#) ?? 0) >= 1,
            "\(text)")
    }

    @Test("moat metrics without a running server says so and fails")
    func metricsNeedsTheServer() async throws {
        let home = try await ServedHome.copy()
        let result = try await MoatBinary.run(["metrics"], home: home.path)
        #expect(result.status == 1)
        #expect(result.stderr.contains("no moat serve is running"))
    }
}
