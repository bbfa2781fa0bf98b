import Foundation

/// Reads a whole file with plain `open`/`read`, up to a size limit: the one loop behind every small file
/// Moat reads whole (the config file, PEM files, the kernel's socket tables).
///
/// It reads until end of file rather than trusting the file's size, because procfs files report a size
/// of 0 and hand out about a page per `read`. Only regular files are read: the file is opened without
/// blocking and checked with `fstat` before the first byte, so a FIFO (which would block start-up until
/// another process writes to it), a device or a directory is refused at once.
public enum BoundedFile {
    /// Why a read failed; callers turn it into their own message.
    public enum Failure: Error, Equatable {
        /// `open` failed with this errno (`ELOOP` when the path is a symbolic link and links are not followed).
        case open(Int32)
        /// `read` failed with this errno.
        case read(Int32)
        /// The file holds more than the limit.
        case tooLarge
        /// The path is not a regular file; the text names what it is, e.g. "a FIFO (named pipe)".
        case notRegular(String)
    }

    /// Who owns a file that was read, and its `st_mode` (type and permission bits).
    public struct Status: Sendable, Equatable {
        public let owner: UInt32
        public let mode: UInt32
    }

    /// The bytes of `path`, at most `limit` of them.
    public static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        try readWithStatus(path, limit: limit, followLinks: true).bytes
    }

    /// The bytes of `path` and the status (`fstat`) of the very file they were read from, so a caller can
    /// check its owner and mode without a race against a rename; with `followLinks` false a symbolic link
    /// in place of the file is refused (`open` fails with `ELOOP`).
    public static func readWithStatus(
        _ path: String, limit: Int, followLinks: Bool
    ) throws(Failure) -> (bytes: [UInt8], status: Status) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (followLinks ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { throw .open(errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .read(errno) }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG else { throw .notRegular(describe(type: type)) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .read(errno)
            }
            if count == 0 { return (bytes, Status(owner: UInt32(status.st_uid), mode: UInt32(status.st_mode))) }
            bytes += chunk[0..<count]
            if bytes.count > limit { throw .tooLarge }
        }
    }

    /// The text of `errno` (`strerror`).
    public static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// What a file of this `S_IFMT` type is, in words.
    static func describe(type: mode_t) -> String {
        switch type {
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFDIR: "a directory"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "not a regular file"
        }
    }
}
