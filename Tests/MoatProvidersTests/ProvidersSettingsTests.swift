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
        #expect(failure("providers:\n  local:\n    kind: gemini\n").contains("use one of openai, anthropic"))
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

    @Test("kind: anthropic defaults its base URL to the API, reads max_tokens, context_tokens, retries and the breaker")
    func anthropicProvider() throws {
        let config = try parse(
            """
            providers:
              claude:
                kind: anthropic
                model: claude-sonnet-4-5
                api_key_secret: ANTHROPIC_API_KEY
                max_tokens: 2048
                context_tokens: 150000
                retries: {max_attempts: 4, base_delay_ms: 250, max_wait_seconds: 20}
                circuit_breaker: {failures: 3, cool_down_seconds: 45}
              local:
                model: qwen2.5:1.5b
            """)
        let claude = try #require(config.providers.named("claude"))
        #expect(claude.kind == .anthropic)
        #expect(claude.baseURL == "https://api.anthropic.com")
        #expect(claude.maxTokens == 2048)
        #expect(claude.contextTokens == 150_000)
        #expect(
            claude.retries
                == ProviderRetries(maximumAttempts: 4, baseDelay: .milliseconds(250), maximumWait: .seconds(20)))
        #expect(claude.circuitBreaker == CircuitBreakerSettings(failureThreshold: 3, coolDown: .seconds(45)))
        let local = try #require(config.providers.named("local"))
        #expect(local.retries == ProviderRetries())
        #expect(local.circuitBreaker == CircuitBreakerSettings())
        #expect(local.maxTokens == nil)
        #expect(local.contextTokens == nil, "the agent's context_tokens applies")
    }

    @Test("bad anthropic, retry and breaker settings are refused with the file, line, key and the fix")
    func anthropicRefusals() {
        let head = "providers:\n  claude:\n    kind: anthropic\n    model: m\n"
        #expect(
            failure(head + "    base_url: https://api.anthropic.com/v1/messages\n")
                == "config.yaml:5: providers.claude.base_url: is the URL before /v1/messages "
                + "(e.g. https://api.anthropic.com); Moat adds that part")
        #expect(failure(head + "    base_url: https://api.anthropic.com/v1\n").contains("Moat adds that part"))
        #expect(
            failure(head + "    base_url: http://10.1.1.1:9000\n    api_key_secret: ANTHROPIC_API_KEY\n")
                .contains("only sent over https"))
        #expect(failure(head + "    max_tokens: 0\n").contains("config.yaml:5: providers.claude.max_tokens"))
        #expect(failure(head + "    context_tokens: 512\n").contains("providers.claude.context_tokens"))
        #expect(
            failure(head + "    retries:\n      max_attempts: 11\n").contains(
                "config.yaml:6: providers.claude.retries.max_attempts"))
        #expect(failure(head + "    retries:\n      max_wait: 3\n").contains("unknown key"))
        #expect(
            failure(head + "    circuit_breaker:\n      failures: 0\n").contains(
                "providers.claude.circuit_breaker.failures"))
        #expect(failure(head + "    circuit_breaker:\n      cool_down_seconds: -1\n").contains("cool_down_seconds"))
        #expect(failure("providers:\n  claude:\n    kind: anthropic\n").contains("providers.claude.model: is required"))
    }
}
