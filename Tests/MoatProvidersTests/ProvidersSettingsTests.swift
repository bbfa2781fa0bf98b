import MoatConfig
import MoatCore
import MoatProviders
import Testing

@Suite struct ProvidersSettingsTests {
    func parse(_ text: String) throws(GatewayError) -> GatewayConfiguration {
        try ConfigurationLoader.parse(text, file: "config.yaml")
    }

    func failure(_ text: String) -> String {
        do {
            _ = try parse(text)
            return "(no error)"
        } catch {
            return error.message
        }
    }

    @Test("without providers: one provider, local = Ollama on loopback, streaming, no key")
    func defaults() throws {
        let config = try parse("log:\n  level: info\n")
        #expect(config.providers.providers == [ProvidersSettings.defaultLocal])
        let local = try #require(config.providers.named("local"))
        #expect(local.baseURL == "http://127.0.0.1:11434/v1")
        #expect(local.apiKeySecret == nil)
        #expect(local.stream)
    }

    @Test("every key is read; local keeps its defaults for keys not written; order is the file's")
    func everyKey() throws {
        let config = try parse(
            """
            providers:
              local:
                model: llama3.2:3b
              hosted:
                kind: openai
                base_url: https://api.openai.com/v1
                model: gpt-4o-mini
                api_key_secret: OPENAI_API_KEY
                stream: false
                timeouts:
                  connect_seconds: 5
                  first_byte_seconds: 30
                  idle_seconds: 20
                  total_seconds: 300
            """)
        #expect(config.providers.providers.map(\.name) == ["local", "hosted"])
        let local = try #require(config.providers.named("local"))
        #expect(local.model == "llama3.2:3b")
        #expect(local.baseURL == ProvidersSettings.defaultLocal.baseURL)
        let hosted = try #require(config.providers.named("hosted"))
        #expect(hosted.apiKeySecret == "OPENAI_API_KEY")
        #expect(!hosted.stream)
        #expect(
            hosted.timeouts
                == ProviderTimeouts(
                    connect: .seconds(5), firstByte: .seconds(30), idle: .seconds(20), total: .seconds(300)))
    }

    @Test("bad provider settings are refused with the file, line, key and the fix")
    func refusals() {
        #expect(
            failure("providers:\n  local:\n    modle: x\n")
                == "config.yaml:3: providers.local.modle: unknown key (did you mean providers.local.model?)")
        #expect(failure("providers:\n  lan:\n    model: m\n").contains("providers.lan.base_url: is required"))
        #expect(
            failure("providers:\n  lan:\n    base_url: http://10.0.0.5:8000/v1\n").contains(
                "providers.lan.model: is required"))
        #expect(
            failure("providers:\n  x:\n    base_url: http://127.0.0.1:8080/v1/chat/completions\n    model: m\n")
                .contains("Moat adds that part"))
        #expect(
            failure("providers:\n  x:\n    base_url: ftp://host/v1\n    model: m\n").contains(
                "config.yaml:3: providers.x.base_url"))
        #expect(
            failure("providers:\n  x:\n    base_url: http://me:pw@127.0.0.1/v1\n    model: m\n").contains("credentials")
        )
        #expect(
            failure(
                "providers:\n  lan:\n    base_url: http://192.168.1.5:8000/v1\n    model: m\n    api_key_secret: KEY\n"
            )
            .contains("only sent over https"))
        #expect(
            failure(
                "providers:\n  x:\n    base_url: https://h.example/v1\n    model: m\n    api_key_secret: sk-abc123\n"
            )
            .contains("is not a vault secret name"))
        #expect(failure("providers:\n  local:\n    stream: maybe\n").contains("must be true or false"))
        #expect(failure("providers:\n  local:\n    kind: anthropic\n").contains("use one of openai"))
        #expect(failure("providers:\n  Local:\n    model: m\n").contains("a provider's name is lower-case"))
        #expect(
            failure("providers:\n  local:\n    timeouts:\n      idle_seconds: 0\n").contains("seconds from 1 to 86400"))
        #expect(failure("providers: {}\n").contains("providers: lists no provider"))
    }

    @Test("a key over http to loopback, or over https anywhere, is accepted")
    func keyTransport() throws {
        let config = try parse(
            """
            providers:
              loop:
                base_url: http://127.0.0.1:8000/v1
                model: m
                api_key_secret: VLLM_KEY
              remote:
                base_url: https://llm.example.net/v1
                model: m
                api_key_secret: REMOTE_KEY
            """)
        #expect(config.providers.providers.count == 2)
    }
}
