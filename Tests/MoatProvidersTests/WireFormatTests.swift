import Foundation
import Testing

@testable import MoatProviders

@Suite struct ServerSentEventParserTests {
    /// Feeds `text` split after every byte, and whole, and expects the same events both ways.
    func events(_ text: String) -> [String] {
        var whole = ServerSentEventParser()
        let all = (whole.feed(Array(text.utf8)) ?? ["overflow"]) + whole.finish()
        var split = ServerSentEventParser()
        var pieces: [String] = []
        for byte in text.utf8 { pieces += split.feed([byte]) ?? ["overflow"] }
        pieces += split.finish()
        #expect(pieces == all, "byte-by-byte feeding must give the same events")
        return all
    }

    @Test("LF, CRLF and lone CR end lines, even with the CR and LF in different chunks")
    func lineEndings() {
        #expect(events("data: a\n\ndata: b\r\n\r\ndata: c\r\rdata: d\n\n") == ["a", "b", "c", "d"])
    }

    @Test("data lines of one event are joined with LF; comments and other fields are skipped")
    func fields() {
        #expect(events(": keep-alive\nevent: message\nid: 7\ndata: one\ndata:two\nretry: 5\n\n") == ["one\ntwo"])
    }

    @Test("a byte order mark at the start is skipped, and an event left open at the end is delivered")
    func edges() {
        #expect(events("\u{FEFF}data: first\n\ndata: last") == ["first", "last"])
    }

    @Test("an event larger than the limit is refused instead of growing without bound")
    func limit() {
        var parser = ServerSentEventParser(maximumEventBytes: 16)
        #expect(parser.feed(Array("data: 0123456789abcdef\n\n".utf8)) == nil)
    }
}

@Suite struct ToolCallAssemblerTests {
    func delta(_ index: Int?, id: String? = nil, name: String? = nil, arguments: String? = nil) throws
        -> WireCompletion.CallDelta
    {
        var function: [String: Any] = [:]
        if let name { function["name"] = name }
        if let arguments { function["arguments"] = arguments }
        var object: [String: Any] = ["function": function]
        if let index { object["index"] = index }
        if let id { object["id"] = id }
        return try JSONDecoder().decode(
            WireCompletion.CallDelta.self, from: JSONSerialization.data(withJSONObject: object))
    }

    @Test("interleaved deltas of two calls are assembled by index; repeated ids and names are not doubled")
    func interleaved() throws {
        var assembler = ToolCallAssembler()
        for piece in [
            try delta(0, id: "call_a", name: "read_file", arguments: ""),
            try delta(1, id: "call_b", name: "shell", arguments: "{\"co"),
            try delta(0, arguments: "{\"path\""),
            try delta(1, id: "call_b", name: "shell", arguments: "mmand\":\"ls\"}"),
            try delta(0, arguments: ":\"a\"}"),
        ] {
            #expect(assembler.add(piece, position: 0, streaming: true) == nil)
        }
        #expect(
            try assembler.finish() == [
                ToolCall(id: "call_a", name: "read_file", arguments: #"{"path":"a"}"#),
                ToolCall(id: "call_b", name: "shell", arguments: #"{"command":"ls"}"#),
            ])
    }

    @Test("deltas without an index continue the call in progress; a call without a name is refused")
    func withoutIndex() throws {
        var assembler = ToolCallAssembler()
        _ = assembler.add(try delta(nil, id: "x", name: "list_files", arguments: "{"), position: 0, streaming: true)
        _ = assembler.add(try delta(nil, arguments: "}"), position: 0, streaming: true)
        #expect(try assembler.finish() == [ToolCall(id: "x", name: "list_files", arguments: "{}")])
        var nameless = ToolCallAssembler()
        _ = nameless.add(try delta(0, arguments: "{}"), position: 0, streaming: true)
        #expect(throws: (any Error).self) { try nameless.finish() }
    }

    @Test("arguments sent as a JSON object (Ollama's native form) become JSON text")
    func objectArguments() throws {
        let data = Data(#"{"index":0,"id":"c","function":{"name":"n","arguments":{"path":"."}}}"#.utf8)
        let call = try JSONDecoder().decode(WireCompletion.CallDelta.self, from: data)
        #expect(call.function?.arguments == #"{"path":"."}"#)
    }

    @Test("more than the maximum number of calls in one answer is refused")
    func tooMany() throws {
        var assembler = ToolCallAssembler()
        for index in 0..<ToolCallAssembler.maximumCalls {
            #expect(
                assembler.add(try delta(index, id: "c\(index)", name: "n"), position: index, streaming: true) == nil)
        }
        #expect(assembler.add(try delta(999, id: "extra", name: "n"), position: 0, streaming: true) != nil)
    }
}
