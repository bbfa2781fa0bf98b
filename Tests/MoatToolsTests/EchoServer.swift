import MoatTestSupport
import Synchronization

/// An HTTP server on 127.0.0.1 that echoes each request back: its request line, every header and the
/// body, in the response body, and the `Authorization` and `X-Api-Key` values in response headers (as a
/// careless or hostile API would). It records every request it received, as received.
final class EchoServer: Sendable {
    private let server = Mutex<LoopbackHTTPServer?>(nil)

    /// Starts on a free port and returns it.
    func start() async throws -> Int {
        let started = try await LoopbackHTTPServer.start { Self.answer($0) }
        server.withLock { $0 = started }
        return started.port
    }

    func stop() async {
        await server.withLock { $0 }?.stop()
    }

    /// Each request as text: request line, headers, a blank line, the body.
    var requests: [String] { server.withLock { $0 }?.requests.map(\.text) ?? [] }

    static func answer(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Response {
        var headers: [(name: String, value: String)] = [("Content-Type", "text/plain; charset=utf-8")]
        for name in ["Authorization", "X-Api-Key"] {
            if let value = request.header(name) { headers.append(("X-Echo-\(name)", value)) }
        }
        switch request.target {
        case "/redirect":
            headers.append(("Location", "http://169.254.169.254/latest/meta-data/"))
            return .init(status: 307, headers: headers, body: request.text)
        case "/binary":
            headers[0] = ("Content-Type", "application/octet-stream")
            return .init(headers: headers, bytes: [0x68, 0x69, 0xff, 0xfe, 0x21])
        default:
            return .init(headers: headers, body: request.text)
        }
    }
}
