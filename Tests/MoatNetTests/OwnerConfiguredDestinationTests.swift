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
        let cases: [(String, NetError.Code)] = [
            ("http://user:pw@127.0.0.1:8080/v1", .urlRefused),
            ("http://169.254.169.254/v1", .urlRefused),
            ("http://[::ffff:169.254.169.254]/v1", .urlRefused),
            ("https://rebound.example/v1", .urlRefused),
            ("http://nowhere.example/v1", .connectFailed),
        ]
        for (url, code) in cases {
            guard case .failure(let error) = await check(url) else {
                Issue.record("\(url) was accepted")
                continue
            }
            #expect(error.code == code, "\(url): \(error.message)")
        }
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
