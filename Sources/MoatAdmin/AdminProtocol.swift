import Foundation
public import MoatAgent
import MoatCore

// The admin socket's wire format (`moat.sock`, in the state directory). It is internal: the `moat` CLI
// and the `moat serve` of the same version speak it.
//
// One request per connection. The client sends one ``AdminOperation`` as one JSON object on one line,
// terminated by "\n", at most ``AdminProtocol/maximumRequestBytes`` bytes (64 KiB) before the newline:
//
//     {"op": "token.create", "params": {"expiry": {"standard": {}}, "name": "ci", "scope": "read"}}
//
// `op` is a name from the table ``AdminOperation/Name``; `params` holds that operation's typed parameters
// (strings, booleans, numbers, trust domains and levels by their raw values) and may be left out when it
// has none. Passwords and codes are JSON strings on the wire; the server decodes them straight into
// `SecretBytes` and wipes its copy of the request line. An unknown `op` ("this moat and the running
// server may be different versions") or a parameter of the wrong type is a usage error (exit 64) that
// names the operation and the parameter, never a value. The server answers with one JSON line and
// closes the connection:
//
//     {"error": null, "result": {"tokenRevoked": {"prefix": "mt_ab12cd"}}, "status": 0}
//
// `status` is the exit code the CLI should end with; `result` (an ``AdminResult``, or null on failure) is
// rendered as text by the CLI; `error` (a string or null) goes to stderr. A client that sends nothing
// within the read timeout (10 s) gets an error line.
//
// One operation streams: `chat.stream` (same parameters as `chat`) is answered with one line per event
// of the running turn, each an object with the single key `event` (``AdminEventFrame``, the event as
// ``TurnEventView``), then the usual result line, then the server closes:
//
//     {"event": {"round": 1, "text": "Hel", "type": "delta"}}
//     {"event": {"approval_id": "…", "reason": "…", "summary": "…", "tool": "shell", "type": "approval"}}
//     {"error": null, "result": {"chatTurn": {…}}, "status": 0}
//
// Every line obeys the response size limit. Any other operation is answered with its result line alone,
// and a client refuses an event line there. A client that goes away mid-turn does not stop the turn: it
// completes and is stored (the server stops writing to it).

/// The server's answer to one ``AdminOperation``: its result, or the error and the exit code.
public struct AdminResponse: Codable, Sendable, Equatable {
    /// The process exit code the CLI should use (0 for success; see `ExitStatus`).
    public var status: Int32
    /// The operation's result; nil when it failed.
    public var result: AdminResult?
    /// Text for stderr, or nil when there is none.
    public var error: String?

    /// - Parameters:
    ///   - status: the exit code for the CLI.
    ///   - result: the operation's result, if it succeeded.
    ///   - error: text for stderr, if any.
    public init(status: Int32, result: AdminResult? = nil, error: String? = nil) {
        self.status = status
        self.result = result
        self.error = error
    }

    /// A successful answer.
    public static func success(_ result: AdminResult) -> AdminResponse {
        AdminResponse(status: ExitStatus.ok, result: result, error: nil)
    }

    /// A failed answer that prints `message` on stderr and ends the CLI with `status` (by default 1,
    /// `ExitStatus.failure`).
    public static func failure(_ message: String, status: Int32 = 1) -> AdminResponse {
        AdminResponse(status: status, result: nil, error: message)
    }

    enum CodingKeys: String, CodingKey {
        case status, result, error
    }

    /// Encodes all three keys, with an explicit `null` for a missing result or error.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        if let result {
            try container.encode(result, forKey: .result)
        } else {
            try container.encodeNil(forKey: .result)
        }
        if let error { try container.encode(error, forKey: .error) } else { try container.encodeNil(forKey: .error) }
    }
}

/// One event line of a streamed answer (`chat.stream`).
public struct AdminEventFrame: Codable, Sendable, Equatable {
    public var event: TurnEventView

    public init(event: TurnEventView) {
        self.event = event
    }
}

/// Who is at the other end of an admin connection, as the kernel reported it (`SO_PEERCRED`) when the
/// peer connected.
public struct AdminPeer: Sendable, Equatable, CustomStringConvertible {
    /// The peer's effective user ID; `UInt32.max` when the kernel did not say.
    public var uid: UInt32
    /// The peer's process ID; 0 when the kernel did not say.
    public var pid: Int32

    /// - Parameters:
    ///   - uid: the peer's effective user ID.
    ///   - pid: the peer's process ID.
    public init(uid: UInt32, pid: Int32) {
        self.uid = uid
        self.pid = pid
    }

    /// A peer whose credentials could not be read (always refused).
    public static let unknown = AdminPeer(uid: UInt32.max, pid: 0)

    public var description: String { "uid \(uid), pid \(pid)" }
}

/// Limits and encoding shared by the admin server and client.
enum AdminProtocol {
    /// The longest request line accepted, not counting its newline.
    static let maximumRequestBytes = 64 * 1024
    /// The longest response line the client accepts (token listings can be long, but not this long).
    static let maximumResponseBytes = 16 * 1024 * 1024
    /// `EX_NOPERM` from `sysexits.h`: the CLI's exit code when the server refused the connection.
    static let noPermissionStatus: Int32 = 77

    /// One JSON object and a newline.
    static func line(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // JSONEncoder never emits a raw newline (string newlines are escaped), so this is one line.
        var data = try encoder.encode(value)
        // The request may carry a password: the encoder's buffer is wiped once copied.
        defer { data.resetBytes(in: 0..<data.count) }
        return Array(data) + [UInt8(ascii: "\n")]
    }

    /// An operation's request line, with its newline.
    static func request(_ operation: AdminOperation) throws(GatewayError) -> [UInt8] {
        do {
            return try line(operation)
        } catch {
            throw GatewayError(.configuration, "cannot encode the admin request \(operation.name.rawValue)")
        }
    }

    /// Overwrites `bytes` with zeros (a request line that may carry a password).
    static func wipe(_ bytes: inout [UInt8]) {
        for index in bytes.indices { bytes[index] = 0 }
    }

    /// Decodes a request line into an operation: an ``AdminRequestError`` for an unknown operation or a bad
    /// parameter, any other error for a line that is not a request at all.
    static func operation(from line: [UInt8]) throws -> AdminOperation {
        var data = Data(line)
        defer { data.resetBytes(in: 0..<data.count) }
        return try JSONDecoder().decode(AdminOperation.self, from: data)
    }

    /// The response sent to a peer whose uid is not allowed.
    static let refusal = AdminResponse.failure(
        "moat: permission denied: only the user running `moat serve` (or root) may use its admin socket.",
        status: noPermissionStatus
    )
}
