public import Hummingbird
import NIOCore

/// A writer for small flat answers — one JSON object of strings, booleans and integers — that writes the
/// very bytes ``APIError/jsonData(_:)`` writes (keys sorted, a nil value leaves its key out, `/`
/// unescaped, the same escapes) without `JSONEncoder`'s machinery: for answers on the hot path
/// (`GET /api/auth/session`). `Tests/MoatServerTests/FlatJSONTests.swift` holds it to `JSONEncoder`'s
/// output, hostile strings included.
public struct FlatJSON: Sendable {
    public enum Value: Sendable {
        case string(String)
        case bool(Bool)
        case int(Int)
    }

    private var fields: [(key: String, value: Value)] = []

    public init() {}

    /// Sets `key` (a plain ASCII name, as the API's schemas use) to `value`; nil leaves the key out.
    public mutating func set(_ key: String, _ value: Value?) {
        guard let value else { return }
        fields.append((key, value))
    }

    /// The object's JSON text.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        out.append(UInt8(ascii: "{"))
        for (index, field) in fields.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            Self.write(field.key, to: &out)
            out.append(UInt8(ascii: ":"))
            switch field.value {
            case .string(let text): Self.write(text, to: &out)
            case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
            case .int(let number): out.append(contentsOf: String(number).utf8)
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The object as an answer with `status`, with the headers of ``APIError/json(status:encoding:)``.
    public func response(status: HTTPResponse.Status) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// `text` as a JSON string: `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00XX`,
    /// everything else (non-ASCII included) as its UTF-8 bytes.
    static func write(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), byte])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x00..<0x20:
                let digits: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
