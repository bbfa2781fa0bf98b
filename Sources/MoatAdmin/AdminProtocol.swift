import Foundation
import MoatCore

// The admin socket's wire format (`moat.sock`, in the state directory).
//
// One request per connection. The client sends one JSON object on one line, terminated by "\n", at most
// ``AdminProtocol/maximumRequestBytes`` bytes (64 KiB) before the newline:
//
//     {"op": "token.create", "params": {"name": "ci", "scope": "read"}}
//
// `params` maps strings to strings and may be left out. The server answers with one JSON line and closes
// the connection:
//
//     {"status": 0, "output": "text for stdout", "error": null}
//
// `status` is the exit code the CLI should end with, `output` goes to stdout and `error` (a string or
// null) to stderr. A client that sends nothing within the read timeout (10 s) gets an error line.

/// One owner operation the `moat` CLI asks the running `moat serve` to carry out.
public struct AdminRequest: Codable, Sendable, Equatable {
    /// The operation, such as `token.create` or `sessions.revoke-all`.
    public var op: String
    /// The operation's arguments; names and values are plain strings.
    public var params: [String: String]

    /// - Parameters:
    ///   - op: the operation name.
    ///   - params: its arguments.
    public init(op: String, params: [String: String] = [:]) {
        self.op = op
        self.params = params
    }

    enum CodingKeys: String, CodingKey {
        case op, params
    }

    /// Decodes a request; a missing `params` is an empty one.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        op = try container.decode(String.self, forKey: .op)
        params = try container.decodeIfPresent([String: String].self, forKey: .params) ?? [:]
    }
}

/// The server's answer to one ``AdminRequest``: what the CLI prints and the exit code it ends with.
public struct AdminResponse: Codable, Sendable, Equatable {
    /// The process exit code the CLI should use (0 for success; see `ExitStatus`).
    public var status: Int32
    /// Text for stdout (may be empty).
    public var output: String
    /// Text for stderr, or nil when there is none.
    public var error: String?

    /// - Parameters:
    ///   - status: the exit code for the CLI.
    ///   - output: text for stdout.
    ///   - error: text for stderr, if any.
    public init(status: Int32, output: String = "", error: String? = nil) {
        self.status = status
        self.output = output
        self.error = error
    }

    /// A successful answer that prints `output`.
    public static func success(_ output: String) -> AdminResponse {
        AdminResponse(status: ExitStatus.ok, output: output, error: nil)
    }

    /// A failed answer that prints `message` on stderr and ends the CLI with `status` (by default 1,
    /// `ExitStatus.failure`).
    public static func failure(_ message: String, status: Int32 = 1) -> AdminResponse {
        AdminResponse(status: status, output: "", error: message)
    }

    enum CodingKeys: String, CodingKey {
        case status, output, error
    }

    /// Decodes a response; `output` may be missing (empty) and `error` missing or null.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try container.decode(Int32.self, forKey: .status)
        output = try container.decodeIfPresent(String.self, forKey: .output) ?? ""
        error = try container.decodeIfPresent(String.self, forKey: .error)
    }

    /// Encodes all three keys, with an explicit `null` when there is no error text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        try container.encode(output, forKey: .output)
        if let error {
            try container.encode(error, forKey: .error)
        } else {
            try container.encodeNil(forKey: .error)
        }
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
        return Array(try encoder.encode(value)) + [UInt8(ascii: "\n")]
    }

    /// The response sent to a peer whose uid is not allowed.
    static let refusal = AdminResponse.failure(
        "moat: permission denied: only the user running `moat serve` (or root) may use its admin socket.",
        status: noPermissionStatus
    )
}
