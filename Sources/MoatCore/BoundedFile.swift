import Foundation

/// Reads a whole file with plain `open`/`read`, up to a size limit: the one loop behind every small file
/// Moat reads whole (the config file, PEM files, the kernel's socket tables).
///
/// It reads until end of file rather than trusting the file's size, because procfs files report a size
/// of 0 and hand out about a page per `read`.
public enum BoundedFile {
    /// Why a read failed; callers turn it into their own message.
    public enum Failure: Error, Equatable {
        /// `open` failed with this errno.
        case open(Int32)
        /// `read` failed with this errno.
        case read(Int32)
        /// The file holds more than the limit.
        case tooLarge
    }

    /// The bytes of `path`, at most `limit` of them.
    public static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .open(errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .read(errno)
            }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            if bytes.count > limit { throw .tooLarge }
        }
    }

    /// The text of `errno` (`strerror`).
    public static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
