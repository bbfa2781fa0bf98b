public import Foundation
import MoatCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// What tailscaled says about a tailnet address: the node and the user it belongs to.
public struct TailscaleWhois: Sendable, Equatable {
    /// The node owner's login name (`UserProfile.LoginName`), e.g. `alice@example.com`; tagged nodes
    /// report the placeholder `tagged-devices`.
    public var login: String
    /// The node's MagicDNS name (`Node.Name`), e.g. `laptop.tail1234.ts.net.`.
    public var nodeName: String
    /// The node's ACL tags (`Node.Tags`); a tagged node has no user identity.
    public var tags: [String]

    /// - Parameters:
    ///   - login: the user's login name.
    ///   - nodeName: the node's name.
    ///   - tags: the node's tags.
    public init(login: String, nodeName: String, tags: [String]) {
        self.login = login
        self.nodeName = nodeName
        self.tags = tags
    }
}

/// A client for tailscaled's LocalAPI on its unix socket, for the one call Moat needs: `whois`.
///
/// It sends `GET /localapi/v0/whois?addr=<ip> HTTP/1.1` with `Host: local-tailscaled.sock` (the name
/// tailscaled expects) and decodes `{"Node": {"Name", "Tags"}, "UserProfile": {"LoginName"}}`. A
/// non-200 answer, a body that is not that JSON, more than 1 MiB, or no answer within the timeout is an
/// error: callers treat every error as "not verified".
public struct TailscaleLocalAPI: Sendable {
    /// Where tailscaled listens on Linux.
    public static let defaultSocket = "/var/run/tailscale/tailscaled.sock"

    /// The largest response body accepted.
    static let maximumResponseBytes = 1024 * 1024

    /// Why a LocalAPI call failed. The description never holds the response body.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The kind of failure.
        public enum Kind: Sendable, Equatable {
            /// The address to look up is not an IP address.
            case invalidAddress
            /// The socket could not be reached (tailscaled not running, no permission).
            case unreachable
            /// tailscaled did not answer within the timeout.
            case timedOut
            /// tailscaled does not know the address (HTTP 404).
            case notFound
            /// Any other non-200 status.
            case status(Int)
            /// The answer is not HTTP or not the expected JSON.
            case malformed
            /// The answer is larger than 1 MiB.
            case tooLarge
        }

        /// The kind of failure.
        public let kind: Kind
        /// What failed, for logs.
        public let description: String

        init(_ kind: Kind, _ description: String) {
            self.kind = kind
            self.description = description
        }
    }

    /// The socket this client connects to.
    public let socketPath: String
    /// How long one call may take, in seconds.
    public let timeout: TimeInterval

    /// - Parameters:
    ///   - socketPath: tailscaled's socket.
    ///   - timeout: how long one call may take, in seconds.
    public init(socketPath: String = defaultSocket, timeout: TimeInterval = 2) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    /// Asks tailscaled which node and user a tailnet address belongs to.
    ///
    /// - Throws: ``Failure``.
    public func whois(address: String) async throws -> TailscaleWhois {
        guard let ip = IPAddress(address) else {
            throw Failure(.invalidAddress, "whois: not an IP address")
        }
        // The canonical text of a parsed address holds only hex digits, dots and colons: nothing to escape.
        let (status, body) = try await get("/localapi/v0/whois?addr=\(ip)")
        switch status {
        case 200:
            return try Self.decodeWhois(body)
        case 404:
            throw Failure(.notFound, "whois: tailscaled does not know \(ip)")
        default:
            throw Failure(.status(status), "whois: tailscaled answered HTTP \(status)")
        }
    }

    static func decodeWhois(_ body: [UInt8]) throws(Failure) -> TailscaleWhois {
        struct Payload: Decodable {
            struct Node: Decodable {
                var name: String?
                var tags: [String]?
                enum CodingKeys: String, CodingKey {
                    case name = "Name"
                    case tags = "Tags"
                }
            }
            struct UserProfile: Decodable {
                var loginName: String?
                enum CodingKeys: String, CodingKey {
                    case loginName = "LoginName"
                }
            }
            var node: Node?
            var userProfile: UserProfile?
            enum CodingKeys: String, CodingKey {
                case node = "Node"
                case userProfile = "UserProfile"
            }
        }
        guard let payload = try? JSONDecoder().decode(Payload.self, from: Data(body)),
            let node = payload.node,
            let login = payload.userProfile?.loginName, !login.isEmpty
        else {
            throw Failure(.malformed, "whois: tailscaled's answer is not the expected JSON")
        }
        return TailscaleWhois(login: login, nodeName: node.name ?? "", tags: node.tags ?? [])
    }

    /// One GET over the unix socket; returns the status and the body.
    private func get(_ target: String) async throws(Failure) -> (Int, [UInt8]) {
        let nanoseconds = Int64(max(timeout, 0.001) * 1_000_000_000)
        let connection: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(nanoseconds))
                .connect(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                            wrappingChannelSynchronously: channel
                        )
                    }
                }
        } catch {
            throw Failure(.unreachable, "tailscaled is unreachable at \(socketPath): \(error)")
        }
        let channel = connection.channel
        do {
            return try await withThrowingTaskGroup(of: (Int, [UInt8])?.self) { group in
                group.addTask { try await Self.exchange(connection, target: target) }
                group.addTask {
                    try await Task.sleep(for: .nanoseconds(nanoseconds))
                    return nil
                }
                defer {
                    group.cancelAll()
                    // Ends a read still waiting, so the group can finish.
                    channel.close(promise: nil)
                }
                guard let first = try await group.next(), let answer = first else {
                    throw Failure(.timedOut, "tailscaled did not answer within \(timeout) s")
                }
                return answer
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(.malformed, "whois: the exchange with tailscaled failed: \(error)")
        }
    }

    private static func exchange(
        _ connection: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>,
        target: String
    ) async throws -> (Int, [UInt8]) {
        try await connection.executeThenClose { inbound, outbound in
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "local-tailscaled.sock")
            headers.add(name: "Accept", value: "application/json")
            headers.add(name: "Connection", value: "close")
            try await outbound.write(
                .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: headers)))
            try await outbound.write(.end(nil))
            var status: Int?
            var body: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let head):
                    status = Int(head.status.code)
                case .body(var chunk):
                    guard body.count + chunk.readableBytes <= maximumResponseBytes else {
                        throw Failure(.tooLarge, "whois: tailscaled's answer is larger than 1 MiB")
                    }
                    body += chunk.readBytes(length: chunk.readableBytes) ?? []
                case .end:
                    guard let status else { break }
                    return (status, body)
                }
            }
            throw Failure(.malformed, "whois: tailscaled closed the connection before a whole answer")
        }
    }
}
