import MoatCore
import MoatTestSupport
import MoatTools
import Testing

/// A tool that only records, to check the registry and the argument rules without a workspace.
struct RecordingSender: MessageSender {
    let contacts: Set<String>
    let sent = SentMessages()

    func knows(contact contactID: String) async -> Bool { contacts.contains(contactID) }

    func send(_ text: String, to contactID: String) async throws(ToolError) {
        await sent.append(contactID, text)
    }
}

actor SentMessages {
    private(set) var messages: [(to: String, text: String)] = []
    func append(_ to: String, _ text: String) { messages.append((to, text)) }
}

/// The `ToolError` a throwing call gave, or nil (another error is recorded as an issue).
func toolError(_ body: () throws -> Void) -> ToolError? {
    do {
        try body()
        return nil
    } catch {
        return expectToolError(error)
    }
}

func asyncToolError(_ body: () async throws -> Void) async -> ToolError? {
    do {
        try await body()
        return nil
    } catch {
        return expectToolError(error)
    }
}

private func expectToolError(_ error: any Error) -> ToolError? {
    guard let error = error as? ToolError else {
        Issue.record("expected a ToolError, got \(error)")
        return nil
    }
    return error
}

@Suite struct ToolArgumentsTests {
    let tool = SendMessageTool(sender: RecordingSender(contacts: ["webhook:sms:alice"]))

    @Test("arguments are re-serialised canonically: sorted keys, no spaces, equal calls give equal text")
    func canonicalForm() throws {
        let first = try tool.prepare(#"{ "to" : "webhook:sms:alice", "text": "hi \"there\"\n\u00e9" }"#)
        let second = try tool.prepare(#"{"text":"hi \"there\"\n\u00e9","to":"webhook:sms:alice"}"#)
        #expect(first.arguments == #"{"text":"hi \"there\"\né","to":"webhook:sms:alice"}"#)
        #expect(first == second)
        #expect(first.destination == "webhook:sms:alice")
        #expect(first.summary == "send a 13-byte message to webhook:sms:alice")
        #expect(!first.summary.contains("\n"))
    }

    @Test("model output that is not one clean object of the declared fields is refused, saying what is wrong")
    func strictReader() {
        let cases: [(String, String)] = [
            (#"{"to":"a","to":"b","text":"x"}"#, "appears twice"),
            (#"["to","text"]"#, "must be one JSON object"),
            (#""just text""#, "must be one JSON object"),
            (#"{"to":"a","text":"x"} {}"#, "unexpected text after"),
            (#"{"to":"a","text":"x","cc":"b"}"#, "unknown field \"cc\""),
            (#"{"to":"a"}"#, "\"text\" is required"),
            (#"{"to":"a","text":5}"#, "\"text\" must be a string, not a number"),
            (#"{"to":["a"],"text":"x"}"#, "\"to\" must be a string, not an array"),
            (#"{"to":"a","text":"\ud800"}"#, "lone UTF-16 surrogate"),
            (#"{"to":"a","text":"x"#, "not closed"),
            ("{\"to\":\"a\",\"text\":\"x\u{01}\"}", "raw control character"),
            (#"{"to":"a","text":"x",}"#, "expected a \"key\""),
            (String(repeating: "[", count: 40), "must be one JSON object"),
            (
                #"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":{"l":{"m":{"n":{"o":{"p":{"q":1}}}}}}}}}}}}}}}}}"#,
                "nested more than 16"
            ),
        ]
        for (input, expected) in cases {
            let error = toolError { _ = try tool.prepare(input) }
            #expect(error?.code == .invalidArguments, "\(input)")
            #expect(error?.message.contains(expected) == true, "\(input): \(String(describing: error))")
        }
    }

    @Test("the schema lists the parameters, their types and which are required, and allows no other field")
    func schema() {
        #expect(
            tool.parameters
                == #"{"additionalProperties":false,"properties":{"#
                + #""text":{"description":"The message text.","type":"string"},"#
                + #""to":{"description":"The contact id, as the owner added it (like webhook:sms:alice).","type":"string"}},"#
                + #""required":["to","text"],"type":"object"}"#)
    }

    @Test("the registry finds tools by name, lists them sorted, and names the known tools for an unknown one")
    func registry() throws {
        let registry = try ToolRegistry([tool, EchoTool(name: "b_tool"), EchoTool(name: "a_tool")])
        #expect(registry.names == ["a_tool", "b_tool", "send_message"])
        #expect(registry.descriptors.map(\.name) == ["a_tool", "b_tool", "send_message"])
        #expect(registry.descriptors.last?.domain == .messaging)
        #expect(try registry.tool(named: "send_message").name == "send_message")
        let unknown = toolError { _ = try registry.tool(named: "rm_rf") }
        #expect(unknown?.code == .unknownTool)
        #expect(unknown?.message == "there is no tool named 'rm_rf'; the tools are: a_tool, b_tool, send_message")
        let twice = toolError { _ = try ToolRegistry([EchoTool(name: "x"), EchoTool(name: "x")]) }
        #expect(twice?.message.contains("two tools are named x") == true)
    }

    @Test("send_message goes to the contact named by id through the sender; an unknown contact gets nothing")
    func sendMessage() async throws {
        let sender = RecordingSender(contacts: ["webhook:sms:alice"])
        let tool = SendMessageTool(sender: sender)
        let context = ToolContext(principal: .owner, conversationID: "c1")
        let call = try tool.prepare(#"{"to":"webhook:sms:alice","text":"the build passed"}"#)
        let output = try await tool.run(call, context: context)
        #expect(output.text == "message sent to webhook:sms:alice" && !output.external)
        let unknown = try tool.prepare(#"{"to":"webhook:sms:mallory","text":"hello"}"#)
        let error = await asyncToolError { _ = try await tool.run(unknown, context: context) }
        #expect(error?.code == .refused)
        // A call prepared for another tool never runs here.
        let forged = PreparedCall(tool: "shell", arguments: call.arguments, destination: "", summary: "")
        #expect(await asyncToolError { _ = try await tool.run(forged, context: context) }?.code == .invalidArguments)
        let messages = await sender.sent.messages
        #expect(messages.map(\.to) == ["webhook:sms:alice"] && messages.map(\.text) == ["the build passed"])
        let empty = toolError { _ = try tool.prepare(#"{"to":"","text":"x"}"#) }
        #expect(empty?.code == .invalidArguments)
    }
}

/// A minimal tool for the registry test.
struct EchoTool: Tool {
    let name: String
    let domain = TrustDomain.system
    let description = "echo"
    let parameters = #"{"type":"object"}"#

    func prepare(_ arguments: String) throws(ToolError) -> PreparedCall {
        PreparedCall(tool: name, arguments: arguments, destination: "", summary: "echo")
    }

    func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        ToolOutput(text: call.arguments, external: false)
    }
}
