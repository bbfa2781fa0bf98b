public import Foundation

extension APIError {
    /// The JSON text of `value` exactly as ``json(status:encoding:)`` writes an answer (sorted keys, `/`
    /// unescaped): for what is not a whole response, such as each event of a live stream.
    public static func jsonData(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)) ?? Data("{}".utf8)
    }
}
