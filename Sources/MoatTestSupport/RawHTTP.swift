public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal HTTP/1.1 client over a real TCP socket, sending exactly the bytes a test chooses.
///
/// Regular clients normalize or refuse the forged `Host` and `Origin` headers the guard tests need.
public enum RawHTTP {
    public struct Response: Sendable {
        public let status: Int
        public let headers: [(String, String)]
        public let body: String

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        /// The body as a JSON object, or empty when it is not one.
        public var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
    }

    /// Sends `request` verbatim to `host:port` (IPv4 or IPv6 literal) and reads until the server closes.
    ///
    /// - Parameter source: an IPv4 address to send from (any of 127.0.0.0/8 works on Linux without setup).
    public static func send(
        _ request: String, host: String = "127.0.0.1", port: Int, source: String? = nil
    ) throws -> Response {
        // Generous, as it only bounds a broken run: on a loaded 2-core machine other tests may hold the
        // cooperative threads (and the in-process server with them) for more than a minute.
        let fd = try connect(host: host, port: port, source: source, receiveTimeout: 300)
        defer { close(fd) }
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { throw RawHTTPError("write failed") }
            sent += count
        }
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
        }
        return try parse(String(decoding: received, as: UTF8.self))
    }

    /// ``send(_:host:port:)`` on a thread of its own, for async tests whose server runs in the same
    /// process: a blocking read on a cooperative thread could starve the very server it waits for.
    public static func sendOffPool(
        _ request: String, host: String = "127.0.0.1", port: Int, source: String? = nil
    ) async throws -> Response {
        try await offCooperativePool { try send(request, host: host, port: port, source: source) }
    }

    /// ``sendOffPool(_:host:port:source:)`` under the plain name, so async code that writes
    /// `try await RawHTTP.send(…)` never reads a socket on a cooperative thread.
    public static func send(
        _ request: String, host: String = "127.0.0.1", port: Int, source: String? = nil
    ) async throws -> Response {
        try await sendOffPool(request, host: host, port: port, source: source)
    }

    /// A request with `Connection: close` and the given headers (`Host` included only when given).
    public static func request(
        _ method: String = "GET",
        _ path: String = "/healthz",
        headers: [(String, String)],
        body: String? = nil
    ) -> String {
        var text = "\(method) \(path) HTTP/1.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body {
            text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        } else if method != "GET" && method != "HEAD" {
            text += "Content-Length: 0\r\n"
        }
        return text + "Connection: close\r\n\r\n" + (body ?? "")
    }

    /// A TCP socket connected to `host:port` (IPv4 or IPv6 literal), optionally from the IPv4 address
    /// `source`; the caller closes it. A connect waits at most `connectTimeout` seconds.
    public static func connect(
        host: String = "127.0.0.1", port: Int, source: String? = nil, receiveTimeout: Int = 60,
        connectTimeout: Int = 60
    ) throws -> Int32 {
        let isV6 = host.contains(":")
        let fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError("socket failed: errno \(errno)") }
        var receive = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receive, socklen_t(MemoryLayout<timeval>.size))
        // Linux bounds connect(2) by the send timeout.
        var send = timeval(tv_sec: connectTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send, socklen_t(MemoryLayout<timeval>.size))
        if let source, !isV6 {
            let bound = withAddress(source, port: 0) { bind(fd, $0, $1) }
            guard bound == 0 else {
                close(fd)
                throw RawHTTPError("bind to \(source) failed: errno \(errno)")
            }
        }
        let connected = withAddress(host, port: port) { Glibc.connect(fd, $0, $1) }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw RawHTTPError("connect to \(host):\(port) failed: errno \(code)")
        }
        return fd
    }

    /// Calls `body` with the socket address of `host` (an IPv4 or IPv6 literal) and `port`.
    private static func withAddress(
        _ host: String, port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) -> Int32 {
        if host.contains(":") {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET6, host, &address.sin6_addr)
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    static func parse(_ text: String) throws -> Response {
        guard let headEnd = text.range(of: "\r\n\r\n") else { throw RawHTTPError("no complete response: \(text)") }
        let lines = text[..<headEnd.lowerBound].components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw RawHTTPError("bad status line") }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let body = String(text[headEnd.upperBound...])
        let chunked = headers.contains {
            $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked")
        }
        return Response(status: status, headers: headers, body: chunked ? try dechunked(body) : body)
    }

    /// A chunked body's data (RFC 9112 §7.1): hex size lines, each chunk, up to the zero-size one.
    static func dechunked(_ body: String) throws -> String {
        var bytes = ArraySlice(Array(body.utf8))
        var data: [UInt8] = []
        while true {
            guard
                let lineEnd = bytes.indices.first(where: { bytes[$0] == 13 && bytes.index(after: $0) < bytes.endIndex })
            else { throw RawHTTPError("a chunked body without its last chunk") }
            let sizeText = String(decoding: bytes[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw RawHTTPError("a bad chunk size line")
            }
            let start = lineEnd + 2
            if size == 0 { return String(decoding: data, as: UTF8.self) }
            guard start + size + 2 <= bytes.endIndex else { throw RawHTTPError("a chunk cut short") }
            data += bytes[start..<(start + size)]
            bytes = bytes[(start + size + 2)...]
        }
    }
}

public struct RawHTTPError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
