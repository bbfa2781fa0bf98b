import Foundation
import Logging
import MoatAdmin
import MoatApp
import MoatAuth
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct AdminSocketTests {
    /// What the server's callbacks saw.
    actor Recorder {
        var requests: [(AdminOperation.Name, AdminPeer)] = []
        var refused: [AdminPeer] = []

        func record(_ operation: AdminOperation, _ peer: AdminPeer) { requests.append((operation.name, peer)) }
        func refuse(_ peer: AdminPeer) { refused.append(peer) }
    }

    /// The client's limit for answers the test expects: it only bounds a broken run (a loaded 2-core machine
    /// has kept the in-process server from answering for more than the CLI's 30 s).
    static let generous: TimeInterval = 300

    static let quiet = Logger(label: "moat.test.admin") { _ in SwiftLogNoOpLogHandler() }

    static func makeServer(
        _ path: String,
        _ recorder: Recorder,
        readTimeout: Duration = .seconds(120)
    ) -> AdminSocketServer {
        AdminSocketServer(
            path: path,
            handler: { operation, peer in
                await recorder.record(operation, peer)
                var name = "-"
                if case .tokenCreate(let tokenName, _, _) = operation { name = tokenName }
                return .success(.tokenRevoked(prefix: "did \(operation.name.rawValue) for \(name)"))
            },
            onRefused: { peer in await recorder.refuse(peer) },
            logger: quiet,
            readTimeout: readTimeout
        )
    }

    /// Runs `server` until `body` is done, then stops it by cancellation (which `run()` treats like a
    /// graceful shutdown: the listener closes, connections in progress finish, the socket file goes).
    static func withRunningServer<Result: Sendable>(
        _ server: AdminSocketServer,
        at path: String,
        _ body: () async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await server.run() }
            var waited = Duration.zero
            while !AdminClient.isServerListening(at: path) {
                try await Task.sleep(for: .milliseconds(20))
                waited += .milliseconds(20)
                // Generous: a loaded 2-core machine can be slow to schedule the server.
                guard waited < .seconds(60) else { throw Timeout() }
            }
            let result: Result
            do {
                result = try await body()
            } catch {
                tasks.cancelAll()
                try? await tasks.waitForAll()
                throw error
            }
            tasks.cancelAll()
            try await tasks.waitForAll()
            return result
        }
    }

    struct Timeout: Error {}

    /// Runs a blocking call on a thread of its own, so it cannot starve the in-process server.
    @Test("a request and its response make the round trip, with the peer's uid and pid")
    func roundTrip() async throws {
        let directory = TemporaryDirectory("moat-admin")
        let path = directory.file("moat.sock")
        let recorder = Recorder()
        let response = try await Self.withRunningServer(Self.makeServer(path, recorder), at: path) {
            try await offCooperativePool {
                try AdminClient.send(
                    .tokenCreate(name: "ci", scope: .read, expiry: .seconds(3600)), to: path, timeout: Self.generous)
            }
        }
        #expect(response == AdminResponse(status: 0, result: .tokenRevoked(prefix: "did token.create for ci")))
        let requests = await recorder.requests
        #expect(requests.count == 1)
        #expect(requests.first?.0 == .tokenCreate)
        #expect(requests.first?.1 == AdminPeer(uid: UInt32(geteuid()), pid: getpid()))
        #expect(await recorder.refused.isEmpty)
        // Removed on shutdown.
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("the wire format: one JSON line each way, error is an explicit null, params may be left out")
    func wireFormat() async throws {
        let directory = TemporaryDirectory("moat-admin")
        let path = directory.file("moat.sock")
        let reply = try await Self.withRunningServer(Self.makeServer(path, Recorder()), at: path) {
            try await offCooperativePool {
                try RawUnixClient.exchange(path, Array(#"{"op": "owner.revoke-all"}"#.utf8) + [10])
            }
        }
        #expect(
            reply == #"{"error":null,"result":{"tokenRevoked":{"prefix":"did owner.revoke-all for -"}},"status":0}"#
                + "\n")
    }

    @Test("the socket file is a socket with mode 0600")
    func socketMode() async throws {
        let directory = TemporaryDirectory("moat-admin")
        let path = directory.file("moat.sock")
        let mode = try await Self.withRunningServer(Self.makeServer(path, Recorder()), at: path) {
            var info = stat()
            #expect(lstat(path, &info) == 0)
            #expect(UInt32(info.st_mode) & UInt32(S_IFMT) == UInt32(S_IFSOCK))
            return UInt32(info.st_mode) & 0o7777
        }
        #expect(mode == 0o600)
    }

    @Test("a second server on the same path refuses to start while the first runs, and leaves it working")
    func secondServerRefused() async throws {
        let directory = TemporaryDirectory("moat-admin")
        let path = directory.file("moat.sock")
        try await Self.withRunningServer(Self.makeServer(path, Recorder()), at: path) {
            let error = await #expect(throws: GatewayError.self) {
                try await Self.makeServer(path, Recorder()).run()
            }
            #expect(error?.message.hasPrefix("another moat serve is running: \(path)") == true)
            let response = try await offCooperativePool {
                try AdminClient.send(.ownerStatus, to: path, timeout: Self.generous)
            }
            #expect(response.status == 0)
        }
    }

    @Test("a stale socket file left by a crashed server is replaced")
    func staleSocketReplaced() async throws {
        let directory = TemporaryDirectory("moat-admin")
        let path = directory.file("moat.sock")
        try RawUnixClient.leaveStaleSocket(at: path)
        #expect(!AdminClient.isServerListening(at: path))
        let response = try await Self.withRunningServer(Self.makeServer(path, Recorder()), at: path) {
            try await offCooperativePool { try AdminClient.send(.ownerStatus, to: path, timeout: Self.generous) }
        }
        #expect(response.status == 0)
    }

    @Test("a file that is not a socket is refused and left intact", arguments: ["file", "symlink", "directory"])
    func nonSocketRefused(_ kind: String) async throws {
        let directory = TemporaryDirectory("moat-admin")
        let path = directory.file("moat.sock")
        let target = try directory.write("precious.txt", "keep me\n")
        switch kind {
        case "file": try directory.write("moat.sock", "keep me\n")
        case "symlink": #expect(symlink(target, path) == 0)
        default: #expect(mkdir(path, 0o700) == 0)
        }
        let error = await #expect(throws: GatewayError.self) {
            try await Self.makeServer(path, Recorder()).run()
        }
        #expect(error?.message.contains("is not a socket") == true)
        #expect(error?.exitCode == 78)
        var info = stat()
        #expect(lstat(path, &info) == 0)
        if kind == "file" {
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me\n")
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep me\n")
    }

    @Test("bad requests get one clear error line: too large, not JSON, no newline, too slow")
    func badRequests() async throws {
        let directory = TemporaryDirectory("moat-admin")
        let path = directory.file("moat.sock")
        let recorder = Recorder()
        // The first three requests are judged by their bytes: a server with the default read timeout, so
        // a client thread held up on a loaded machine cannot turn them into "too slow".
        let server = Self.makeServer(path, recorder)
        var replies = try await Self.withRunningServer(server, at: path) {
            try await offCooperativePool {
                [
                    try RawUnixClient.exchange(path, [UInt8](repeating: UInt8(ascii: "a"), count: 70_000) + [10]),
                    try RawUnixClient.exchange(path, Array("{\"op\": 5}\n".utf8)),
                    try RawUnixClient.exchange(path, Array("{\"op\": \"x\"}".utf8), closeWrite: true),
                ]
            }
        }
        // Only the silent client meets a short read timeout.
        let impatientPath = directory.file("impatient.sock")
        let impatient = Self.makeServer(impatientPath, recorder, readTimeout: .milliseconds(300))
        replies += try await Self.withRunningServer(impatient, at: impatientPath) {
            try await offCooperativePool { [try RawUnixClient.exchange(impatientPath, [])] }
        }
        let responses = try replies.map { try JSONDecoder().decode(AdminResponse.self, from: Data($0.utf8)) }
        #expect(responses.map(\.status) == [64, 64, 64, 64])
        #expect(responses[0].error?.contains("larger than 64 KiB") == true)
        #expect(responses[1].error?.contains("malformed admin request") == true)
        #expect(responses[2].error?.contains("must end with a newline") == true)
        #expect(responses[3].error?.contains("did not arrive within") == true)
        #expect(replies.allSatisfy { $0.hasSuffix("}\n") && $0.filter { $0 == "\n" }.count == 1 })
        #expect(await recorder.requests.isEmpty)
    }

    @Test("the client says what to do when no server is running")
    func clientWithoutServer() async throws {
        let directory = TemporaryDirectory("moat-admin")
        let path = directory.file("moat.sock")
        #expect(!AdminClient.isServerListening(at: path))
        let missing = #expect(throws: GatewayError.self) { try AdminClient.send(.ownerStatus, to: path) }
        #expect(missing?.message.contains("start it with `moat serve`") == true)
        try RawUnixClient.leaveStaleSocket(at: path)
        let stale = #expect(throws: GatewayError.self) { try AdminClient.send(.ownerStatus, to: path) }
        #expect(stale?.message.contains("moat serve is not running") == true)
        let large = #expect(throws: GatewayError.self) {
            try AdminClient.send(.tokenRevoke(prefix: String(repeating: "a", count: 70_000)), to: path)
        }
        #expect(large?.message.contains("larger than 64 KiB") == true)
    }

    @Test(
        "only the server's own uid and root are admitted",
        arguments: [
            (1000, 1000, true), (0, 1000, true), (1001, 1000, false), (65534, 1000, false),
            (0, 0, true), (1000, 0, false), (UInt32.max, 1000, false),
        ] as [(UInt32, UInt32, Bool)]
    )
    func admitsDecision(_ peer: UInt32, _ allowed: UInt32, _ expected: Bool) async {
        #expect(AdminSocketServer.admits(peerUID: peer, allowedUID: allowed) == expected)
    }

    static let canSwitchUser =
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")

    @Test(
        "a peer running as another uid is refused, audited, and never reaches the handler",
        .enabled(if: canSwitchUser, "needs root, /usr/bin/setpriv and /usr/bin/python3 to connect as uid 65534")
    )
    func otherUIDRefused() async throws {
        let directory = TemporaryDirectory("moat-admin")
        let path = directory.file("moat.sock")
        let recorder = Recorder()
        let reply = try await Self.withRunningServer(Self.makeServer(path, recorder), at: path) {
            // Open the file system wide, so only the peer-uid check can stop the other user.
            TemporaryDirectory.chmod(directory.path, 0o711)
            TemporaryDirectory.chmod(path, 0o666)
            return try await Self.connectAsNobody(path)
        }
        #expect(reply.status == 0, "the helper process failed: \(reply.output)")
        let response = try JSONDecoder().decode(AdminResponse.self, from: Data(reply.output.utf8))
        #expect(response.status == 77)
        #expect(response.result == nil)
        #expect(response.error?.contains("permission denied") == true)
        #expect(await recorder.requests.isEmpty)
        let refused = await recorder.refused
        #expect(refused.count == 1)
        #expect(refused.first?.uid == 65534)
        #expect(refused.first.map { $0.pid > 0 } == true)
    }

    /// Connects as uid 65534 with python3 under setpriv, sends a request, and returns what came back.
    static func connectAsNobody(_ path: String) async throws -> (status: Int32, output: String) {
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            try:
                s.sendall(b'{"op": "token.create", "params": {"name": "evil"}}\\n')
            except OSError:
                pass
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            sys.stdout.write(data.decode())
            """
        return try await HostCommand.run(
            "/usr/bin/setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script, path])
    }
}

/// A raw client for the admin socket that sends exactly the bytes a test chooses.
enum RawUnixClient {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: Array(path.utf8) + [0])
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// Connects, sends `bytes` (then half-closes when asked), and reads until the server closes.
    static func exchange(_ path: String, _ bytes: [UInt8], closeWrite: Bool = false) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard withAddress(path, { connect(fd, $0, $1) }) == 0 else {
            throw Failure(description: "connect failed: errno \(errno)")
        }
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }  // the server stopped reading; its answer is still readable
            sent += count
        }
        if closeWrite { shutdown(fd, Int32(SHUT_WR)) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Binds a socket at `path` and closes it without removing the file, as a crashed server would.
    static func leaveStaleSocket(at path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0, withAddress(path, { bind(fd, $0, $1) }) == 0 else {
            throw Failure(description: "bind failed: errno \(errno)")
        }
        close(fd)
    }
}
