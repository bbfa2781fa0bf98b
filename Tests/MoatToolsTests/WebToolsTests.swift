import Foundation
import MoatCore
import MoatNet
import MoatTestSupport
import MoatTools
import MoatVault
import Synchronization
import Testing

/// The echo server on loopback, a vault with a canary secret, and the web tools over both.
struct WebFixture {
    static let canary = "canary-9f8e7d6c5b4a3f2e"
    let server = EchoServer()
    let port: Int
    let temp = TemporaryDirectory("moat-tools-web")
    let vault: UnlockedVault
    let context = ToolContext(principal: .owner, conversationID: "test")

    init() async throws {
        port = try await server.start()
        vault = try PreparedVault.copy(to: VaultPaths(stateDirectory: temp.path))
        var value = Array(Self.canary.utf8)
        try vault.add(
            "API_TOKEN", value: SecretBytes(wiping: &value),
            policy: try SecretPolicy(tools: ["http_request"], hosts: ["127.0.0.1"]))
        var other = Array("other-value-0123456789".utf8)
        try vault.add(
            "OTHER_TOKEN", value: SecretBytes(wiping: &other),
            policy: try SecretPolicy(tools: ["http_request"], hosts: ["api.example.com"]))
        var webOnly = Array("web-only-value-0123456789".utf8)
        try vault.add(
            "WEB_ONLY", value: SecretBytes(wiping: &webOnly),
            policy: try SecretPolicy(tools: ["web_fetch"], hosts: ["127.0.0.1"]))
    }

    /// The owner's explicit `host:port` exception for the echo server; without it loopback is refused.
    var exception: SSRFSettings { SSRFSettings(allowHosts: ["127.0.0.1:\(port)"]) }

    func fetchTool(_ ssrf: SSRFSettings? = nil, settings: ToolsSettings = ToolsSettings()) throws -> WebFetchTool {
        WebFetchTool(access: try WebAccess(ssrf: ssrf ?? exception, settings: settings), settings: settings)
    }

    func requestTool(_ ssrf: SSRFSettings? = nil, vault: UnlockedVault?? = .none) throws -> HTTPRequestTool {
        let settings = ToolsSettings()
        return HTTPRequestTool(
            access: try WebAccess(ssrf: ssrf ?? exception, settings: settings), settings: settings,
            vault: vault ?? self.vault)
    }

    func run(_ tool: some Tool, _ arguments: String) async throws(ToolError) -> ToolOutput {
        try await tool.run(try tool.prepare(arguments), context: context)
    }
}

@Suite(.promptScheduling) struct WebToolsTests {
    @Test("web_fetch GETs a loopback server the owner allowed by an explicit host and port, as external text")
    func fetchAllowed() async throws {
        let fixture = try await WebFixture()
        defer { Task { await fixture.server.stop() } }
        let tool = try fixture.fetchTool()
        let call = try tool.prepare(#"{"url":"http://127.0.0.1:\#(fixture.port)/page?q=1"}"#)
        #expect(call.destination == "127.0.0.1:\(fixture.port)")
        #expect(call.summary == "fetch http://127.0.0.1:\(fixture.port)/page?q=1")
        let output = try await tool.run(call, context: fixture.context)
        #expect(output.external)
        #expect(output.text.hasPrefix("HTTP 200 from http://127.0.0.1:\(fixture.port); content-type: text/plain"))
        #expect(output.text.contains("\n\nGET /page?q=1\n"))
        let binary = try await fixture.run(tool, #"{"url":"http://127.0.0.1:\#(fixture.port)/binary"}"#)
        #expect(binary.text.hasSuffix("hi\u{FFFD}\u{FFFD}!"))
        #expect(binary.text.contains("content-type: application/octet-stream"))
    }

    @Test("web_fetch refuses loopback, private and metadata addresses without an exception, and never sends")
    func fetchRefused() async throws {
        let fixture = try await WebFixture()
        defer { Task { await fixture.server.stop() } }
        let port = fixture.port
        let cases: [(SSRFSettings, String)] = [
            (SSRFSettings(), "http://127.0.0.1:\(port)/"),
            (SSRFSettings(allowPorts: [port]), "http://127.0.0.1:\(port)/"),
            (SSRFSettings(allowPorts: [port]), "http://localhost:\(port)/"),
            (SSRFSettings(allowPorts: [port]), "http://2130706433:\(port)/"),
            (SSRFSettings(allowHosts: ["127.0.0.1:\(port + 1)"]), "http://127.0.0.1:\(port)/"),
            (SSRFSettings(allowHosts: ["127.0.0.1:\(port)"]), "http://[::1]:\(port)/"),
            (SSRFSettings(), "http://10.0.0.1/"),
            (SSRFSettings(), "http://192.168.1.1/"),
            (SSRFSettings(), "http://169.254.169.254/latest/meta-data/"),
            (SSRFSettings(allowHosts: ["169.254.169.254"]), "http://169.254.169.254/latest/meta-data/"),
            (SSRFSettings(), "http://[::1]/"),
            (SSRFSettings(), "http://metadata.google.internal/"),
        ]
        for (ssrf, url) in cases {
            let error = await asyncToolError {
                _ = try await fixture.run(try! fixture.fetchTool(ssrf), #"{"url":"\#(url)"}"#)
            }
            #expect(error?.code == .refused, "\(url): \(String(describing: error))")
        }
        // A redirect from an allowed server to the metadata address is refused at that hop.
        let redirect = await asyncToolError {
            _ = try await fixture.run(try! fixture.fetchTool(), #"{"url":"http://127.0.0.1:\#(port)/redirect"}"#)
        }
        #expect(redirect?.code == .refused && redirect?.message.contains("redirect 1") == true)
        #expect(fixture.server.requests.count == 1, "only the allowed first hop reached a server")
        // Not a URL, another scheme, a placeholder: refused before anything is sent.
        for url in ["file:///etc/passwd", "not a url", "http://127.0.0.1:\(port)/?k={{secret:WEB_ONLY}}"] {
            let error = toolError { _ = try fixture.fetchTool().prepare(WebFixture.json(url: url)) }
            #expect(error?.code == .invalidArguments, "\(url): \(String(describing: error))")
        }
    }

    @Test("web_fetch's result is cut at the output cap with a marker")
    func fetchCapped() async throws {
        let fixture = try await WebFixture()
        defer { Task { await fixture.server.stop() } }
        var settings = ToolsSettings()
        settings.outputBytes = 1024
        let long = String(repeating: "p", count: 3000)
        let output = try await fixture.run(
            try fixture.fetchTool(settings: settings), #"{"url":"http://127.0.0.1:\#(fixture.port)/\#(long)"}"#)
        #expect(output.truncated)
        #expect(output.text.utf8.count < 1200)
        #expect(output.text.contains("[cut: the result was cut here after"))
    }

    @Test("http_request fills {{secret:…}} in at egress only; the call and the result never hold the value")
    func secretsAtEgress() async throws {
        let fixture = try await WebFixture()
        defer { Task { await fixture.server.stop() } }
        let tool = try fixture.requestTool()
        let arguments = WebFixture.json([
            "method": "POST", "url": "http://127.0.0.1:\(fixture.port)/api",
            "headers": ["Authorization": "Bearer {{secret:API_TOKEN}}", "X-Api-Key": "{{secret:API_TOKEN}}"],
            "body": "token={{secret:API_TOKEN}}&b64=x",
        ])
        let call = try tool.prepare(arguments)
        for text in [call.arguments, call.summary, call.destination] {
            #expect(!text.contains(WebFixture.canary))
        }
        #expect(call.arguments.contains("Bearer {{secret:API_TOKEN}}"))
        #expect(call.destination == "127.0.0.1:\(fixture.port)")
        #expect(
            call.summary
                == "POST http://127.0.0.1:\(fixture.port)/api with headers Authorization, X-Api-Key, a 32-byte body "
                + "(secrets filled in at egress)")
        let output = try await tool.run(call, context: fixture.context)
        // The server got the value (resolved at egress) and echoed it back in headers and body ...
        let received = try #require(fixture.server.requests.last)
        #expect(received.contains("Bearer \(WebFixture.canary)") && received.contains("token=\(WebFixture.canary)"))
        // ... and the model sees only the secret's name.
        #expect(output.external)
        #expect(!output.text.contains(WebFixture.canary))
        #expect(output.text.contains("X-Echo-Authorization: Bearer [secret:API_TOKEN]"))
        #expect(output.text.contains("token=[secret:API_TOKEN]"))
    }

    @Test(
        "http_request records each secret it fills in (names and host, once each) before sending; when the record fails nothing is sent"
    )
    func secretUseRecordedBeforeEgress() async throws {
        let fixture = try await WebFixture()
        defer { Task { await fixture.server.stop() } }
        let tool = try fixture.requestTool()
        let server = fixture.server
        /// Each recorded use, with how many requests the server had received at that moment.
        final class Uses: Sendable { let list = Mutex<[([String], String, Int)]>([]) }
        let recorded = Uses()
        let recording = ToolContext(principal: .owner, conversationID: "test") { names, host in
            let seen = server.requests.count
            recorded.list.withLock { $0.append((names, host, seen)) }
        }
        let arguments = WebFixture.json([
            "method": "POST", "url": "http://127.0.0.1:\(fixture.port)/api",
            "headers": ["Authorization": "Bearer {{secret:API_TOKEN}}", "X-Other": "{{secret:API_TOKEN}}"],
            "body": "token={{secret:API_TOKEN}}",
        ])
        _ = try await tool.run(try tool.prepare(arguments), context: recording)
        #expect(server.requests.count == 1)
        let uses = recorded.list.withLock { $0 }
        #expect(uses.count == 1 && uses.first?.0 == ["API_TOKEN"] && uses.first?.1 == "127.0.0.1", "\(uses)")
        #expect(uses.first?.2 == 0, "the use was recorded after the request left")
        // A call without a placeholder records nothing; one its policy refuses records nothing either.
        _ = try await tool.run(
            try tool.prepare(WebFixture.json(["method": "GET", "url": "http://127.0.0.1:\(fixture.port)/plain"])),
            context: recording)
        let refused = await asyncToolError {
            _ = try await tool.run(
                try tool.prepare(
                    WebFixture.json([
                        "method": "GET", "url": "http://127.0.0.1:\(fixture.port)/",
                        "headers": ["X-Api-Key": "{{secret:OTHER_TOKEN}}"],
                    ])), context: recording)
        }
        #expect(refused?.code == .refused)
        #expect(recorded.list.withLock { $0.count } == 1)

        // The record cannot be written (the audit log is full, say): refused, and the server gets nothing.
        struct Unwritable: Error {}
        let failing = ToolContext(principal: .owner, conversationID: "test") { _, _ in throw Unwritable() }
        let sentBefore = server.requests.count
        let error = await asyncToolError { _ = try await tool.run(try tool.prepare(arguments), context: failing) }
        #expect(error?.code == .refused)
        #expect(
            error?.message.contains("API_TOKEN could not be recorded in the audit log") == true,
            "\(String(describing: error))")
        #expect(error?.message.contains(WebFixture.canary) == false)
        #expect(server.requests.count == sentBefore)
    }

    @Test("http_request refuses a secret its policy does not allow for this tool or host, and sends nothing")
    func secretPolicy() async throws {
        let fixture = try await WebFixture()
        defer { Task { await fixture.server.stop() } }
        let tool = try fixture.requestTool()
        for name in ["OTHER_TOKEN", "WEB_ONLY", "MISSING"] {
            let arguments = WebFixture.json([
                "method": "GET", "url": "http://127.0.0.1:\(fixture.port)/",
                "headers": ["X-Api-Key": "{{secret:\(name)}}"],
            ])
            let error = await asyncToolError { _ = try await fixture.run(tool, arguments) }
            #expect(error?.code == .refused, "\(name): \(String(describing: error))")
            #expect(error?.message.contains("not sent") == true)
            #expect(error?.message.contains("value") != true)
        }
        let noVault = try fixture.requestTool(vault: .some(nil))
        let locked = await asyncToolError {
            _ = try await fixture.run(
                noVault,
                WebFixture.json([
                    "method": "GET", "url": "http://127.0.0.1:\(fixture.port)/", "body": "{{secret:API_TOKEN}}",
                ]))
        }
        #expect(locked?.code == .refused)
        #expect(fixture.server.requests.isEmpty)
    }

    @Test("http_request checks method, URL and headers before sending, and uses the same SSRF guard")
    func requestChecks() async throws {
        let fixture = try await WebFixture()
        defer { Task { await fixture.server.stop() } }
        let tool = try fixture.requestTool()
        let url = "http://127.0.0.1:\(fixture.port)/"
        let invalid: [([String: Any], String)] = [
            (["method": "TRACE", "url": url], "must be one of GET, POST, PUT, PATCH, DELETE, HEAD"),
            (["method": "GET", "url": url + "?t={{secret:API_TOKEN}}"], "not allowed in a URL"),
            (["method": "GET", "url": url, "headers": ["Host": "evil"]], "set by the gateway"),
            (["method": "GET", "url": url, "headers": ["X-A": "1\r\nX-B: 2"]], "one line"),
            (["method": "GET", "url": url, "headers": ["X-A": "1", "x-a": "2"]], "given twice"),
            (["method": "GET", "url": url, "headers": ["Bad Name": "1"]], "not a valid HTTP field name"),
            (["method": "GET", "url": url, "headers": ["X-A": 1]], "values are strings"),
        ]
        for (arguments, expected) in invalid {
            let error = toolError { _ = try tool.prepare(WebFixture.json(arguments)) }
            #expect(error?.code == .invalidArguments, "\(arguments)")
            #expect(error?.message.contains(expected) == true, "\(arguments): \(String(describing: error))")
        }
        let unguarded = await asyncToolError {
            _ = try await fixture.run(
                try fixture.requestTool(SSRFSettings()), WebFixture.json(["method": "GET", "url": url]))
        }
        #expect(unguarded?.code == .refused)
        #expect(fixture.server.requests.isEmpty)
        // A redirect is returned, never followed (a secret never reaches a second host).
        let redirect = try await fixture.run(tool, WebFixture.json(["method": "GET", "url": url + "redirect"]))
        #expect(redirect.text.hasPrefix("HTTP 307"))
        #expect(redirect.text.contains("Location: http://169.254.169.254/latest/meta-data/"))
        #expect(fixture.server.requests.count == 1)
        let head = try await fixture.run(tool, WebFixture.json(["method": "HEAD", "url": url + "head"]))
        #expect(head.text.hasPrefix("HTTP 200") && head.text.hasSuffix("\n\n"))
    }
}

extension WebFixture {
    static func json(url: String) -> String { json(["url": url]) }

    static func json(_ object: [String: Any]) -> String {
        String(
            decoding: try! JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]),
            as: UTF8.self)
    }
}
