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
    /// The wire format. Only OpenAI-compatible chat completions for now.
    public enum Kind: String, Sendable, CaseIterable {
        /// `POST {base_url}/chat/completions` (Ollama, llama.cpp server, vLLM, LM Studio, OpenAI).
        case openai
    }

    /// The key under `providers:`, used in messages and audit entries.
    public var name: String
    public var kind: Kind = .openai
    /// The URL before `/chat/completions`, e.g. `http://127.0.0.1:11434/v1`. The owner's choice:
    /// loopback and LAN addresses are allowed (unlike URLs the model picks).
    public var baseURL: String
    /// The model name the server knows (`qwen2.5:1.5b`, `gpt-4o-mini`, …).
    public var model: String
    /// The NAME of the vault secret holding the API key, sent as `Authorization: Bearer`; nil: no key.
    public var apiKeySecret: String?
    /// Whether to ask for server-sent events (text as it is generated) rather than one JSON answer.
    public var stream = true
    public var timeouts = ProviderTimeouts()
    /// The largest answer accepted, streamed or not (8 MiB).
    public var maximumResponseBytes = 8 << 20

    public init(
        name: String, kind: Kind = .openai, baseURL: String, model: String, apiKeySecret: String? = nil,
        stream: Bool = true, timeouts: ProviderTimeouts = ProviderTimeouts()
    ) {
        self.name = name
        self.kind = kind
        self.baseURL = baseURL
        self.model = model
        self.apiKeySecret = apiKeySecret
        self.stream = stream
        self.timeouts = timeouts
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
