import Foundation
import MoatTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `/api/events`: a server-sent event stream that only a short-lived JWT opens.
@Suite(.promptScheduling) struct LiveEventsTests {
    /// Reads from `fd` until `marker` arrives (or the socket's 30 s receive timeout passes), on a thread
    /// of its own: a blocking read on a cooperative thread could starve the server in this process.
    static func read(_ fd: Int32, until marker: String) async -> String {
        await offCooperativePool {
            var text = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !text.contains(marker) {
                let count = Glibc.read(fd, &buffer, buffer.count)
                if count <= 0 { break }
                text += String(decoding: buffer[0..<count], as: UTF8.self)
            }
            return text
        }
    }

    @Test(
        "a live token opens the stream and new audit entries arrive; API tokens, query strings, other purposes and revoked tokens do not"
    )
    func stream() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (cookie, csrf) = try await fixture.setUp(client)
            let issued = try await client.browser(
                "POST", "/api/auth/live-token", cookie: cookie, csrf: csrf, json: #"{"purpose":"events"}"#)
            #expect(issued.status == 200)
            let jwt = try #require(issued.json["token"] as? String)
            #expect(issued.json["expires_in"] as? Int == 300)
            let request = RawHTTP.request(
                "GET", "/api/events",
                headers: [("Host", "127.0.0.1:\(client.port)"), ("Authorization", "Bearer \(jwt)")])
            let fd = try RawHTTP.connect(port: client.port, receiveTimeout: 30)
            defer { close(fd) }
            _ = Array(request.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            // The stream says "ready" once it has noted where the audit log ends: anything appended after
            // that is sent. Waiting for it (not for a guessed time) keeps the order under any load.
            let opened = await Self.read(fd, until: "event: ready")
            let made = try await client.browser(
                "POST", "/api/tokens", cookie: cookie, csrf: csrf, json: #"{"name":"seen-live"}"#)
            #expect(made.status == 201)
            let text = opened + (await Self.read(fd, until: "auth.token.create"))
            #expect(text.contains("HTTP/1.1 200"))
            #expect(text.contains("text/event-stream"))
            #expect(text.contains("event: ready"))
            #expect(text.contains("\"action\":\"auth.token.create\""))
            let apiToken = try #require(made.json["token"] as? String)

            // Not an API token, not from a query string, not a token of another purpose.
            #expect(
                try await client.send("GET", "/api/events", headers: [("Authorization", "Bearer \(apiToken)")]).status
                    == 401)
            #expect(try await client.send("GET", "/api/events?token=\(jwt)").status == 401)
            let socketToken = try await client.browser(
                "POST", "/api/auth/live-token", cookie: cookie, csrf: csrf, json: #"{"purpose":"websocket"}"#)
            let other = try #require(socketToken.json["token"] as? String)
            #expect(
                try await client.send("GET", "/api/events", headers: [("Authorization", "Bearer \(other)")]).status
                    == 401)
            // A live token opens one connection.
            #expect(
                try await client.send("GET", "/api/events", headers: [("Authorization", "Bearer \(jwt)")]).status
                    == 401)
            // Revoke everything ends every live token at once, unused ones too.
            let unused = try await client.browser(
                "POST", "/api/auth/live-token", cookie: cookie, csrf: csrf, json: #"{"purpose":"events"}"#)
            let spare = try #require(unused.json["token"] as? String)
            #expect(
                try await client.browser("POST", "/api/auth/revoke-all", cookie: cookie, csrf: csrf, json: "{}")
                    .status == 204)
            #expect(
                try await client.send("GET", "/api/events", headers: [("Authorization", "Bearer \(spare)")]).status
                    == 401)
        }
    }
}
