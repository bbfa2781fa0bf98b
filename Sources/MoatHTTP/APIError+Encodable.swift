public import Foundation
public import HTTPTypes
public import Hummingbird
import NIOCore

extension APIError {
    /// `value` as a JSON response with sorted keys: the one writer of the owner API's answers.
    ///
    /// Every body is an `Encodable` value named after its Docs/openapi.yaml schema; an optional that is nil
    /// leaves its key out, so a type that must show `null` (``MoatAuth/TokenView``'s times) encodes it itself.
    public static func json(status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: jsonData(value))))
    }

    /// The JSON text of `value` as ``json(status:_:)`` writes it (also each event of a live stream).
    public static func jsonData(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)) ?? Data("{}".utf8)
    }
}
