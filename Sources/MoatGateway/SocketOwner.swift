import Foundation
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
        for table in tables {
            guard let text = readAll(table) else { continue }
            if let uid = uid(in: text, localEnd: peerKey, remoteEnd: localKey) { return uid }
        }
        return nil
    }

    /// The whole file, read until end of file: procfs tables report a size of 0 and hand out about a
    /// page per read, so a reader that trusts the size or reads once sees only the first rows.
    static func readAll(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            data.append(contentsOf: buffer[0..<count])
            // 64 MiB is far more than any socket table; stop rather than grow without bound.
            if data.count > 64 << 20 { return nil }
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The `uid` of the row of `table` (the text of one socket table) with these two ends.
    static func uid(in table: String, localEnd: String, remoteEnd: String) -> UInt32? {
        // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …"
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 7, fields[1].uppercased() == localEnd, fields[2].uppercased() == remoteEnd
            else { continue }
            return UInt32(fields[7])
        }
        return nil
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
