import Foundation
import HTTPTypes
import MoatAdmin
import MoatApp
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// A stand-in for tailscaled's LocalAPI: a small HTTP/1.1 server on a unix socket that answers
/// `whois` from a table, the way tailscaled does (JSON on 200, a text error on 404).
final class FakeLocalAPI: Sendable {
    enum Answer: Sendable {
        case json(String)
        case chunkedJSON(String)
        case status(Int, String)
        case silent
    }

    let path: String
    private let table: [String: Answer]
    private let requests = Mutex<[String]>([])
    private let channel = Mutex<(any Channel)?>(nil)

    init(path: String, table: [String: Answer]) {
        self.path = path
        self.table = table
    }

    /// The request heads received so far (request line and Host), one string each.
    var received: [String] { requests.withLock { $0 } }

    func start() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(api: self))
                }
            }
            .bind(unixDomainSocketPath: path)
            .get()
        channel.withLock { $0 = server }
    }

    func stop() async throws {
        try await channel.withLock { $0 }?.close()
    }

    /// The response bytes for one request head, or nil to stay silent.
    fileprivate func respond(to head: String) -> [UInt8]? {
        let lines = head.components(separatedBy: "\r\n")
        let host = lines.first { $0.lowercased().hasPrefix("host:") }?.dropFirst(5).trimmingCharacters(in: .whitespaces)
        requests.withLock { $0.append(lines[0] + " | Host: " + (host ?? "-")) }
        let parts = lines[0].split(separator: " ")
        let prefix = "/localapi/v0/whois?addr="
        // Like tailscaled: a request for another host name is refused.
        guard parts.count == 3, parts[0] == "GET", parts[2] == "HTTP/1.1", host == "local-tailscaled.sock" else {
            return Self.response(403, "invalid localapi request\n", type: "text/plain")
        }
        guard parts[1].hasPrefix(prefix) else { return Self.response(404, "404 page not found\n", type: "text/plain") }
        let address = String(parts[1].dropFirst(prefix.count)).removingPercentEncoding ?? ""
        switch table[address] {
        case .json(let body): return Self.response(200, body, type: "application/json")
        case .chunkedJSON(let body): return Self.chunked(body)
        case .status(let code, let body): return Self.response(code, body, type: "text/plain; charset=utf-8")
        case .silent: return nil
        case nil: return Self.response(404, "no match for IP:port\n", type: "text/plain; charset=utf-8")
        }
    }

    static func response(_ status: Int, _ body: String, type: String) -> [UInt8] {
        let bytes = Array(body.utf8)
        let head =
            "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Error")\r\nContent-Type: \(type)\r\n"
            + "Content-Length: \(bytes.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + bytes
    }

    static func chunked(_ body: String) -> [UInt8] {
        var text = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        let bytes = Array(body.utf8)
        for start in stride(from: 0, to: bytes.count, by: 7) {
            let chunk = bytes[start..<min(start + 7, bytes.count)]
            text += String(chunk.count, radix: 16) + "\r\n" + String(decoding: chunk, as: UTF8.self) + "\r\n"
        }
        return Array((text + "0\r\n\r\n").utf8)
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let api: FakeLocalAPI
        var received = ""
        var answered = false

        init(api: FakeLocalAPI) { self.api = api }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            received += buffer.readString(length: buffer.readableBytes) ?? ""
            guard !answered, let end = received.range(of: "\r\n\r\n") else { return }
            answered = true
            if let bytes = api.respond(to: String(received[..<end.lowerBound])) {
                // The client closes after reading the whole answer, as tailscale's own client does.
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
            }
        }
    }
}

@Suite(.promptScheduling) struct TailscaleIdentityTests {
    static let owner = "alice@example.com"
    static let loopback = IPAddress("127.0.0.1")!

    static func whoisJSON(login: String, node: String, tags: [String]? = nil) -> String {
        // Shaped like tailscaled's answer, with fields Moat does not read.
        let tagsField = tags.map { ", \"Tags\": [" + $0.map { "\"\($0)\"" }.joined(separator: ", ") + "]" } ?? ""
        return """
            {"Node": {"ID": 123, "StableID": "nABC", "Name": "\(node)", "User": 456,
              "Addresses": ["100.101.102.103/32"], "Online": true\(tagsField)},
             "UserProfile": {"ID": 456, "LoginName": "\(login)", "DisplayName": "Someone",
              "ProfilePicURL": "https://example.com/p.png"},
             "CapMap": null}
            """
    }

    static let table: [String: FakeLocalAPI.Answer] = [
        "100.101.102.103": .json(whoisJSON(login: owner, node: "laptop.tail1234.ts.net.")),
        "100.101.102.104": .json(whoisJSON(login: "mallory@example.com", node: "evil.tail1234.ts.net.")),
        "100.101.102.105": .json(
            whoisJSON(login: "tagged-devices", node: "server.tail1234.ts.net.", tags: ["tag:server"])
        ),
        "100.101.102.106": .status(404, "no match for IP:port\n"),
        "100.101.102.107": .json("{\"Node\": {\"Name\": \"half"),
        "100.101.102.108": .json(whoisJSON(login: "Alice@Example.COM", node: "phone.tail1234.ts.net.")),
        "100.101.102.109": .silent,
        "100.101.102.110": .json("{\"Node\": {\"Name\": \"" + String(repeating: "x", count: 1_100_000) + "\"}}"),
        "100.101.102.111": .status(500, "internal error\n"),
        "100.101.102.112": .chunkedJSON(whoisJSON(login: owner, node: "tablet.tail1234.ts.net.", tags: [])),
        "100.101.102.113": .json(whoisJSON(login: "jörg@example.com", node: "jorg.tail1234.ts.net.")),
        "100.101.102.114": .json("{\"Node\": {\"Name\": \"n\"}, \"UserProfile\": {\"LoginName\": \"\"}}"),
        "fd7a:115c:a1e0::1": .json(whoisJSON(login: owner, node: "laptop.tail1234.ts.net.")),
    ]

    /// The headers tailscale serve sets for a tailnet user, for one address.
    static func serveHeaders(
        from address: String = "100.101.102.103",
        login: String = owner,
        dropping: Set<String> = [],
        adding extra: [(String, String)] = []
    ) -> HTTPFields {
        let all: [(String, String)] =
            [
                ("Host", "laptop.tail1234.ts.net"),
                ("X-Forwarded-For", address),
                ("X-Forwarded-Host", "laptop.tail1234.ts.net"),
                ("X-Forwarded-Proto", "https"),
                ("Tailscale-User-Login", login),
                ("Tailscale-User-Name", "Alice"),
                ("Tailscale-User-Profile-Pic", "https://example.com/p.png"),
            ] + extra
        var fields = HTTPFields()
        for (name, value) in all where !dropping.contains(name) {
            fields.append(HTTPField(name: HTTPField.Name(name)!, value: value))
        }
        return fields
    }

    /// Runs `body` with a fake LocalAPI answering from ``table``.
    /// The timeout is generous: every case but the silent one gets its answer, and on a loaded CI machine
    /// tailscaled's real 2 s default was seen to expire first.
    static func withFake<Result>(
        timeout: TimeInterval = 30,
        proxyUID: UInt32 = getuid(),
        _ body: (FakeLocalAPI, TailscaleIdentity) async throws -> Result
    ) async throws -> Result {
        let directory = TemporaryDirectory("moat-ts")
        let fake = FakeLocalAPI(path: directory.file("tailscaled.sock"), table: table)
        try await fake.start()
        let identity = TailscaleIdentity(
            owner: owner,
            localAPI: TailscaleLocalAPI(socketPath: fake.path, timeout: timeout),
            proxyUID: proxyUID
        )
        do {
            let result = try await body(fake, identity)
            try await fake.stop()
            return result
        } catch {
            try? await fake.stop()
            throw error
        }
    }

    /// The peer-socket lookup as it answers for a connection from tailscaled (here: this test's user,
    /// which ``withFake(timeout:proxyUID:_:)`` configures as tailscaled's).
    static let fromTailscaled: @Sendable () -> UInt32? = { getuid() }

    @Test("headers written by a process of another user, or whose socket owner is unknown, are not the owner")
    func otherUser() async throws {
        try await Self.withFake { fake, identity in
            let other = await identity.evaluate(
                peer: Self.loopback, peerUID: { getuid() &+ 1 }, headers: Self.serveHeaders())
            #expect(other == .refused(reason: "peer is not tailscaled's user"))
            let unknown = await identity.evaluate(peer: Self.loopback, peerUID: { nil }, headers: Self.serveHeaders())
            #expect(unknown == .refused(reason: "peer socket owner unknown"))
            // Refused before tailscaled is asked anything.
            #expect(fake.received.isEmpty)
        }
    }

    @Test("the genuine case: tailscale serve headers from loopback, confirmed by whois, is the owner")
    func genuineOwner() async throws {
        try await Self.withFake { fake, identity in
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled, headers: Self.serveHeaders())
            #expect(verdict == .owner(login: Self.owner, address: "100.101.102.103"))
            #expect(
                fake.received == ["GET /localapi/v0/whois?addr=100.101.102.103 HTTP/1.1 | Host: local-tailscaled.sock"])
        }
    }

    @Test("IPv6 works end to end: ::1 peer, tailnet IPv6 address in X-Forwarded-For")
    func ipv6() async throws {
        try await Self.withFake { _, identity in
            let verdict = await identity.evaluate(
                peer: IPAddress("::1"), peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(from: "fd7a:115c:a1e0:0:0:0:0:1")
            )
            #expect(verdict == .owner(login: Self.owner, address: "fd7a:115c:a1e0::1"))
        }
    }

    @Test("a forged Tailscale-User-Login from a local process is refused when whois names someone else")
    func forgedLogin() async throws {
        try await Self.withFake { _, identity in
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(from: "100.101.102.104")
            )
            #expect(verdict == .refused(reason: "whois login differs"))
        }
    }

    @Test("a tagged node has no user identity, even with the owner's login in the header")
    func taggedNode() async throws {
        try await Self.withFake { _, identity in
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(from: "100.101.102.105")
            )
            #expect(verdict == .refused(reason: "tagged node"))
        }
    }

    @Test("a Funnel request is never identity, and tailscaled is not even asked")
    func funnel() async throws {
        try await Self.withFake { fake, identity in
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(adding: [("Tailscale-Funnel-Request", "?1")])
            )
            #expect(verdict == .refused(reason: "funnel request"))
            #expect(fake.received.isEmpty)
        }
    }

    @Test(
        "each X-Forwarded header tailscale serve sets is required",
        arguments: ["X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"]
    )
    func missingForwardedHeader(_ name: String) async throws {
        try await Self.withFake { fake, identity in
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled, headers: Self.serveHeaders(dropping: [name]))
            #expect(verdict == .refused(reason: "missing \(name)"))
            let empty = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(dropping: [name], adding: [(name, " ")])
            )
            #expect(empty == .refused(reason: "missing \(name)"))
            #expect(fake.received.isEmpty)
        }
    }

    @Test("X-Forwarded-For with more than one address is a chain or a forgery")
    func forwardedChain() async throws {
        try await Self.withFake { fake, identity in
            let list = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(from: "100.101.102.104, 100.101.102.103")
            )
            #expect(list == .refused(reason: "X-Forwarded-For holds more than one address"))
            let twoFields = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(adding: [("X-Forwarded-For", "100.101.102.104")])
            )
            #expect(twoFields == .refused(reason: "X-Forwarded-For holds more than one address"))
            let notAnAddress = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(from: "laptop.tail1234.ts.net")
            )
            #expect(notAnAddress == .refused(reason: "X-Forwarded-For is not an IP address"))
            let withPort = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(from: "100.101.102.103:443")
            )
            #expect(withPort == .refused(reason: "X-Forwarded-For is not an IP address"))
            #expect(fake.received.isEmpty)
        }
    }

    @Test(
        "perfect headers from a peer that is not loopback are refused",
        arguments: ["192.168.1.5", "100.101.102.103", "::ffff:192.168.1.5", "fd7a:115c:a1e0::1"]
    )
    func nonLoopbackPeer(_ peer: String) async throws {
        try await Self.withFake { fake, identity in
            let verdict = await identity.evaluate(
                peer: IPAddress(peer), peerUID: Self.fromTailscaled, headers: Self.serveHeaders())
            #expect(verdict == .refused(reason: "peer is not loopback"))
            #expect(fake.received.isEmpty)
        }
    }

    @Test("an unknown peer address is not loopback")
    func unknownPeer() async throws {
        try await Self.withFake { _, identity in
            #expect(
                await identity.evaluate(peer: nil, peerUID: Self.fromTailscaled, headers: Self.serveHeaders())
                    == .refused(reason: "peer is not loopback"))
        }
    }

    @Test(
        "whois failures fail closed",
        arguments: [
            ("100.101.102.106", "whois does not know the address"),
            ("100.101.102.107", "whois answer malformed"),
            ("100.101.102.110", "whois answer malformed"),
            ("100.101.102.111", "whois failed"),
            ("100.101.102.114", "whois answer malformed"),
            ("100.101.102.200", "whois does not know the address"),
        ]
    )
    func whoisFailures(_ address: String, _ reason: String) async throws {
        try await Self.withFake { _, identity in
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled, headers: Self.serveHeaders(from: address))
            #expect(verdict == .refused(reason: reason))
        }
    }

    @Test("tailscaled that does not answer in time fails closed")
    func whoisTimeout() async throws {
        try await Self.withFake(timeout: 0.3) { _, identity in
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(from: "100.101.102.109")
            )
            #expect(verdict == .refused(reason: "tailscaled did not answer in time"))
        }
    }

    @Test("an unreachable tailscaled socket fails closed")
    func unreachable() async throws {
        let directory = TemporaryDirectory("moat-ts")
        // A stale socket file (tailscaled stopped) refuses connections; a missing one does not exist.
        try RawUnixClient.leaveStaleSocket(at: directory.file("stale.sock"))
        for path in [directory.file("no-such.sock"), directory.file("stale.sock")] {
            let identity = TailscaleIdentity(
                owner: Self.owner, localAPI: TailscaleLocalAPI(socketPath: path, timeout: 30), proxyUID: getuid())
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled, headers: Self.serveHeaders())
            #expect(verdict == .refused(reason: "tailscaled unreachable"))
        }
    }

    @Test("a header login that is not the configured owner is refused without asking tailscaled")
    func otherLogin() async throws {
        try await Self.withFake { fake, identity in
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(login: "bob@example.com")
            )
            #expect(verdict == .refused(reason: "login does not match the configured owner"))
            let longer = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(login: "alice@example.com.evil")
            )
            #expect(longer == .refused(reason: "login does not match the configured owner"))
            let twice = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(adding: [("Tailscale-User-Login", Self.owner)])
            )
            #expect(twice == .refused(reason: "repeated Tailscale-User-Login"))
            #expect(fake.received.isEmpty)
        }
    }

    @Test("logins that differ only in ASCII case match (header and whois); the verdict carries whois's login")
    func caseInsensitiveLogin() async throws {
        try await Self.withFake { _, identity in
            let verdict = await identity.evaluate(
                peer: Self.loopback, peerUID: Self.fromTailscaled,
                headers: Self.serveHeaders(from: "100.101.102.108", login: "ALICE@example.com")
            )
            #expect(verdict == .owner(login: "Alice@Example.COM", address: "100.101.102.108"))
        }
    }

    @Test("a non-ASCII login arrives RFC 2047-encoded and is decoded before comparing")
    func encodedLogin() async throws {
        let directory = TemporaryDirectory("moat-ts")
        let fake = FakeLocalAPI(path: directory.file("tailscaled.sock"), table: Self.table)
        try await fake.start()
        let identity = TailscaleIdentity(
            owner: "jörg@example.com", localAPI: TailscaleLocalAPI(socketPath: fake.path, timeout: 30),
            proxyUID: getuid())
        let verdict = await identity.evaluate(
            peer: Self.loopback, peerUID: Self.fromTailscaled,
            headers: Self.serveHeaders(from: "100.101.102.113", login: "=?utf-8?q?j=C3=B6rg@example.com?=")
        )
        let broken = await identity.evaluate(
            peer: Self.loopback, peerUID: Self.fromTailscaled,
            headers: Self.serveHeaders(from: "100.101.102.113", login: "=?utf-8?q?j=C3=G6rg@example.com?=")
        )
        try await fake.stop()
        #expect(verdict == .owner(login: "jörg@example.com", address: "100.101.102.113"))
        #expect(broken == .refused(reason: "unreadable Tailscale-User-Login"))
    }

    @Test("without a Tailscale-User-Login header the verdict is absent: normal login applies")
    func absent() async throws {
        try await Self.withFake { fake, identity in
            #expect(
                await identity.evaluate(peer: Self.loopback, peerUID: Self.fromTailscaled, headers: HTTPFields())
                    == .absent)
            let forwardedOnly = Self.serveHeaders(dropping: ["Tailscale-User-Login"])
            #expect(
                await identity.evaluate(peer: Self.loopback, peerUID: Self.fromTailscaled, headers: forwardedOnly)
                    == .absent)
            #expect(
                await identity.evaluate(
                    peer: IPAddress("192.168.1.5"), peerUID: Self.fromTailscaled, headers: HTTPFields()) == .absent)
            #expect(fake.received.isEmpty)
        }
    }

    @Test("the LocalAPI client decodes whois, including a chunked answer, and says what failed")
    func localAPIClient() async throws {
        try await Self.withFake { fake, _ in
            let api = TailscaleLocalAPI(socketPath: fake.path, timeout: 30)
            let owner = try await api.whois(address: "100.101.102.103")
            #expect(owner == TailscaleWhois(login: Self.owner, nodeName: "laptop.tail1234.ts.net.", tags: []))
            let tagged = try await api.whois(address: "100.101.102.105")
            #expect(
                tagged
                    == TailscaleWhois(
                        login: "tagged-devices", nodeName: "server.tail1234.ts.net.", tags: ["tag:server"])
            )
            let chunked = try await api.whois(address: "100.101.102.112")
            #expect(chunked == TailscaleWhois(login: Self.owner, nodeName: "tablet.tail1234.ts.net.", tags: []))
            let notFound = await #expect(throws: TailscaleLocalAPI.Failure.self) {
                try await api.whois(address: "100.101.102.106")
            }
            #expect(notFound?.kind == .notFound)
            let tooLarge = await #expect(throws: TailscaleLocalAPI.Failure.self) {
                try await api.whois(address: "100.101.102.110")
            }
            #expect(tooLarge?.kind == .tooLarge)
            let invalid = await #expect(throws: TailscaleLocalAPI.Failure.self) {
                try await api.whois(address: "100.101.102.103&addr=100.101.102.104")
            }
            #expect(invalid?.kind == .invalidAddress)
            #expect(TailscaleLocalAPI.defaultSocket == "/var/run/tailscale/tailscaled.sock")
        }
    }
}
