import MoatAgent
import MoatCore
import Testing

@Suite struct AgentSettingsTests {
    static func node(_ pairs: [(String, String)]) -> ConfigNode {
        ConfigNode(
            .mapping(
                pairs.enumerated().map { index, pair in
                    (
                        key: ConfigNode(.scalar(pair.0, plain: true), line: index + 1),
                        value: ConfigNode(.scalar(pair.1, plain: true), line: index + 1)
                    )
                }), line: 1)
    }

    @Test("agent: reads every budget, the provider and the system prompt")
    func readsKeys() throws {
        var settings = AgentSettings()
        try settings.read(
            Self.node([
                ("provider", "local-llama"), ("system_prompt", "Be brief."), ("max_tool_calls_per_turn", "5"),
                ("max_rounds_per_turn", "3"), ("turn_seconds", "60"), ("tokens_per_day", "50000"),
                ("messages_per_minute", "10"), ("tool_output_bytes", "4096"), ("history_messages", "20"),
                ("message_bytes", "2048"), ("context_tokens", "8192"),
            ]), path: "agent")
        #expect(settings.provider == "local-llama")
        #expect(settings.systemPrompt == "Be brief.")
        #expect(settings.maxToolCallsPerTurn == 5)
        #expect(settings.maxRoundsPerTurn == 3)
        #expect(settings.turnTimeLimit == 60)
        #expect(settings.tokensPerDay == 50000)
        #expect(settings.messagesPerMinute == 10)
        #expect(settings.toolOutputBytes == 4096)
        #expect(settings.historyMessages == 20)
        #expect(settings.messageBytes == 2048)
        #expect(settings.contextTokens == 8192)
    }

    @Test("an unknown key, a value out of range or a bad provider name is an error naming the key")
    func strict() {
        for (key, value, expected) in [
            ("max_tool_call_per_turn", "5", "did you mean agent.max_tool_calls_per_turn"),
            ("max_rounds_per_turn", "0", "out of range"), ("turn_seconds", "ten", "whole number"),
            ("provider", "../etc", "must name a provider"), ("context_tokens", "100", "out of range"),
        ] {
            var settings = AgentSettings()
            let error = #expect(throws: ConfigError.self) {
                try settings.read(Self.node([(key, value)]), path: "agent")
            }
            #expect(error?.message.contains(expected) == true, "\(key): \(error?.message ?? "")")
            #expect(settings == AgentSettings())
        }
    }
}
