public import Foundation

/// A server-sent event stream as a test reads it: the HTTP/1.1 chunked body decoded strictly, then the
/// events parsed as the WHATWG rules say (fields `event` and `data`; comments and `retry` ignored).
public struct ServerSentEvent: Sendable, Equatable {
    public let event: String
    public let data: String

    /// `data` as a JSON object (empty when it is not one).
    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
    }

    public static func == (lhs: ServerSentEvent, rhs: ServerSentEvent) -> Bool {
        lhs.event == rhs.event && lhs.data == rhs.data
    }

    /// The events of a stream (an event without `data` is not dispatched, as in a browser).
    public static func parse(_ stream: String) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        var name = ""
        var data: [String] = []
        for line in stream.replacingOccurrences(of: "\r\n", with: "\n").split(
            separator: "\n", omittingEmptySubsequences: false)
        {
            if line.isEmpty {
                if !data.isEmpty {
                    events.append(
                        ServerSentEvent(event: name.isEmpty ? "message" : name, data: data.joined(separator: "\n")))
                }
                name = ""
                data = []
                continue
            }
            if line.hasPrefix(":") { continue }
            let field = line.prefix { $0 != ":" }
            var value = line.dropFirst(field.count).dropFirst()
            if value.hasPrefix(" ") { value = value.dropFirst() }
            switch field {
            case "event": name = String(value)
            case "data": data.append(String(value))
            default: break
            }
        }
        return events
    }
}
