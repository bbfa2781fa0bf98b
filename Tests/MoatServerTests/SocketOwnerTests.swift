import Foundation
import NIOCore
import Testing

@testable import MoatHTTP

/// The peer-socket owner lookup on real connections: a loopback listener and a client in this process,
/// then the kernel's tables asked who owns the client's end.
@Suite struct SocketOwnerTests {
    /// A connected loopback pair: the client's and the listener's addresses, kept open while `body` runs.
    static func withConnection<T>(
        family: Int32, host: String, closingClient: Bool = false, _ body: (SocketAddress, SocketAddress) throws -> T
    ) throws -> T {
        let listener = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        let server = try SocketAddress(ipAddress: host, port: 0)
        try server.withSockAddr { address, size in
            guard bind(listener, address, socklen_t(size)) == 0, listen(listener, 1) == 0 else {
                throw SocketOwnerTestError("bind/listen failed: errno \(errno)")
            }
        }
        let bound = try SocketAddress(ipAddress: host, port: Self.port(of: listener))
        var client = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        defer { if client >= 0 { close(client) } }
        try bound.withSockAddr { address, size in
            guard connect(client, address, socklen_t(size)) == 0 else {
                throw SocketOwnerTestError("connect failed: errno \(errno)")
            }
        }
        let accepted = accept(listener, nil, nil)
        defer { close(accepted) }
        let peer = try SocketAddress(ipAddress: host, port: Self.port(of: client))
        if closingClient {
            close(client)
            client = -1
        }
        return try body(peer, bound)
    }

    static func port(of fd: Int32) throws -> Int {
        var storage = sockaddr_storage()
        var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
        }
        guard result == 0 else { throw SocketOwnerTestError("getsockname failed") }
        // sin_port and sin6_port sit at the same offset, right after the family.
        let port = withUnsafeBytes(of: &storage) { $0.loadUnaligned(fromByteOffset: 2, as: UInt16.self) }
        return Int(UInt16(bigEndian: port))
    }

    @Test("a loopback IPv4 connection made by this process belongs to this process's user")
    func ipv4() throws {
        try Self.withConnection(family: AF_INET, host: "127.0.0.1") { peer, local in
            #expect(SocketOwner.uid(peer: peer, local: local) == getuid())
            // The listener's end is not the peer: asking the other way round finds this process's
            // accepted socket, and a port nobody uses finds nothing.
            let nobody = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
            #expect(SocketOwner.uid(peer: nobody, local: local) == nil)
        }
    }

    @Test("a connection listed after the first page of the table is found (procfs hands out a page per read)")
    func longTable() throws {
        // 40 open connections make 80+ rows, well past one 4 KiB page; the one asked about comes last.
        func nest(_ depth: Int) throws {
            try Self.withConnection(family: AF_INET, host: "127.0.0.1") { peer, local in
                if depth > 0 { return try nest(depth - 1) }
                #expect(SocketOwner.readAll("/proc/net/tcp")?.utf8.count ?? 0 > 8192)
                #expect(SocketOwner.uid(peer: peer, local: local) == getuid())
            }
        }
        try nest(40)
    }

    @Test("a client that sent and closed at once is no one's (its row lingers as uid 0, inode 0)")
    func closedClient() throws {
        try Self.withConnection(family: AF_INET, host: "127.0.0.1", closingClient: true) { peer, local in
            #expect(SocketOwner.uid(peer: peer, local: local) == nil)
        }
    }

    @Test("a loopback IPv6 connection is found in the IPv6 table")
    func ipv6() throws {
        try Self.withConnection(family: AF_INET6, host: "::1") { peer, local in
            #expect(SocketOwner.uid(peer: peer, local: local) == getuid())
        }
    }

    @Test("the table format: host-order address words and a hex port; the uid column is the eighth")
    func tableFormat() throws {
        let table = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:4965 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0 20 4 30 10 -1
               1: 0100007F:C350 0100007F:4965 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1
            """
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 0xC350)
        let local = try SocketAddress(ipAddress: "127.0.0.1", port: 0x4965)
        #expect(SocketOwner.key(peer) == "0100007F:C350")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("moat-tcp-\(getpid())").path
        try table.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(SocketOwner.uid(peer: peer, local: local, tables: [path]) == 1000)
        #expect(SocketOwner.uid(peer: local, local: peer, tables: [path]) == 0)
        #expect(SocketOwner.uid(peer: peer, local: local, tables: ["/nonexistent"]) == nil)
        let v6 = try SocketAddress(ipAddress: "::1", port: 80)
        #expect(SocketOwner.key(v6) == "00000000000000000000000001000000:0050")
        // A dual-stack listener's view of an IPv4 peer finds the peer's IPv4 row.
        let mappedPeer = try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 0xC350)
        let mappedLocal = try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 0x4965)
        #expect(SocketOwner.uid(peer: mappedPeer, local: mappedLocal, tables: [path]) == 1000)
    }

    @Test("a closed socket (TIME_WAIT, FIN_WAIT2: uid 0, inode 0) or a doubled row is not an owner")
    func closedSockets() throws {
        let header =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        let timeWait =
            "   0: 0100007F:C350 0100007F:4965 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000\n"
        let finWait =
            "   1: 0100007F:C350 0100007F:4965 05 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000\n"
        let open =
            "   2: 0100007F:C350 0100007F:4965 01 00000000:00000000 00:00000000 00000000  1000        0 7 1 0000000000000000\n"
        let openZeroInode =
            "   3: 0100007F:C350 0100007F:4965 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000\n"
        #expect(SocketOwner.uid(in: header + timeWait, localEnd: "0100007F:C350", remoteEnd: "0100007F:4965") == nil)
        #expect(SocketOwner.uid(in: header + finWait, localEnd: "0100007F:C350", remoteEnd: "0100007F:4965") == nil)
        #expect(
            SocketOwner.uid(in: header + openZeroInode, localEnd: "0100007F:C350", remoteEnd: "0100007F:4965") == nil)
        #expect(
            SocketOwner.uid(in: header + timeWait + open, localEnd: "0100007F:C350", remoteEnd: "0100007F:4965")
                == 1000)
        #expect(
            SocketOwner.uid(in: header + open + open, localEnd: "0100007F:C350", remoteEnd: "0100007F:4965") == nil)
    }
}

struct SocketOwnerTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
