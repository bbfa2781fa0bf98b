import Crypto
public import Foundation
public import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real Matrix homeserver (Synapse, from PyPI) on loopback, for the Matrix channel's tests.
///
/// Each one gets a fresh data directory (SQLite) and a free port; `tests/synapse.sh config` writes its
/// configuration (client listener on 127.0.0.1 only, no federation listener, no open registration, a
/// random `registration_shared_secret`, relaxed rate limits). It runs daemonized, as an installation
/// would, and is stopped through its PID file. Users are registered through the shared-secret admin API.
public final class SynapseHomeserver: @unchecked Sendable {
    /// The pip requirement; the venv (`~/.cache/moat-test-venvs/synapse`) is shared with tests/synapse.sh.
    public static let requirement = "matrix-synapse==1.163.*"

    public let directory: TemporaryDirectory
    public let port: Int
    /// The server's name: user ids are `@NAME:localhost`.
    public let serverName = "localhost"
    let sharedSecret: String

    /// The client API's base URL, e.g. `http://127.0.0.1:41234`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    init(directory: TemporaryDirectory, port: Int, sharedSecret: String) {
        self.directory = directory
        self.port = port
        self.sharedSecret = sharedSecret
    }

    /// A started homeserver. Where PyPI cannot be reached, the calling test is skipped saying why —
    /// except in CI (`CI=true`), where the Matrix tests must run and the missing network is a failure.
    public static func startForTest() async throws -> SynapseHomeserver {
        let venv: PythonVenv
        do {
            venv = try await PythonVenv.prepared("synapse", packages: [requirement])
        } catch .offline(let reason) {
            guard ProcessInfo.processInfo.environment["CI"] == "true" else { try Test.cancel("skipped: \(reason)") }
            throw SynapseError("CI must run the Matrix tests against a real homeserver, but \(reason)")
        } catch {
            throw SynapseError(error.description)
        }
        return try await start(venv: venv)
    }

    /// Configures and starts a homeserver with the Synapse in `venv`; returns once it answers.
    public static func start(venv: PythonVenv) async throws -> SynapseHomeserver {
        let directory = TemporaryDirectory("moat-synapse")
        let port = try LoopbackPort.free()
        let script = repository + "/tests/synapse.sh"
        let configured = try await HostCommand.run("/bin/bash", [script, "config", directory.path, String(port)])
        guard configured.status == 0 else { throw SynapseError("tests/synapse.sh config failed: \(configured.output)") }
        let config = try String(contentsOfFile: directory.file("homeserver.yaml"), encoding: .utf8)
        guard
            let line = config.split(separator: "\n").first(where: { $0.hasPrefix("registration_shared_secret: ") })
        else { throw SynapseError("homeserver.yaml has no registration_shared_secret") }
        let secret = line.dropFirst("registration_shared_secret: ".count).trimmingCharacters(in: ["\""])
        let server = SynapseHomeserver(directory: directory, port: port, sharedSecret: secret)
        // Daemonized: the launcher exits once the server has forked (a bad configuration fails here). Its
        // output goes to a file, never a pipe: the daemon keeps the launcher's stdout open, so reading a pipe
        // to its end would wait for the server to stop.
        let launchLog = directory.file("launch.log")
        let arguments = [
            "-m", "synapse.app.homeserver", "--config-path", directory.file("homeserver.yaml"), "--daemonize",
        ]
        let status = try await spawnAndWait(venv.python, arguments, output: launchLog)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: launchLog, encoding: .utf8)) ?? ""
            throw SynapseError("Synapse did not start (exit \(status)): \(text.suffix(3000))")
        }
        try await server.waitUntilAnswering()
        return server
    }

    /// Runs `executable ARGUMENTS` with stdin from /dev/null and stdout and stderr to `output`, and waits
    /// on a thread of its own for its exit status. `posix_spawn` and `waitpid` directly: Foundation's
    /// `Process` did not notice this launcher's exit in the test process (the launcher stayed a zombie).
    static func spawnAndWait(_ executable: String, _ arguments: [String], output: String) async throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw SynapseError("cannot start \(executable): error \(spawned)") }
        let child = pid
        return await offCooperativePool {
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
            // The exit code when it exited, else 128 + the signal (as a shell reports it).
            let signal = status & 0x7f
            return signal == 0 ? (status >> 8) & 0xff : 128 + signal
        }
    }

    /// Polls `/_matrix/client/versions` until it answers 200; the deadline only bounds a broken start.
    func waitUntilAnswering() async throws {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let answer = try? await RawHTTP.sendOffPool(
                RawHTTP.request("GET", "/_matrix/client/versions", headers: [("Host", "127.0.0.1:\(port)")]),
                port: port), answer.status == 200
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw SynapseError("Synapse did not answer within 120 s; its log:\n\(logTail)")
    }

    /// The end of the server's log, for a failure message.
    public var logTail: String {
        ((try? String(contentsOfFile: directory.file("homeserver.log"), encoding: .utf8)) ?? "(no log)").suffix(4000)
            .description
    }

    /// The PID in the server's PID file.
    var pid: pid_t? {
        (try? String(contentsOfFile: directory.file("homeserver.pid"), encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Stops the server through its PID file (SIGTERM) and waits until it has exited.
    public func stop() async {
        guard let pid, pid > 1 else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(30)
        while kill(pid, 0) == 0, Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }

    deinit {
        // A test that forgot stop() (or failed before it) leaves no server behind.
        if let pid, pid > 1 { kill(pid, SIGKILL) }
    }

    /// Registers `localpart` through the shared-secret admin API (`/_synapse/admin/v1/register`): a nonce,
    /// then the HMAC-SHA1 (keyed with the shared secret) of `nonce NUL user NUL password NUL notadmin`.
    public func register(_ localpart: String, password: String) async throws -> MatrixTestUser {
        let anonymous = MatrixTestUser(userID: "", accessToken: "", port: port)
        let nonceAnswer = try await anonymous.call("GET", "/_synapse/admin/v1/register")
        guard let nonce = nonceAnswer.json["nonce"] as? String else {
            throw SynapseError("no nonce from the registration API: \(nonceAnswer.body)")
        }
        var mac = HMAC<Insecure.SHA1>(key: SymmetricKey(data: Data(sharedSecret.utf8)))
        mac.update(data: Data((nonce + "\0" + localpart + "\0" + password + "\0" + "notadmin").utf8))
        let hex = mac.finalize().map { String(format: "%02x", $0) }.joined()
        let registered = try await anonymous.call(
            "POST", "/_synapse/admin/v1/register",
            json: ["nonce": nonce, "username": localpart, "password": password, "admin": false, "mac": hex])
        guard registered.status == 200, let user = registered.json["user_id"] as? String,
            let token = registered.json["access_token"] as? String
        else { throw SynapseError("registering \(localpart) failed: HTTP \(registered.status) \(registered.body)") }
        return MatrixTestUser(userID: user, accessToken: token, port: port)
    }
}

/// A Matrix user driven with plain HTTP (the other side of a test: a person with a Matrix app).
public struct MatrixTestUser: Sendable {
    public let userID: String
    public let accessToken: String
    let port: Int

    public init(userID: String, accessToken: String, port: Int) {
        self.userID = userID
        self.accessToken = accessToken
        self.port = port
    }

    /// One request to the homeserver; the answer with a de-chunked body.
    public func call(_ method: String, _ path: String, json: [String: Any]? = nil) async throws -> RawHTTP.Response {
        var headers = [("Host", "127.0.0.1:\(port)")]
        if !accessToken.isEmpty { headers.append(("Authorization", "Bearer " + accessToken)) }
        let body = try json.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let answer = try await RawHTTP.sendOffPool(
            RawHTTP.request(method, path, headers: headers, body: body), port: port)
        guard answer.header("Transfer-Encoding")?.lowercased() == "chunked" else { return answer }
        return RawHTTP.Response(status: answer.status, headers: answer.headers, body: Self.dechunked(answer.body))
    }

    /// A chunked body's content (RFC 9112 section 7.1; no trailers expected).
    static func dechunked(_ body: String) -> String {
        var bytes = Array(body.utf8)[...]
        var out: [UInt8] = []
        while let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\r")) {
            let sizeText = String(decoding: bytes[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = lineEnd + 2
            guard start + size <= bytes.endIndex else { break }
            out += bytes[start..<(start + size)]
            bytes = bytes[min(bytes.endIndex, start + size + 2)...]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `call`, requiring a 2xx answer; its JSON object.
    @discardableResult
    public func ok(_ method: String, _ path: String, json: [String: Any]? = nil) async throws -> [String: Any] {
        let answer = try await call(method, path, json: json)
        guard (200..<300).contains(answer.status) else {
            throw SynapseError("\(method) \(path) as \(userID): HTTP \(answer.status) \(answer.body.prefix(500))")
        }
        return answer.json
    }

    /// Creates a direct chat with `invitee` (Element's way: `trusted_private_chat`, `is_direct`); its room id.
    public func createDirectRoom(inviting invitee: String) async throws -> String {
        let answer = try await ok(
            "POST", "/_matrix/client/v3/createRoom",
            json: ["preset": "trusted_private_chat", "is_direct": true, "invite": [invitee]])
        guard let room = answer["room_id"] as? String else { throw SynapseError("no room_id from createRoom") }
        return room
    }

    /// Invites `invitee` into a group room (not a direct chat); its room id.
    public func createGroupRoom(inviting invitee: String) async throws -> String {
        let answer = try await ok(
            "POST", "/_matrix/client/v3/createRoom",
            json: ["preset": "private_chat", "name": "group", "invite": [invitee]])
        guard let room = answer["room_id"] as? String else { throw SynapseError("no room_id from createRoom") }
        return room
    }

    /// Sends an event of `type` with `content` to `room`; its event id.
    @discardableResult
    public func send(_ type: String, _ content: [String: Any], to room: String) async throws -> String {
        let path = "/_matrix/client/v3/rooms/\(Self.escaped(room))/send/\(type)/\(UUID().uuidString)"
        let answer = try await ok("PUT", path, json: content)
        guard let event = answer["event_id"] as? String else { throw SynapseError("no event_id from send") }
        return event
    }

    /// Sends `text` as `m.text`; its event id.
    @discardableResult
    public func send(_ text: String, to room: String) async throws -> String {
        try await send("m.room.message", ["msgtype": "m.text", "body": text], to: room)
    }

    /// Reacts with `key` to `event`; the reaction's event id.
    @discardableResult
    public func react(_ key: String, to event: String, in room: String) async throws -> String {
        try await send(
            "m.reaction", ["m.relates_to": ["rel_type": "m.annotation", "event_id": event, "key": key]], to: room)
    }

    /// Whether `member` has joined `room`, as this user sees it.
    public func hasJoined(_ member: String, room: String) async throws -> Bool {
        let path = "/_matrix/client/v3/rooms/\(Self.escaped(room))/state/m.room.member/\(Self.escaped(member))"
        let answer = try await call("GET", path)
        return answer.status == 200 && answer.json["membership"] as? String == "join"
    }

    /// The `m.room.message` events in `room` from other users that a `/sync` from `since` shows, with the
    /// new position: the user's own app receiving what the bot sent.
    public func messages(in room: String, since: String?, timeout: Int = 0) async throws -> (
        events: [[String: Any]], nextBatch: String
    ) {
        var path = "/_matrix/client/v3/sync?timeout=\(timeout)"
        if let since { path += "&since=" + Self.escaped(since) }
        let answer = try await ok("GET", path)
        guard let next = answer["next_batch"] as? String else { throw SynapseError("no next_batch from /sync") }
        let rooms = (answer["rooms"] as? [String: Any])?["join"] as? [String: Any]
        let timeline = ((rooms?[room] as? [String: Any])?["timeline"] as? [String: Any])?["events"] as? [[String: Any]]
        let events = (timeline ?? []).filter {
            $0["type"] as? String == "m.room.message" && $0["sender"] as? String != userID
        }
        return (events, next)
    }

    static func escaped(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}

public struct SynapseError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
