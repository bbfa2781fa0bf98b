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

@Suite struct ChatCompletionRequestTests {
    /// The same document, member for member, whatever the order of the members.
    static func parsed(_ bytes: [UInt8]) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
    }

    static func encoded(_ request: ChatCompletionRequest) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return Array(try encoder.encode(request))
    }

    @Test("the written request body is the document JSONEncoder makes of it, for every kind of message and option")
    func sameDocument() throws {
        var odd = ""
        for value in 0..<0x80 { odd.unicodeScalars.append(Unicode.Scalar(value)!) }
        odd += "é😀\u{2028}/path\\"
        let messages = [
            ChatMessage(role: .system, content: "you are \"careful\"\n"),
            ChatMessage(role: .user, content: odd),
            ChatMessage(
                role: .assistant, content: "",
                toolCalls: [
                    ToolCall(id: "call_1", name: "read_file", arguments: #"{"path":"a/b.txt"}"#),
                    ToolCall(id: "call_2", name: "shell", arguments: "{\"command\":\"ls\\n\"}"),
                ]),
            ChatMessage(role: .tool, content: "file\tcontents\u{0}", toolCallID: "call_1"),
            ChatMessage(role: .tool, content: "", toolCallID: "call_2"),
            ChatMessage(role: .assistant, content: "done"),
        ]
        let tools = [
            ToolSchema(
                name: "read_file", description: "Reads a file",
                parameters: #"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#)
        ]
        for (withTools, stream, maxTokens) in [
            (true, true, 512), (false, false, nil), (true, false, nil), (false, true, 1),
        ] {
            let request = try ChatCompletionRequest(
                model: "llama3.1:8b \"q4\"", request: ModelRequest(messages: messages, tools: withTools ? tools : []),
                stream: stream, maxTokens: maxTokens)
            let written = try request.json()
            #expect(try Self.parsed(written) == Self.parsed(Self.encoded(request)))
            #expect(!String(decoding: written, as: UTF8.self).contains("\\/"))
        }
    }

    @Test("an empty conversation and a message of every role alone still make the encoder's document")
    func small() throws {
        for role in [ChatMessage.Role.system, .user, .assistant, .tool] {
            let request = try ChatCompletionRequest(
                model: "m", request: ModelRequest(messages: [ChatMessage(role: role, content: "x")], tools: []),
                stream: false, maxTokens: nil)
            #expect(try Self.parsed(request.json()) == Self.parsed(Self.encoded(request)))
        }
        let empty = try ChatCompletionRequest(
            model: "", request: ModelRequest(messages: [], tools: []), stream: true, maxTokens: 0)
        #expect(try Self.parsed(empty.json()) == Self.parsed(Self.encoded(empty)))
    }
}
