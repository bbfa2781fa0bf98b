#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The service manager's notification protocol (sd_notify(3)) without libsystemd: one datagram per
/// message to the `AF_UNIX` socket named by `NOTIFY_SOCKET`.
///
/// `NOTIFY_SOCKET` is an absolute path or, with a leading `@`, a name in the abstract namespace (the `@`
/// becomes a zero byte and the address has no terminating zero). Other forms (`vsock:`, which systemd
/// 254 added for virtual machines) are not supported: the notifier is then absent and `moat serve` logs
/// why. Sending never blocks and never fails the server: a lost message is the manager's timeout.
public struct SystemdNotifier: Sendable, Equatable {
    /// The socket address, as `sun_path` bytes (the first is 0 for an abstract name).
    let pathBytes: [UInt8]
    /// `WATCHDOG_USEC` when it was meant for this process (`WATCHDOG_PID` absent or ours), else nil.
    public let watchdogInterval: Duration?

    /// Why `NOTIFY_SOCKET` was set but cannot be used.
    public struct Unusable: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The notifier the environment asks for: nil when `NOTIFY_SOCKET` is unset or empty (not started by
    /// a service manager that waits for readiness).
    public static func fromEnvironment(
        _ environment: [String: String],
        pid: Int32? = nil
    ) throws(Unusable) -> SystemdNotifier? {
        guard let socket = environment["NOTIFY_SOCKET"], !socket.isEmpty else { return nil }
        var bytes = Array(socket.utf8)
        if bytes.first == UInt8(ascii: "@") {
            bytes[0] = 0
        } else if bytes.first != UInt8(ascii: "/") {
            throw Unusable(
                description: "NOTIFY_SOCKET is neither an absolute path nor an abstract name (@name): "
                    + "only those two are supported")
        }
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        guard bytes.count > 1, bytes.count < capacity, !bytes.dropFirst().contains(0) else {
            throw Unusable(description: "NOTIFY_SOCKET is longer than a unix socket address (\(capacity - 1) bytes)")
        }
        var watchdog: Duration?
        if let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 {
            let owner = environment["WATCHDOG_PID"].flatMap { Int32($0) }
            if owner == nil || owner == (pid ?? getpid()) {
                watchdog = .microseconds(Int64(clamping: usec))
            }
        }
        return SystemdNotifier(pathBytes: bytes, watchdogInterval: watchdog)
    }

    /// Sends `message` (e.g. `READY=1`) as one datagram; false when it could not be sent.
    @discardableResult
    public func send(_ message: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        // A path is sent with its terminating zero (the structure was zeroed); an abstract name is
        // exactly its bytes, so the length stops at its end.
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let length = pathOffset + pathBytes.count + (pathBytes[0] == 0 ? 0 : 1)
        let payload = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                payload.withUnsafeBytes { bytes in
                    sendto(
                        fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, socklen_t(length))
                }
            }
        }
        return sent == payload.count
    }

    /// Removes the variables of the protocol from this process's environment, so a program Moat starts
    /// (a sandboxed tool) cannot speak for it. Call before other threads read the environment.
    public static func unsetEnvironment() {
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] { unsetenv(name) }
    }
}
