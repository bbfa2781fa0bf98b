/// The owner's model servers (`providers:` in `config.yaml`), in the order the file lists them.
///
/// With no `providers:` section there is one, ``defaultLocal``: Ollama on this machine, no key, so a
/// fresh install talks to a local model. Docs/Providers.md documents every key.
public struct ProvidersSettings: Sendable, Equatable {
    /// `local`: Ollama's OpenAI-compatible endpoint on loopback with a small model that can call tools
    /// (`ollama pull qwen2.5:1.5b`, about 1 GB). Listing `local` under `providers:` changes only the
    /// keys written; any other name must give `base_url` and `model`.
    public static let defaultLocal = ProviderSettings(
        name: "local", baseURL: "http://127.0.0.1:11434/v1", model: "qwen2.5:1.5b")

    public var providers: [ProviderSettings] = [Self.defaultLocal]

    public init(providers: [ProviderSettings] = [Self.defaultLocal]) {
        self.providers = providers
    }

    /// The provider called `name`, if the owner configured one.
    public func named(_ name: String) -> ProviderSettings? {
        providers.first { $0.name == name }
    }
}

/// One model server: where it is, which model, how it authenticates, how long to wait.
public struct ProviderSettings: Sendable, Equatable {
    /// The wire format.
    public enum Kind: String, Sendable, CaseIterable {
        /// `POST {base_url}/chat/completions` (Ollama, llama.cpp server, vLLM, LM Studio, OpenAI).
        case openai
        /// `POST {base_url}/v1/messages`, Anthropic's Messages API.
        case anthropic
    }

    /// Anthropic's API, the base URL of a `kind: anthropic` provider that names none.
    public static let anthropicBaseURL = "https://api.anthropic.com"
    /// The output limit sent to Anthropic (which requires one) when neither the round nor `max_tokens` sets it.
    public static let anthropicDefaultMaxTokens = 4096

    /// The key under `providers:`, used in messages and audit entries.
    public var name: String
    public var kind: Kind = .openai
    /// The URL before `/chat/completions`, e.g. `http://127.0.0.1:11434/v1`. The owner's choice:
    /// loopback and LAN addresses are allowed (unlike URLs the model picks).
    public var baseURL: String
    /// The model name the server knows (`qwen2.5:1.5b`, `gpt-4o-mini`, …).
    public var model: String
    /// The NAME of the vault secret holding the API key, sent as `Authorization: Bearer` (`x-api-key`
    /// for Anthropic); nil: no key.
    public var apiKeySecret: String?
    /// Whether to ask for server-sent events (text as it is generated) rather than one JSON answer.
    public var stream = true
    public var timeouts = ProviderTimeouts()
    /// The most output tokens a round may produce when the round itself sets no limit (`max_tokens`);
    /// nil: the server's own default (Anthropic, which requires a value, gets 4096).
    public var maxTokens: Int?
    public var retries = ProviderRetries()
    public var circuitBreaker = CircuitBreakerSettings()
    /// The largest answer accepted, streamed or not (8 MiB).
    public var maximumResponseBytes = 8 << 20
    /// `allowed_principals`: who may have this provider answer; nil: the default, the owner alone for a
    /// hosted provider and everyone for a keyless one on loopback (``effectiveAllowedPrincipals``).
    public var allowedPrincipals: [PrincipalPattern]?
    /// `daily_token_limit`: tokens (input + output, every principal together) this provider may use per
    /// UTC day; nil: no limit of its own.
    public var dailyTokenLimit: Int?
    /// The most tokens one round to this provider may send (`context_tokens`), overriding
    /// `agent.context_tokens`; nil: the agent's setting.
    public var contextTokens: Int?

    public init(
        name: String, kind: Kind = .openai, baseURL: String, model: String, apiKeySecret: String? = nil,
        stream: Bool = true, timeouts: ProviderTimeouts = ProviderTimeouts(), maxTokens: Int? = nil,
        retries: ProviderRetries = ProviderRetries(), circuitBreaker: CircuitBreakerSettings = CircuitBreakerSettings()
    ) {
        self.name = name
        self.kind = kind
        self.baseURL = baseURL
        self.model = model
        self.apiKeySecret = apiKeySecret
        self.stream = stream
        self.timeouts = timeouts
        self.maxTokens = maxTokens
        self.retries = retries
        self.circuitBreaker = circuitBreaker
    }
}

/// How a failed round is tried again (`providers.NAME.retries`): only when nothing of the answer was
/// read yet, with exponential backoff and full jitter, honouring the server's `Retry-After`.
public struct ProviderRetries: Sendable, Equatable {
    /// Attempts per round, the first included (`max_attempts`, default 3; 1: never retry).
    public var maximumAttempts = 3
    /// The first backoff's ceiling (`base_delay_ms`, default 500); attempt n waits a random time
    /// between 0 and base × 2^(n-1), at most ``maximumWait``.
    public var baseDelay: Duration = .milliseconds(500)
    /// The longest wait between two attempts (`max_wait_seconds`, default 60). A server that asks for
    /// a longer wait (Retry-After) gets no retry: the round fails at once saying when to try again.
    public var maximumWait: Duration = .seconds(60)

    public init(
        maximumAttempts: Int = 3, baseDelay: Duration = .milliseconds(500), maximumWait: Duration = .seconds(60)
    ) {
        self.maximumAttempts = maximumAttempts
        self.baseDelay = baseDelay
        self.maximumWait = maximumWait
    }
}

/// When to stop calling a server that is not answering (`providers.NAME.circuit_breaker`).
public struct CircuitBreakerSettings: Sendable, Equatable {
    /// Consecutive failed attempts (no connection, a timeout, a 5xx or 529) that open the breaker
    /// (`failures`, default 5).
    public var failureThreshold = 5
    /// How long an open breaker refuses rounds at once before one probe is let through
    /// (`cool_down_seconds`, default 30).
    public var coolDown: Duration = .seconds(30)

    public init(failureThreshold: Int = 5, coolDown: Duration = .seconds(30)) {
        self.failureThreshold = failureThreshold
        self.coolDown = coolDown
    }
}

/// How long to wait for a model server, per round (`providers.NAME.timeouts`).
public struct ProviderTimeouts: Sendable, Equatable {
    /// To open the TCP connection (`connect_seconds`, default 10).
    public var connect: Duration = .seconds(10)
    /// From the request to the first byte of the answer (`first_byte_seconds`, default 120): a local
    /// model on a CPU reads a long conversation before it writes anything; without streaming this is
    /// the time for the whole answer.
    public var firstByte: Duration = .seconds(120)
    /// The longest silence between two pieces of a streamed answer (`idle_seconds`, default 60).
    public var idle: Duration = .seconds(60)
    /// The whole round (`total_seconds`, default 600).
    public var total: Duration = .seconds(600)

    public init(
        connect: Duration = .seconds(10), firstByte: Duration = .seconds(120), idle: Duration = .seconds(60),
        total: Duration = .seconds(600)
    ) {
        self.connect = connect
        self.firstByte = firstByte
        self.idle = idle
        self.total = total
    }
}
