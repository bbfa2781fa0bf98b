import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Ports on 127.0.0.1 for tests that start a server of their own (a model server, a homeserver) or need
/// one where nothing listens.
public enum LoopbackPort {
    /// A TCP socket bound to a port the kernel chose on 127.0.0.1, not listening: connections to it are
    /// refused, and no other socket can take the port while the descriptor stays open.
    public static func bound() throws -> (descriptor: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LoopbackPortError() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw LoopbackPortError()
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A port nothing listens on right now, for a server the test starts next (released at once, so
    /// another process could take it first; use ``bound()`` for a port that must stay closed).
    public static func free() throws -> Int {
        let (fd, port) = try bound()
        close(fd)
        return port
    }
}

/// No loopback port could be bound.
public struct LoopbackPortError: Error, CustomStringConvertible {
    public var description: String { "no loopback port could be bound: \(String(cString: strerror(errno)))" }
}
