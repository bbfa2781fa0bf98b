import MoatCore
import MoatNet
import MoatTestSupport
import Synchronization
import Testing

/// A resolver with a fixed table; any other name fails, as an unresolvable name does.
func fakeResolver(_ table: [String: [String]]) -> AddressResolver {
    AddressResolver { name in
        guard let addresses = table[name] else { throw NetError(.urlRefused, "no such name") }
        return addresses.compactMap(IPAddress.init)
    }
}

let resolverTable: [String: [String]] = [
    "example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "good.example": ["93.184.215.20"],
    "split.example": ["93.184.215.14", "10.0.0.5"],
    "rebind.example": ["93.184.215.99"],
    "metadata.google.internal": ["169.254.169.254"],
    "localhost": ["127.0.0.1"],
    "home.example": ["192.168.1.20"],
    "evil-home.example": ["169.254.169.254"],
]

@Suite struct URLGuardTests {
    let guardrail = URLGuard(resolver: fakeResolver(resolverTable))

    static let refused: [String] = [
        "http://127.0.0.1/", "http://localhost./", "http://LOCALHOST/", "http://2130706433/", "http://0x7f000001/",
        "http://0x7f.1/", "http://0177.0.0.1/", "http://127.1/", "http://0/", "http://0.0.0.0/", "http://[::1]/",
        "http://[::]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
        "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://[fd00:ec2::254]/",
        "http://metadata.google.internal./", "http://100.100.100.200/", "http://100.101.1.1/", "http://10.0.0.1/",
        "http://172.31.255.255/", "http://192.168.1.1/", "http://[fe80::1]/", "http://[fc00::1]/",
        "http://224.0.0.1/", "http://good.example@127.0.0.1/", "http://split.example/", "file:///etc/passwd",
        "gopher://x/", "data:text/plain,hi", "javascript:alert(1)", "http://good.example:6379/",
        // Beyond the issue's list: more encodings and embedded forms of private addresses.
        "http://[64:ff9b::7f00:1]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:7f00:1::]/",
        "http://[::ffff:169.254.169.254]/", "http://255.255.255.255/", "http://240.0.0.1/", "http://[ff02::1]/",
        "http://%31%32%37.0.0.1/", "http://127.0.0.1.nip/", "http://unknown.example/", "http://x.localhost/",
        "http://router.local/", "http://[2001:db8::1]/", "http://[::127.0.0.1]/", "http://1.2.3.4.5/",
        "http://256.1.1.1/", "http://0x100000000/", "http://\u{FF11}\u{FF12}\u{FF17}.0.0.1/", "http:\\\\127.0.0.1/",
        "http:/127.0.0.1/", "http://[fe80::1%25eth0]/", "http://user:pass@good.example/", "http://good.example:0/",
        "http://good.example:99999/", "ftp://good.example/", "http://",
    ]

    @Test("each SSRF case from the issue (and more) is refused", arguments: refused)
    func refuses(_ url: String) async {
        guard case .deny(let reason) = await guardrail.check(url) else {
            Issue.record("\(url) was allowed")
            return
        }
        #expect(!reason.isEmpty)
    }

    @Test(
        "public destinations are allowed",
        arguments: [
            "https://example.com/", "http://8.8.8.8/", "http://[2606:4700:4700::1111]/", "HTTPS://Example.COM.",
        ]
    )
    func allows(_ url: String) async {
        guard case .allow(let checked) = await guardrail.check(url) else {
            Issue.record("\(url) was refused")
            return
        }
        #expect(!checked.addresses.isEmpty)
    }

    @Test(
        "legacy numeric hosts are canonicalized to the address they stand for",
        arguments: [
            ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("0", "0.0.0.0"), ("2852039166", "169.254.169.254"),
            ("10.1", "10.0.0.1"), ("192.168.257", "192.168.1.1"), ("8.8.8.8.", "8.8.8.8"),
        ]
    )
    func canonicalizes(_ host: String, _ expected: String) throws {
        let url = try FetchURL.parse("http://\(host)/").get()
        #expect(url.host == .address(IPAddress(expected)!))
    }

    @Test("deny reasons name the real problem")
    func reasons() async {
        #expect(await guardrail.check("http://2130706433/") == .deny("127.0.0.1 is loopback"))
        #expect(
            await guardrail.check("http://split.example/")
                == .deny(
                    "split.example resolves to 10.0.0.5: 10.0.0.5 is private (10.0.0.0/8)"))
        #expect(
            await guardrail.check("http://169.254.169.254/") == .deny("169.254.169.254 is a cloud metadata address"))
        guard case .deny(let port) = await guardrail.check("http://good.example:6379/") else { return }
        #expect(port.contains("6379"))
    }

    @Test("owner lists: a blocked host is refused, an allowed home server may be private, metadata never")
    func ownerLists() async {
        let custom = URLGuard(
            settings: SSRFSettings(
                allowHosts: ["home.example", "evil-home.example", "192.168.1.1"],
                blockHosts: ["*.example.com", "good.example"],
                allowPorts: [8123]
            ),
            resolver: fakeResolver(resolverTable)
        )
        guard case .deny = await custom.check("http://good.example/") else {
            Issue.record("blocklisted host allowed")
            return
        }
        guard case .deny = await custom.check("http://www.example.com/") else {
            Issue.record("blocklisted subdomain allowed")
            return
        }
        guard case .allow = await custom.check("http://home.example:8123/") else {
            Issue.record("allowlisted home server refused")
            return
        }
        guard case .allow = await custom.check("http://192.168.1.1/") else {
            Issue.record("allowlisted literal refused")
            return
        }
        guard case .deny = await custom.check("http://evil-home.example/") else {
            Issue.record("allowlisted name resolving to metadata allowed")
            return
        }
        guard case .deny = await custom.check("http://home.example:8124/") else {
            Issue.record("port outside the allowlist allowed")
            return
        }
    }

    @Test("a host:port exception allows that host on that port only, and never a metadata address")
    func pinnedExceptions() async {
        let custom = URLGuard(
            settings: SSRFSettings(
                allowHosts: ["home.example:8123", "10.0.0.5:8443", "[fd00::5]:8080", "evil-home.example:80"]),
            resolver: fakeResolver(resolverTable)
        )
        for url in ["http://home.example:8123/api", "http://10.0.0.5:8443/", "http://[fd00::5]:8080/"] {
            guard case .allow = await custom.check(url) else {
                Issue.record("\(url): the explicit exception was refused")
                continue
            }
        }
        for url in [
            "http://home.example/", "http://home.example:8124/", "http://10.0.0.5/", "http://10.0.0.6:8443/",
            "http://good.example:8123/", "http://[fd00::5]/", "http://evil-home.example/",
        ] {
            guard case .deny = await custom.check(url) else {
                Issue.record("\(url): allowed without an exception for that host and port")
                continue
            }
        }
        #expect(SSRFSettings.isValidHostEntry("home.example:8123", withPort: true))
        #expect(SSRFSettings.isValidHostEntry("[fd00::5]:8080", withPort: true))
        #expect(SSRFSettings.isValidHostEntry("*.lan:443", withPort: true))
        #expect(!SSRFSettings.isValidHostEntry("home.example:8123"))
        #expect(!SSRFSettings.isValidHostEntry("home.example:99999", withPort: true))
        #expect(!SSRFSettings.isValidHostEntry("home.example:", withPort: true))
        #expect(!SSRFSettings.isValidHostEntry("http://home.example:8123", withPort: true))
    }

    @Test("host list entries are validated")
    func hostEntries() {
        #expect(SSRFSettings.isValidHostEntry("home.example"))
        #expect(SSRFSettings.isValidHostEntry("*.example.com"))
        #expect(SSRFSettings.isValidHostEntry("192.168.1.1"))
        #expect(!SSRFSettings.isValidHostEntry("http://x/"))
        #expect(!SSRFSettings.isValidHostEntry("*.192.168.1.1"))
        #expect(!SSRFSettings.isValidHostEntry(""))
    }
}

/// Records each request and answers from a script keyed by URL.
final class ScriptedTransport: PinnedTransport {
    let script: [String: FetchResponse]
    let log = Mutex<[(String, IPAddress, [String])]>([])
    /// The method and body size of each request, in order.
    let bodies = Mutex<[(String, Int)]>([])

    init(_ script: [String: FetchResponse]) { self.script = script }

    func send(
        _ target: CheckedURL, method: String, headers: [(name: String, value: String)], body: [UInt8]
    ) async throws -> FetchResponse {
        log.withLock { $0.append(("\(target.url)", target.address, headers.map(\.name))) }
        bodies.withLock { $0.append((method, body.count)) }
        guard let response = script["\(target.url)"] else { return FetchResponse(status: 404, headers: [], body: []) }
        return response
    }

}

/// A transport whose every request fails (a connection refused).
struct FailingTransport: PinnedTransport {
    func send(
        _ target: CheckedURL, method: String, headers: [(name: String, value: String)], body: [UInt8]
    ) async throws -> FetchResponse {
        throw NetError(.fetchFailed, "cannot connect")
    }
}

extension FetchResponse {
    static func redirect(_ location: String, status: Int = 302) -> FetchResponse {
        FetchResponse(status: status, headers: [(name: "Location", value: location)], body: [])
    }
}

@Suite(.promptScheduling) struct GuardedFetcherTests {
    @Test("a redirect from a public page to the metadata address is refused before any request is sent there")
    func redirectToMetadata() async {
        let transport = ScriptedTransport([
            "http://good.example/": .redirect("http://169.254.169.254/latest/meta-data/")
        ])
        let fetcher = GuardedFetcher(guardrail: URLGuard(resolver: fakeResolver(resolverTable)), transport: transport)
        await #expect(throws: NetError.self) { try await fetcher.fetch("http://good.example/") }
        #expect(transport.log.withLock { $0.map(\.0) } == ["http://good.example/"])
    }

    @Test("a refused redirect and a failed fetch name the origin only, never a path or query that may hold a value")
    func messagesNameOriginOnly() async {
        let refusing = GuardedFetcher(
            guardrail: URLGuard(resolver: fakeResolver(resolverTable)),
            transport: ScriptedTransport([
                "http://good.example/": .redirect("http://169.254.169.254/latest/meta-data/?key=s3cr3t-in-query")
            ]))
        do {
            _ = try await refusing.fetch("http://good.example/")
            Issue.record("the redirect to the metadata address was followed")
        } catch {
            #expect(error.code == .urlRefused)
            #expect(error.message.contains("http://169.254.169.254"), "\(error.message)")
            #expect(!error.message.contains("s3cr3t") && !error.message.contains("meta-data"), "\(error.message)")
        }
        let failing = GuardedFetcher(
            guardrail: URLGuard(resolver: fakeResolver(resolverTable)), transport: FailingTransport())
        do {
            _ = try await failing.fetch("http://good.example/path/s3cr3t?token=s3cr3t")
            Issue.record("a failed transport returned a response")
        } catch {
            #expect(error.code == .fetchFailed)
            #expect(error.message.hasPrefix("fetching from http://good.example failed"), "\(error.message)")
            #expect(!error.message.contains("s3cr3t"), "\(error.message)")
        }
    }

    @Test("redirects are followed by hand up to 5, each checked, relative ones resolved")
    func followsRedirects() async throws {
        let transport = ScriptedTransport([
            "http://good.example/": .redirect("/a"),
            "http://good.example/a": .redirect("b"),
            "http://good.example/b": .redirect("https://example.com/c", status: 301),
            "https://example.com/c": .redirect("//good.example/d", status: 307),
            "https://good.example/d": .redirect("?q=1", status: 308),
            "https://good.example/d?q=1": FetchResponse(status: 200, headers: [], body: Array("ok".utf8)),
        ])
        let fetcher = GuardedFetcher(guardrail: URLGuard(resolver: fakeResolver(resolverTable)), transport: transport)
        let outcome = try await fetcher.fetch("http://good.example/", headers: [(name: "Authorization", value: "x")])
        #expect(outcome.response.body == Array("ok".utf8))
        #expect(outcome.visited.count == 6)
        // The credential went to the first origin only.
        #expect(
            transport.log.withLock { $0.map { $0.2.contains("Authorization") } } == [
                true, true, true, false, false, false,
            ])
    }

    @Test("a POST body follows a 307 and is dropped when a 303 turns the request into a GET")
    func bodyAcrossRedirects() async throws {
        let transport = ScriptedTransport([
            "http://good.example/form": .redirect("/kept", status: 307),
            "http://good.example/kept": .redirect("/seen", status: 303),
            "http://good.example/seen": FetchResponse(status: 200, headers: [], body: []),
        ])
        let fetcher = GuardedFetcher(guardrail: URLGuard(resolver: fakeResolver(resolverTable)), transport: transport)
        _ = try await fetcher.fetch("http://good.example/form", method: "POST", body: Array("a=1".utf8))
        #expect(transport.bodies.withLock { $0.map { "\($0.0) \($0.1)" } } == ["POST 3", "POST 3", "GET 0"])
    }

    @Test("a sixth redirect is not followed")
    func tooManyRedirects() async {
        var script: [String: FetchResponse] = [:]
        for index in 0..<7 { script["http://good.example/\(index)"] = FetchResponse.redirect("/\(index + 1)") }
        let transport = ScriptedTransport(script)
        let fetcher = GuardedFetcher(guardrail: URLGuard(resolver: fakeResolver(resolverTable)), transport: transport)
        do {
            _ = try await fetcher.fetch("http://good.example/0")
            Issue.record("followed more than 5 redirects")
        } catch {
            #expect(error.code == .fetchFailed)
        }
        #expect(transport.log.withLock { $0.count } == 6)
    }

    @Test("the connection is pinned to the address that was checked, even if DNS would now answer otherwise")
    func pinned() async throws {
        let answers = Mutex(0)
        // First lookup public, every later one loopback: a rebinding DNS server.
        let rebinding = AddressResolver { _ in
            let count = answers.withLock { value -> Int in
                value += 1
                return value
            }
            return [count == 1 ? IPAddress("93.184.215.99")! : IPAddress("127.0.0.1")!]
        }
        let transport = ScriptedTransport([
            "http://rebind.example/": FetchResponse(status: 200, headers: [], body: [])
        ])
        let fetcher = GuardedFetcher(guardrail: URLGuard(resolver: rebinding), transport: transport)
        _ = try await fetcher.fetch("http://rebind.example/")
        #expect(transport.log.withLock { $0.map(\.1) } == [IPAddress("93.184.215.99")!])
        #expect(answers.withLock { $0 } == 1)
    }
}
