public import Foundation
public import MoatAgent
import MoatCore

#if canImport(Glibc)
    // Foundation's headers declare `struct stat` first; member visibility wants the declaring module.
    import CoreFoundation
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `moat` CLI's side of the admin socket: blocking calls, since the CLI is synchronous.
///
/// The wire format is described at the top of `AdminProtocol.swift`. The client also checks who is
/// listening: a socket served by a process of another user (not this user, not root) is refused, so a
/// socket planted in a shared directory cannot collect requests.
public enum AdminClient {
    /// True when `path` is a socket file left by a server that is gone (a connect is refused): safe to
    /// remove, as `moat serve` does at start.
    public static func isStaleSocket(at path: String) -> Bool {
        UnixDomainSocket.probe(path) == .stale
    }

    /// Whether a server is accepting connections on `path` (a socket exists there and a connect succeeds).
    ///
    /// Never blocks for long: the probe connects without waiting and sends nothing.
    public static func isServerListening(at path: String) -> Bool {
        UnixDomainSocket.probe(path) == .listening
    }

    /// Sends one operation and waits for the response.
    ///
    /// - Parameters:
    ///   - operation: the operation to run.
    ///   - path: the admin socket (`moat.sock` in the state directory).
    ///   - timeout: how long the whole exchange may take, in seconds.
    ///   - onEvent: for an operation that streams (``AdminOperation/streamsEvents``), each event of its
    ///     turn as it arrives, before the response.
    /// - Throws: ``GatewayError`` with a message that says what to do (start `moat serve`, check the
    ///   state directory, retry).
    public static func send(
        _ operation: AdminOperation, to path: String, timeout: TimeInterval = 30,
        onEvent: (TurnEventView) -> Void = { _ in }
    ) throws -> AdminResponse {
        // The line may carry a password: wiped once sent.
        var line = try AdminProtocol.request(operation)
        defer { AdminProtocol.wipe(&line) }
        let name = operation.name.rawValue
        guard line.count - 1 <= AdminProtocol.maximumRequestBytes else {
            throw GatewayError(
                .configuration,
                "the admin request \(name) is larger than 64 KiB; shorten its arguments"
            )
        }
        let deadline = Date().addingTimeInterval(max(timeout, 0.001))
        let fd = try UnixDomainSocket.connect(path, deadline: deadline)
        defer { close(fd) }
        if let server = UnixDomainSocket.peerCredentials(fd),
            !AdminSocketServer.admits(peerUID: server.uid, allowedUID: geteuid())
        {
            throw GatewayError(
                .unsafeState,
                "refusing to talk to \(path): it is served by uid \(server.uid), not by you or root. "
                    + "Remove it and start `moat serve` again."
            )
        }
        try UnixDomainSocket.writeAll(fd, line, deadline: deadline, path: path)
        var reader = UnixDomainSocket.LineReader(fd: fd, path: path)
        var reply = try reader.next(limit: AdminProtocol.maximumResponseBytes, deadline: deadline)
        // Only a streamed answer has event lines; anywhere else one is not a response.
        while operation.streamsEvents,
            let frame = try? JSONDecoder().decode(AdminEventFrame.self, from: Data(reply))
        {
            onEvent(frame.event)
            reply = try reader.next(limit: AdminProtocol.maximumResponseBytes, deadline: deadline)
        }
        do {
            return try JSONDecoder().decode(AdminResponse.self, from: Data(reply))
        } catch {
            throw GatewayError(
                .startup,
                "the server on \(path) sent an answer that is not an admin response; "
                    + "check that `moat serve` and `moat` are the same version"
            )
        }
    }
}

/// The POSIX calls behind the admin socket and its client, kept in one place: address building,
/// probing, binding with a private mode, peer credentials, and reads and writes with a deadline.
enum UnixDomainSocket {
    /// What is at a socket path.
    enum Probe: Equatable {
        /// Nothing: the path does not exist.
        case missing
        /// Something that is not a socket (a file, a directory, a symbolic link).
        case notSocket
        /// A socket with a server accepting connections.
        case listening
        /// A socket file left behind by a server that is gone (connect is refused).
        case stale
        /// A socket that could not be probed (for example, no permission); `errno` says why.
        case unreachable(Int32)
    }

    /// The device and inode of a file, to recognise the socket this process created.
    struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    /// The kernel's `struct ucred` (Linux), which Swift's Glibc module does not import.
    struct PeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// The socket type for `socket(2)`, close-on-exec where the platform allows it at creation.
    private static var streamType: Int32 {
        #if os(Linux)
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
            SOCK_STREAM
        #endif
    }

    /// Calls `body` with a `sockaddr_un` for `path`; nil when the path does not fit (`sun_path` is about
    /// 108 bytes on Linux).
    static func withAddress<Result>(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result
    ) -> Result? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    /// What `lstat` says about `path`: its type and identity.
    static func fileInfo(_ path: String) -> (isSocket: Bool, identity: FileIdentity, mode: UInt32, owner: UInt32)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        let type = UInt32(info.st_mode) & UInt32(Glibc.S_IFMT)
        return (
            type == UInt32(Glibc.S_IFSOCK),
            FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)),
            UInt32(info.st_mode) & 0o7777,
            UInt32(info.st_uid)
        )
    }

    /// Looks at `path` without changing it: a non-blocking connect tells a live server from a stale file.
    static func probe(_ path: String) -> Probe {
        guard let info = fileInfo(path) else { return errno == ENOENT ? .missing : .unreachable(errno) }
        guard info.isSocket else { return .notSocket }
        let fd = socket(AF_UNIX, streamType, 0)
        guard fd >= 0 else { return .unreachable(errno) }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let result = withAddress(path) { posixConnect(fd, $0, $1) }
        switch result {
        case 0:
            return .listening
        case nil:
            return .unreachable(ENAMETOOLONG)
        default:
            // EAGAIN: the listen backlog is full, so a server is there.
            if errno == EAGAIN || errno == EINPROGRESS { return .listening }
            if errno == ECONNREFUSED { return .stale }
            return .unreachable(errno)
        }
    }

    /// Creates a socket bound to `path` that only its owner can connect to, and returns its descriptor
    /// (not listening yet).
    ///
    /// The umask is 077 while `bind(2)` creates the file, so the socket is never accessible to others,
    /// not even between `bind` and `chmod`; the mode is then set to 0600 and checked. The umask is
    /// process-wide: a file another thread creates in that instant gets a narrower mode, never a wider one.
    static func bindPrivate(_ path: String) throws(GatewayError) -> (fd: Int32, identity: FileIdentity) {
        let fd = socket(AF_UNIX, streamType, 0)
        guard fd >= 0 else {
            throw GatewayError(.startup, "cannot create the admin socket: \(reason(errno))")
        }
        let previousMask = umask(0o077)
        let bound = withAddress(path) { posixBind(fd, $0, $1) }
        let bindErrno = errno
        umask(previousMask)
        guard let bound else {
            close(fd)
            throw GatewayError(
                .configuration,
                "the admin socket path \(path) is too long for a unix socket (at most 107 bytes); "
                    + "use a shorter MOAT_HOME or state directory"
            )
        }
        guard bound == 0 else {
            close(fd)
            throw GatewayError(.startup, "cannot create the admin socket \(path): \(reason(bindErrno))")
        }
        guard chmod(path, 0o600) == 0, let info = fileInfo(path), info.isSocket, info.mode & 0o077 == 0,
            info.owner == UInt32(geteuid())
        else {
            close(fd)
            unlink(path)
            throw GatewayError(
                .unsafeState,
                "the admin socket \(path) could not be made private to you (mode 0600); "
                    + "check the state directory's owner and file system"
            )
        }
        return (fd, info.identity)
    }

    /// Removes `path` if it is still the socket this process created.
    static func unlinkIfSame(_ path: String, identity: FileIdentity) {
        guard let info = fileInfo(path), info.isSocket, info.identity == identity else { return }
        unlink(path)
    }

    /// The credentials the kernel recorded for the peer of a connected unix socket.
    static func peerCredentials(_ fd: Int32) -> AdminPeer? {
        #if os(Linux)
            var credentials = PeerCredentials()
            var length = socklen_t(MemoryLayout<PeerCredentials>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
                length == socklen_t(MemoryLayout<PeerCredentials>.size)
            else { return nil }
            return AdminPeer(uid: credentials.uid, pid: credentials.pid)
        #else
            return nil
        #endif
    }

    /// Connects to the server at `path`, waiting no later than `deadline`.
    static func connect(_ path: String, deadline: Date) throws(GatewayError) -> Int32 {
        guard let info = fileInfo(path) else {
            throw GatewayError(
                .startup,
                "moat serve is not running (no admin socket at \(path)); start it with `moat serve`"
            )
        }
        guard info.isSocket else {
            throw GatewayError(
                .unsafeState,
                "\(path) is not a socket; move it away and start `moat serve` again"
            )
        }
        let fd = socket(AF_UNIX, streamType, 0)
        guard fd >= 0 else {
            throw GatewayError(.startup, "cannot create a socket: \(reason(errno))")
        }
        // For unix sockets the send timeout also bounds a connect that waits for a full backlog.
        setTimeout(fd, SO_SNDTIMEO, until: deadline)
        let result = withAddress(path) { posixConnect(fd, $0, $1) }
        let connectErrno = errno
        guard let result else {
            close(fd)
            throw GatewayError(.configuration, "the admin socket path \(path) is too long for a unix socket")
        }
        guard result == 0 else {
            close(fd)
            switch connectErrno {
            case ECONNREFUSED:
                throw GatewayError(
                    .startup,
                    "moat serve is not running (\(path) is left over from an earlier run); start it with `moat serve`"
                )
            case EACCES, EPERM:
                throw GatewayError(
                    .unsafeState,
                    "permission denied on \(path): run `moat` as the user who runs `moat serve`"
                )
            case EAGAIN, EWOULDBLOCK, ETIMEDOUT:
                throw GatewayError(.startup, "moat serve at \(path) is busy and did not accept in time; try again")
            default:
                throw GatewayError(.startup, "cannot connect to moat serve at \(path): \(reason(connectErrno))")
            }
        }
        return fd
    }

    /// Writes all of `bytes`, failing after `deadline`.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], deadline: Date, path: String) throws(GatewayError) {
        var sent = 0
        while sent < bytes.count {
            guard setTimeout(fd, SO_SNDTIMEO, until: deadline) else {
                throw GatewayError(.startup, "moat serve at \(path) did not take the request in time; try again")
            }
            // MSG_NOSIGNAL: a server that closed early must not kill the CLI with SIGPIPE.
            let count = bytes[sent...].withUnsafeBytes { posixSend(fd, $0.baseAddress, $0.count, noSignal) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let failure = errno
                // The server stopped reading (it refused the peer, or the request was too large); the
                // answer it wrote before closing is still readable and says why.
                if failure == EPIPE || failure == ECONNRESET { return }
                if failure == EAGAIN || failure == EWOULDBLOCK {
                    throw GatewayError(.startup, "moat serve at \(path) did not take the request in time; try again")
                }
                throw GatewayError(.startup, "sending to moat serve at \(path) failed: \(reason(failure))")
            }
            sent += count
        }
    }

    /// Reads a connection line by line, keeping what arrived after a line for the next one.
    struct LineReader {
        let fd: Int32
        let path: String
        private var buffered: [UInt8] = []

        init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        /// The next line (without its newline), failing after `deadline`, past `limit` bytes, or when
        /// the server closes before a whole line.
        mutating func next(limit: Int, deadline: Date) throws(GatewayError) -> [UInt8] {
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                    guard newline <= limit else { break }
                    let line = Array(buffered[..<newline])
                    buffered.removeFirst(newline + 1)
                    return line
                }
                guard buffered.count <= limit else { break }
                guard setTimeout(fd, SO_RCVTIMEO, until: deadline) else {
                    throw GatewayError(.startup, "moat serve at \(path) did not answer in time; try again")
                }
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count < 0 {
                    let failure = errno
                    if failure == EAGAIN || failure == EWOULDBLOCK {
                        throw GatewayError(.startup, "moat serve at \(path) did not answer in time; try again")
                    }
                    throw GatewayError(.startup, "reading from moat serve at \(path) failed: \(reason(failure))")
                }
                if count == 0 {
                    throw GatewayError(
                        .startup,
                        "moat serve at \(path) closed the connection without an answer; see its log"
                    )
                }
                buffered += chunk[0..<count]
            }
            throw GatewayError(
                .startup, "moat serve at \(path) sent an answer larger than \(limit / 1024 / 1024) MiB")
        }
    }

    /// Sets a send or receive timeout to the time left until `deadline`; false when none is left.
    @discardableResult
    static func setTimeout(_ fd: Int32, _ option: Int32, until deadline: Date) -> Bool {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { return false }
        let seconds = Int(left)
        // A zero timeval means "wait forever": never set one.
        let micro = max(Int((left - Double(seconds)) * 1_000_000), seconds == 0 ? 1 : 0)
        var value = timeval(tv_sec: seconds, tv_usec: .init(micro))
        return setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size)) == 0
    }

    private static var noSignal: Int32 {
        #if os(Linux)
            Int32(MSG_NOSIGNAL)
        #else
            0
        #endif
    }

    static func reason(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}

// `connect` and `send` are also names of methods above; these name the C calls unambiguously.
private func posixBind(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    bind(fd, address, length)
}

private func posixConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}

private func posixSend(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    send(fd, bytes, count, flags)
}
