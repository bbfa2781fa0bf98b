import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One keep-alive HTTP/1.1 connection to 127.0.0.1 on blocking sockets: enough to poll `/healthz` and
/// to be the suite's own load generator when wrk is not installed. It reads each answer whole (headers,
/// then `Content-Length` bytes) before sending the next request.
final class LoopbackConnection {
    private let socket: Int32
    private var buffer: [UInt8] = []
    /// False once the server said `Connection: close` or the connection failed.
    private(set) var reusable = true

    init?(port: Int) {
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            return nil
        }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        socket = descriptor
    }

    deinit { close(socket) }

    /// The request `GET path` with `headers`, as bytes to send again and again.
    static func request(port: Int, path: String, headers: [String] = []) -> [UInt8] {
        Array(
            (["GET \(path) HTTP/1.1", "Host: 127.0.0.1:\(port)"] + headers + ["", ""]).joined(separator: "\r\n").utf8)
    }

    /// Sends `request` and reads its answer; returns the status, or nil when the connection failed.
    func exchange(_ request: [UInt8]) -> Int? {
        reusable = false
        let sent = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return nil }
        var headerEnd: Int?
        while headerEnd == nil {
            headerEnd = Self.endOfHeaders(buffer)
            if headerEnd == nil, !fill() { return nil }
        }
        guard let end = headerEnd, let head = String(bytes: buffer[..<end], encoding: .utf8) else { return nil }
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        var length = 0
        var closing = false
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].lowercased()
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            if name == "content-length" { length = Int(value) ?? 0 }
            if name == "connection", value.lowercased() == "close" { closing = true }
        }
        let total = end + 4 + length
        while buffer.count < total {
            if !fill() { return nil }
        }
        buffer.removeFirst(total)
        reusable = !closing
        return status
    }

    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16384)
        let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        buffer += chunk[..<count]
        return true
    }

    private static func endOfHeaders(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }
}

/// The suite's own load generator, used when wrk is not installed: `connections` threads, each with one
/// keep-alive connection sending `request` back to back for `duration` seconds.
enum LoopbackLoad {
    struct Outcome {
        var requests: Int
        var failures: Int
        var seconds: Double
        var perSecond: Double { Double(requests) / seconds }
    }

    static func run(port: Int, request: [UInt8], connections: Int, duration: Double) -> Outcome {
        let counts = Mutex<(ok: Int, failed: Int)>((0, 0))
        let done = DispatchGroup()
        let started = Date()
        let deadline = started.addingTimeInterval(duration)
        for _ in 0..<connections {
            done.enter()
            Thread.detachNewThread {
                var ok = 0
                var failed = 0
                var connection = LoopbackConnection(port: port)
                while Date() < deadline {
                    guard let open = connection else {
                        failed += 1
                        connection = LoopbackConnection(port: port)
                        continue
                    }
                    switch open.exchange(request) {
                    case .some(200..<300): ok += 1
                    default: failed += 1
                    }
                    if !open.reusable { connection = LoopbackConnection(port: port) }
                }
                counts.withLock {
                    $0.ok += ok
                    $0.failed += failed
                }
                done.leave()
            }
        }
        done.wait()
        let (ok, failed) = counts.withLock { $0 }
        return Outcome(requests: ok, failures: failed, seconds: Date().timeIntervalSince(started))
    }
}
