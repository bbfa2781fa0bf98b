import Foundation
import MoatCore
public import NIOCore

/// Which user owns the other end of a TCP connection whose two ends are both on this host, read from
/// the kernel's socket tables (`/proc/net/tcp`, `/proc/net/tcp6`).
///
/// A request through `tailscale serve` arrives from tailscaled's own socket, which runs as root; any other
/// local process can connect to 127.0.0.1 and write the same headers. The socket table tells them apart:
/// the peer's socket is the row whose local end is the peer address and whose remote end is ours, and
/// its `uid` column is the user that created it.
public enum SocketOwner {
    /// The uid owning the socket at `peer` that is connected to `local`, or nil when the tables do not
    /// list it (not a connection on this host, or the tables cannot be read).
    public static func uid(
        peer: SocketAddress, local: SocketAddress, tables: [String] = ["/proc/net/tcp", "/proc/net/tcp6"]
    ) -> UInt32? {
        guard let peerKey = key(peer), let localKey = key(local) else { return nil }
        // A dual-stack listener sees an IPv4 peer as ::ffff:a.b.c.d; the peer's own IPv4 socket is listed
        // in the IPv4 form.
        var pairs = [(peerKey, localKey)]
        if let peer4 = mappedIPv4Key(peer), let local4 = mappedIPv4Key(local) { pairs.insert((peer4, local4), at: 0) }
        for table in tables {
            guard let text = readAll(table) else { continue }
            for (peerEnd, localEnd) in pairs {
                if let uid = uid(in: text, localEnd: peerEnd, remoteEnd: localEnd) { return uid }
            }
        }
        return nil
    }

    /// The whole table (``BoundedFile`` reads to end of file: procfs hands out about a page per read, so
    /// a single read would see only the first rows); 64 MiB is far more than any socket table.
    static func readAll(_ path: String) -> String? {
        (try? BoundedFile.read(path, limit: 64 << 20)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The `uid` of the row of `table` (the text of one socket table) with these two ends.
    ///
    /// Only an open connection counts: state `01` (ESTABLISHED) with a real inode. The kernel lists a
    /// closed socket still waiting out TIME_WAIT (or FIN_WAIT2 after its owner closed it) with uid 0 and
    /// inode 0, so a program that sends a request and closes at once would otherwise pass as root. More
    /// than one matching open row (which the kernel does not produce) is refused too.
    static func uid(in table: String, localEnd: String, remoteEnd: String) -> UInt32? {
        // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …"
        var found: UInt32?
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, fields[1].uppercased() == localEnd, fields[2].uppercased() == remoteEnd,
                fields[3] == "01", fields[9] != "0"
            else { continue }
            guard found == nil, let uid = UInt32(fields[7]) else { return nil }
            found = uid
        }
        return found
    }

    /// The IPv4 form of an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), or nil.
    static func mappedIPv4Key(_ address: SocketAddress) -> String? {
        guard case .v6(let v6) = address else { return nil }
        var raw = v6.address.sin6_addr
        let bytes = withUnsafeBytes(of: &raw) { Array($0) }
        guard bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
        let v4 = try? SocketAddress(
            ipAddress: bytes[12..<16].map(String.init).joined(separator: "."), port: address.port ?? 0)
        return v4.flatMap(key)
    }

    /// An address as the socket tables print it: the address as 32-bit words in host byte order, each
    /// as eight hex digits, then `:` and the port as four hex digits.
    static func key(_ address: SocketAddress) -> String? {
        func hex<T: BinaryInteger>(_ value: T, _ width: Int) -> String {
            let digits = String(value, radix: 16, uppercase: true)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        switch address {
        case .v4(let v4):
            let port = UInt16(bigEndian: v4.address.sin_port)
            return hex(v4.address.sin_addr.s_addr, 8) + ":" + hex(port, 4)
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            let words = withUnsafeBytes(of: &raw) { bytes in
                (0..<4).map { bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) }
            }
            let port = UInt16(bigEndian: v6.address.sin6_port)
            return words.map { hex($0, 8) }.joined() + ":" + hex(port, 4)
        case .unixDomainSocket:
            return nil
        }
    }
}
