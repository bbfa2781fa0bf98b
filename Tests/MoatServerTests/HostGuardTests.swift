import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MoatAdmin
import MoatApp
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatTestSupport
import Testing

@Suite(.promptScheduling) struct HostGuardTests {
    let guard18789 = HostGuard(
        boundAddress: IPAddress("127.0.0.1")!,
        port: 18789,
        tls: false,
        allowedHosts: ["laptop.tail1234.ts.net", "studio.lan:8443"]
    )

    @Test(
        "loopback names with the bound port are answered",
        arguments: [
            "localhost:18789", "127.0.0.1:18789", "[::1]:18789", "LOCALHOST:18789",
        ])
    func loopbackHosts(_ host: String) {
        #expect(guard18789.allowsHost(host))
    }

    @Test(
        "forged and rebinding-style Host values are not",
        arguments: [
            "evil.example:18789", "evil.example", "127.0.0.1.nip.io:18789", "localhost.evil.example:18789",
            "localhost:80", "localhost", "127.0.0.1:1878", "localhost.:18789", "127.0.0.2:18789", "[::1]",
            "localhost:18789:1", "laptop.tail1234.ts.net.evil:443", "studio.lan", "studio.lan:8444", "",
            "[::1:18789", "localhost:0x4965", "0177.0.0.1:18789", "2130706433:18789",
        ])
    func forgedHosts(_ host: String) {
        #expect(!guard18789.allowsHost(host))
    }

    @Test("an allowed tailscale name is answered on its default ports; a listed host:port only on that port")
    func allowedNames() {
        #expect(guard18789.allowsHost("laptop.tail1234.ts.net"))
        #expect(guard18789.allowsHost("Laptop.Tail1234.ts.net:443"))
        #expect(!guard18789.allowsHost("laptop.tail1234.ts.net:8080"))
        #expect(guard18789.allowsHost("studio.lan:8443"))
        #expect(!guard18789.allowsHost(nil))
    }

    @Test("Origin must be one of the gateway's own origins")
    func origins() {
        #expect(guard18789.allowsOrigin("http://localhost:18789"))
        #expect(guard18789.allowsOrigin("https://laptop.tail1234.ts.net"))
        #expect(!guard18789.allowsOrigin("https://evil.example"))
        #expect(!guard18789.allowsOrigin("null"))
        #expect(!guard18789.allowsOrigin("http://localhost:18789/path"))
        #expect(!guard18789.allowsOrigin("http://user@localhost:18789"))
        #expect(!guard18789.allowsOrigin("file://"))
        #expect(!guard18789.allowsOrigin("http://localhost"))
    }

    @Test("a non-loopback bind answers to its own address; an any-address bind only to listed names")
    func boundAddress() {
        let lan = HostGuard(boundAddress: IPAddress("192.168.1.20")!, port: 443, tls: true, allowedHosts: [])
        #expect(lan.allowsHost("192.168.1.20"))
        #expect(lan.allowsHost("192.168.1.20:443"))
        #expect(!lan.allowsHost("192.168.1.21"))
        let any = HostGuard(boundAddress: IPAddress("0.0.0.0")!, port: 443, tls: true, allowedHosts: [])
        #expect(!any.allowsHost("0.0.0.0"))
        #expect(any.allowsHost("localhost"))
    }

    @Test("the router answers /healthz with a tiny body and no version or host details")
    func healthzThroughRouter() async throws {
        // The router test client always sends the authority "localhost" (no port): port 80.
        let hostGuard = HostGuard(boundAddress: IPAddress("127.0.0.1")!, port: 80, tls: false, allowedHosts: [])
        let app = Application(router: GatewayApplication.makeRouter(hostGuard: hostGuard))
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok\n")
                #expect(response.headers[.server] == nil)
            }
            try await client.execute(uri: "/nothing-here", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("a cross-origin POST is refused before it reaches any route")
    func crossOriginPostThroughRouter() async throws {
        let hostGuard = HostGuard(boundAddress: IPAddress("127.0.0.1")!, port: 80, tls: false, allowedHosts: [])
        let app = Application(router: GatewayApplication.makeRouter(hostGuard: hostGuard))
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .post, headers: [.origin: "https://evil.example"]) {
                #expect($0.status == .forbidden)
            }
            try await client.execute(uri: "/healthz", method: .post, headers: [.origin: "http://localhost"]) {
                // Same-origin passes the guard; there is no POST route, so the router says so.
                #expect($0.status == .notFound || $0.status == .methodNotAllowed)
            }
        }
    }

    @Test("on a real socket: forged Host is 421, foreign Origin on POST is 403, missing Origin on GET is fine")
    func live() async throws {
        let hostGuard = HostGuard(
            boundAddress: IPAddress("127.0.0.1")!,
            port: 0,
            tls: false,
            allowedHosts: ["laptop.tail1234.ts.net"]
        )
        let app = Application(
            router: GatewayApplication.makeRouter(hostGuard: hostGuard),
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
        try await app.test(.live) { client in
            let port = try #require(client.port)
            hostGuard.setBoundPort(port)
            func send(_ method: String, _ headers: [(String, String)]) async throws -> RawHTTP.Response {
                try await RawHTTP.sendOffPool(RawHTTP.request(method, "/healthz", headers: headers), port: port)
            }
            let ok = try await send("GET", [("Host", "127.0.0.1:\(port)")])
            #expect(ok.status == 200)
            #expect(ok.body == "ok\n")
            #expect(try await send("GET", [("Host", "attacker.example:\(port)")]).status == 421)
            #expect(try await send("GET", [("Host", "127.0.0.1.nip.io:\(port)")]).status == 421)
            // HTTP/1.1 without Host: refused, either with an error status or by closing the connection.
            #expect((try? await send("GET", []))?.status != 200)
            #expect(try await send("GET", [("Host", "laptop.tail1234.ts.net")]).status == 200)
            let misdirected = try await send("GET", [("Host", "attacker.example")])
            #expect(!misdirected.body.contains("attacker"))
            #expect(
                try await send("POST", [("Host", "localhost:\(port)"), ("Origin", "http://attacker.example")]).status
                    == 403
            )
            #expect(
                try await send("DELETE", [("Host", "localhost:\(port)"), ("Sec-Fetch-Site", "cross-site")]).status
                    == 403
            )
            // A POST without Origin (curl, scripts) is not a cross-site browser request: the guard lets it
            // through to routing (authentication is the next layer).
            let noOrigin = try await send("POST", [("Host", "localhost:\(port)")])
            #expect(noOrigin.status != 403 && noOrigin.status != 421)
        }
    }
}
