import Crypto
public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A small RFC 6455 WebSocket client over a real TCP socket, blocking, for tests of the chat socket.
///
/// It sends exactly the handshake headers a test chooses (a foreign `Origin`, a subprotocol carrying a
/// token, none), shows the HTTP status of a refused upgrade, checks `Sec-WebSocket-Accept` on an
/// accepted one, masks every frame it sends (as a client must) and can send a frame larger than any
/// library would let through. The browser test keeps it honest: Chromium's own client talks to the
/// same socket.
///
/// Unchecked `Sendable` so its waits can run on a thread of their own (the async ``receive()`` and
/// ``readJSON(until:)``); a test uses one client from one task at a time.
public final class WebSocketTestClient: @unchecked Sendable {
    /// The upgrade was answered with something other than `101`.
    public struct Refused: Error, CustomStringConvertible {
        public let status: Int
        public let response: String
        public var description: String { "upgrade refused with \(status): \(response.prefix(300))" }
    }

    public struct ProtocolError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// A frame from the server (pings are answered and skipped by ``receive()``).
    public enum Frame: Equatable, Sendable {
        case text(String)
        case binary([UInt8])
        /// The close frame's code (nil when it had none) and reason.
        case close(code: UInt16?, reason: String)
    }

    private let fd: Int32
    private var pending: [UInt8]
    private var closed = false
    /// The subprotocol the server chose (`Sec-WebSocket-Protocol` of the `101`).
    public let chosenProtocol: String?

    /// Opens a WebSocket to `path` on `127.0.0.1:port`: `headers` are added to the handshake (`Host`
    /// is `127.0.0.1:port` unless given). Throws ``Refused`` when the server does not switch protocols.
    public init(
        port: Int, path: String, headers: [(String, String)] = [], receiveTimeout: Int = 120
    ) throws {
        fd = try RawHTTP.connect(port: port, receiveTimeout: receiveTimeout)
        var nonce = [UInt8](repeating: 0, count: 16)
        for index in nonce.indices { nonce[index] = UInt8.random(in: 0...255) }
        let key = Data(nonce).base64EncodedString()
        var text = "GET \(path) HTTP/1.1\r\n"
        if !headers.contains(where: { $0.0.lowercased() == "host" }) { text += "Host: 127.0.0.1:\(port)\r\n" }
        text += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\n"
        text += "Sec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        pending = []
        do {
            try Self.write(fd, Array(text.utf8))
            var head: [UInt8] = []
            while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
                if pending.isEmpty { pending = try Self.read(fd) }
                guard !pending.isEmpty else { break }
                head.append(pending.removeFirst())
            }
            let response = String(decoding: head, as: UTF8.self)
            let status = Int(response.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
            guard status == 101 else {
                var rest = pending
                while let more = try? Self.read(fd), !more.isEmpty { rest += more }
                throw Refused(status: status, response: response + String(decoding: rest, as: UTF8.self))
            }
            let fields = Self.headers(response)
            let expected = Data(
                Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
            ).base64EncodedString()
            guard fields["sec-websocket-accept"] == expected else {
                throw ProtocolError("Sec-WebSocket-Accept does not answer the key")
            }
            chosenProtocol = fields["sec-websocket-protocol"]
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit {
        if !closed { Glibc.close(fd) }
    }

    /// Sends a text frame.
    public func send(text: String) throws {
        try send(opcode: 0x1, payload: Array(text.utf8))
    }

    /// Sends one frame, masked, with FIN set.
    public func send(opcode: UInt8, payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        let count = payload.count
        if count < 126 {
            frame.append(0x80 | UInt8(count))
        } else if count <= 0xFFFF {
            frame += [0x80 | 126, UInt8(count >> 8), UInt8(count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((UInt64(count) >> (8 * UInt64($0))) & 0xFF) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try Self.write(fd, frame)
    }

    /// The next data or close frame (fragments joined); pings are answered on the way. Throws when the
    /// connection ends without a close frame or the receive timeout passes.
    public func receive() throws -> Frame {
        var message: [UInt8] = []
        var messageOpcode: UInt8 = 0
        while true {
            let first = try take(2)
            let fin = first[0] & 0x80 != 0
            let opcode = first[0] & 0x0F
            var length = UInt64(first[1] & 0x7F)
            guard first[1] & 0x80 == 0 else { throw ProtocolError("a server frame was masked") }
            if length == 126 {
                let bytes = try take(2)
                length = UInt64(bytes[0]) << 8 | UInt64(bytes[1])
            } else if length == 127 {
                length = try take(8).reduce(0) { $0 << 8 | UInt64($1) }
            }
            let payload = try take(Int(length))
            switch opcode {
            case 0x9:
                try send(opcode: 0xA, payload: payload)
                continue
            case 0xA:
                continue
            case 0x8:
                let code = payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
                let reason = String(decoding: payload.dropFirst(2), as: UTF8.self)
                if !closed { try? send(opcode: 0x8, payload: Array(payload.prefix(2))) }
                return .close(code: code, reason: reason)
            case 0x0, 0x1, 0x2:
                if opcode != 0 { messageOpcode = opcode }
                message += payload
                guard fin else { continue }
                return messageOpcode == 0x1 ? .text(String(decoding: message, as: UTF8.self)) : .binary(message)
            default:
                throw ProtocolError("unknown opcode \(opcode)")
            }
        }
    }

    /// Text frames as JSON objects until one whose `type` is in `types` (or a close frame: nil), with
    /// every object read on the way, that one included.
    public func readJSON(until types: Set<String>) throws -> (last: [String: Any]?, seen: [[String: Any]]) {
        var seen: [[String: Any]] = []
        while true {
            switch try receive() {
            case .text(let text):
                let object =
                    (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? ["unparsed": text]
                seen.append(object)
                if let type = object["type"] as? String, types.contains(type) { return (object, seen) }
            case .binary:
                throw ProtocolError("the server sent a binary frame")
            case .close:
                return (nil, seen)
            }
        }
    }

    /// ``receive()`` waiting on a thread of its own, so an async test never blocks a cooperative thread
    /// while the server (and the model behind it) works.
    public func receive() async throws -> Frame {
        try await offCooperativePool { try self.receive() }
    }

    /// ``readJSON(until:)`` waiting on a thread of its own.
    public func readJSON(until types: Set<String>) async throws -> (last: [String: Any]?, seen: [[String: Any]]) {
        let read = try await offCooperativePool { UncheckedSendable(try self.readJSON(until: types)) }
        return read.value
    }

    /// Sends a close frame (1000) and closes the socket.
    public func close() {
        guard !closed else { return }
        try? send(opcode: 0x8, payload: [0x03, 0xE8])
        closed = true
        Glibc.close(fd)
    }

    private func take(_ count: Int) throws -> [UInt8] {
        while pending.count < count {
            let more = try Self.read(fd)
            guard !more.isEmpty else { throw ProtocolError("the connection closed without a close frame") }
            pending += more
        }
        defer { pending.removeFirst(count) }
        return Array(pending.prefix(count))
    }

    private static func read(_ fd: Int32) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = Glibc.read(fd, &buffer, buffer.count)
        if count < 0 { throw ProtocolError("read failed (errno \(errno): timed out or reset)") }
        return Array(buffer[0..<count])
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { throw ProtocolError("write failed (errno \(errno))") }
            sent += count
        }
    }

    private static func headers(_ head: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }
}

/// JSON objects (`[String: Any]`) handed from the reading thread to the awaiting test; nothing else
/// holds them.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
