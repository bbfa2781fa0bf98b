import MoatCore
import MoatNet
import MoatTestSupport
import Testing

/// An owner-configured destination (a model server's base_url) may be on loopback or the LAN, unlike a
/// URL the model picks; credentials in the URL and cloud metadata addresses stay refused.
@Suite struct OwnerConfiguredDestinationTests {
    static let resolver = AddressResolver { name in
        switch name {
        case "llm.lan": [IPAddress("192.168.1.20")!]
        case "rebound.example": [IPAddress("203.0.113.7")!, IPAddress("169.254.169.254")!]
        case "dual.example": [IPAddress("::1")!, IPAddress("127.0.0.1")!]
        default: []
        }
    }

    func check(_ text: String) async -> Result<CheckedURL, NetError> {
        let url = try! FetchURL.parse(text).get()
        do {
            return .success(try await CheckedURL.ownerConfigured(url, resolver: Self.resolver))
        } catch {
            return .failure(error)
        }
    }

    @Test("loopback, a LAN name and any port are the owner's choice, and the URL guard still refuses them")
    func ownerChoices() async throws {
        let loopback = try await check("http://127.0.0.1:11434/v1/chat/completions").get()
        #expect(loopback.addresses == [IPAddress("127.0.0.1")!])
        let lan = try await check("http://llm.lan:8000/v1").get()
        #expect(lan.addresses == [IPAddress("192.168.1.20")!])
        #expect(try await check("http://dual.example:8080/v1").get().addresses.count == 2)
        guard case .deny = await URLGuard(resolver: Self.resolver).check("http://127.0.0.1:11434/v1") else {
            Issue.record("the model-facing guard must still refuse loopback")
            return
        }
    }

    @Test("credentials in the URL, a metadata address (even among others) and a name that does not resolve are refused")
    func refusals() async {
        guard case .failure(let credentials) = await check("http://user:pw@127.0.0.1:8080/v1") else {
            Issue.record("credentials accepted")
            return
        }
        #expect(credentials.code == .urlRefused)
        guard case .failure(let metadata) = await check("http://169.254.169.254/v1") else {
            Issue.record("metadata accepted")
            return
        }
        #expect(metadata.code == .urlRefused)
        guard case .failure(let mapped) = await check("http://[::ffff:169.254.169.254]/v1") else {
            Issue.record("mapped metadata accepted")
            return
        }
        #expect(mapped.code == .urlRefused)
        guard case .failure(let rebound) = await check("https://rebound.example/v1") else {
            Issue.record("a name with one metadata address accepted")
            return
        }
        #expect(rebound.code == .urlRefused)
        guard case .failure(let unknown) = await check("http://nowhere.example/v1") else {
            Issue.record("an unresolvable name accepted")
            return
        }
        #expect(unknown.code == .connectFailed)
    }

    @Test(
        "a streamed request goes to the resolved addresses in order, with the name as Host; a refusing one falls through"
    )
    func addressFallback() async throws {
        let server = try await ScriptedModelServer.start(replies: [.text("hi")])
        defer { Task { await server.stop() } }
        // 127.0.0.2 is loopback too, but nothing listens there on this port.
        let resolver = AddressResolver { _ in [IPAddress("127.0.0.2")!, IPAddress("127.0.0.1")!] }
        let url = try FetchURL.parse("http://model.test:\(server.port)/v1/chat/completions").get()
        let target = try await CheckedURL.ownerConfigured(url, resolver: resolver)
        let body = Array(#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#.utf8)
        let (status, text) = try await PinnedHTTPTransport().stream(
            target, method: "POST", headers: [("Content-Type", "application/json")], body: body
        ) { response in
            var bytes: [UInt8] = []
            for try await chunk in response.body { bytes += chunk }
            return (response.status, String(decoding: bytes, as: UTF8.self))
        }
        #expect(status == 200)
        #expect(text.contains(#""content":"hi""#))
        #expect(server.requests.first?.header("Host") == "model.test:\(server.port)")
    }
}
