public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Many client connections to one loopback port, opened and held (bounded in count and time) by
/// `moat-test-helper hold-connections`, a process of their own.
public final class HeldConnections {
    public private(set) var descriptors: [Int32] = []

    /// Raises this process's own soft open-file limit to at least `count` (within its hard limit).
    public static func allowDescriptors(_ count: Int) throws {
        var limit = rlimit()
        _ = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        guard limit.rlim_cur < rlim_t(count) else { return }
        guard limit.rlim_max >= rlim_t(count) else {
            throw RawHTTPError("\(count) open files are needed; the hard limit is \(limit.rlim_max)")
        }
        limit.rlim_cur = rlim_t(count)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Opens up to `count` connections, giving up after `seconds` in all (each connect waits 2 s at most).
    public init(count: Int, port: Int, within seconds: TimeInterval) {
        let deadline = Date().addingTimeInterval(seconds)
        for _ in 0..<count where Date() < deadline {
            guard let fd = try? RawHTTP.connect(port: port, connectTimeout: 2) else { continue }
            descriptors.append(fd)
        }
    }

    public var opened: Int { descriptors.count }

    /// Writes `text` on every connection (without SIGPIPE on those the server closed already).
    public func sendOnEach(_ text: String) {
        let bytes = Array(text.utf8)
        for fd in descriptors {
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        }
    }

    /// Reads and discards until the server has closed every connection or `seconds` pass; returns how many
    /// are still open.
    public func waitUntilClosedByServer(within seconds: TimeInterval) async -> Int {
        var open = Set(descriptors)
        var buffer = [UInt8](repeating: 0, count: 16_384)
        let deadline = Date().addingTimeInterval(seconds)
        while !open.isEmpty && Date() < deadline {
            for fd in open {
                while true {
                    let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                    if count > 0 { continue }
                    if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { open.remove(fd) }
                    break
                }
            }
            if !open.isEmpty { try? await Task.sleep(for: .milliseconds(500)) }
        }
        return open.count
    }

    public func closeAll() {
        for fd in descriptors { close(fd) }
        descriptors = []
    }

    deinit { closeAll() }
}
