import Foundation
public import MoatCore
public import MoatNet
public import MoatVault
import NIOCore

/// A model behind the OpenAI chat-completions wire format: Ollama, llama.cpp server, vLLM, LM Studio
/// and OpenAI itself (Docs/Providers.md).
///
/// One round is one `POST {base_url}/chat/completions` with the conversation, the tool schemas and
/// `stream`; a streamed answer (server-sent events) hands its text to `onText` as it arrives and
/// assembles tool calls from their deltas. The base URL is the owner's (``ProviderSettings/baseURL``):
/// it is resolved once per round and the connection pinned to that address, loopback and LAN allowed
/// (``CheckedURL/ownerConfigured(_:resolver:)``), unlike a URL the model picks.
///
/// The API key, when the provider has one, is read from the vault at egress, for this request only, and
/// sent as `Authorization: Bearer`; it appears in no error and no log line. Errors name the provider and
/// the server's origin, say how to fix the problem, and never hold a body or model output.
public struct OpenAICompatibleProvider: ModelProvider {
    public var name: String { settings.name }
    public let settings: ProviderSettings
    /// `{base_url}/chat/completions`.
    let endpoint: FetchURL
    let vault: UnlockedVault?
    let resolver: AddressResolver
    let transport: PinnedHTTPTransport

    /// - Parameters:
    ///   - vault: where ``ProviderSettings/apiKeySecret`` is read from (nil: no vault is open; a
    ///     provider that needs a key then fails each round with a clear message).
    ///   - resolver: how the base URL's host name is resolved (tests inject one).
    /// - Throws: ``ProviderError`` `.configuration` when the base URL is unusable.
    public init(
        settings: ProviderSettings, vault: UnlockedVault?, resolver: AddressResolver = .system,
        userAgent: String = "Moat/\(MoatVersion.current)"
    ) throws(ProviderError) {
        if let problem = ProviderSettings.baseURLProblem(settings.baseURL) {
            throw ProviderError(.configuration, "providers.\(settings.name).base_url \(problem)")
        }
        let base = settings.baseURL.hasSuffix("/") ? String(settings.baseURL.dropLast()) : settings.baseURL
        guard case .success(let endpoint) = FetchURL.parse(base + "/chat/completions") else {
            throw ProviderError(.configuration, "providers.\(settings.name).base_url is not a usable URL")
        }
        var limits = PinnedHTTPTransport.Limits()
        limits.maximumBodyBytes = settings.maximumResponseBytes
        do {
            transport = try PinnedHTTPTransport(limits: limits, userAgent: userAgent)
        } catch {
            throw ProviderError(.configuration, "the TLS client for provider \(settings.name) cannot be set up")
        }
        self.settings = settings
        self.endpoint = endpoint
        self.vault = vault
        self.resolver = resolver
    }

    /// `scheme://host:port` of the model server, for messages.
    var origin: String { endpoint.origin }

    public func complete(
        _ request: ModelRequest, onText: @escaping @Sendable (String) async -> Void
    ) async throws(ProviderError) -> ModelReply {
        let body: [UInt8]
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            body = Array(
                try encoder.encode(
                    try ChatCompletionRequest(model: settings.model, request: request, stream: settings.stream)))
        } catch let error as ToolParametersError {
            throw ProviderError(
                .configuration,
                "the parameters of tool \(PrintableText.excerpt(error.tool, limit: 64)) are not a JSON object")
        } catch {
            throw ProviderError(.configuration, "the request for provider \(name) cannot be encoded")
        }
        let target: CheckedURL
        do {
            target = try await CheckedURL.ownerConfigured(endpoint, resolver: resolver)
        } catch {
            throw error.code == .urlRefused
                ? ProviderError(.configuration, "providers.\(name).base_url is refused: \(error.message)")
                : ProviderError(
                    .unreachable, "the model server of provider \(name) cannot be reached: \(error.message)")
        }
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"),
            ("Accept", settings.stream ? "text/event-stream" : "application/json"),
        ]
        if let key = try apiKey() { headers.append(("Authorization", "Bearer " + key)) }
        do {
            return try await transport.stream(
                target, method: "POST", headers: headers, body: body, limits: streamLimits
            ) { response in
                try await read(response, onText: onText)
            }
        } catch let error as ProviderError {
            throw error
        } catch let error as NetError {
            throw failure(error)
        } catch {
            throw ProviderError(
                .badResponse, "the exchange with the model server at \(origin) (provider \(name)) failed")
        }
    }

    var streamLimits: PinnedHTTPTransport.StreamLimits {
        var limits = PinnedHTTPTransport.StreamLimits()
        limits.connectTimeout = TimeAmount(settings.timeouts.connect)
        limits.firstByteTimeout = TimeAmount(settings.timeouts.firstByte)
        limits.idleTimeout = TimeAmount(settings.timeouts.idle)
        limits.totalTimeout = TimeAmount(settings.timeouts.total)
        limits.maximumBodyBytes = settings.maximumResponseBytes
        return limits
    }

    /// The key for this request, read from the vault now (so a key replaced in the vault is used from
    /// the next round on); nil when the provider has none.
    func apiKey() throws(ProviderError) -> String? {
        guard let secret = settings.apiKeySecret else { return nil }
        guard let vault else {
            throw ProviderError(
                .configuration,
                "provider \(name) needs the API key in vault secret \(secret), but the vault is not open: "
                    + "unlock it (moat vault unseal-check) or remove providers.\(name).api_key_secret")
        }
        let value: SecretBytes?
        do {
            value = try vault.value(named: secret)
        } catch {
            throw ProviderError(.configuration, "provider \(name) cannot read vault secret \(secret): \(error.message)")
        }
        guard let value, !value.isEmpty else {
            throw ProviderError(
                .configuration,
                "provider \(name) needs the API key in vault secret \(secret), which does not exist: "
                    + "add it with `moat vault add \(secret)`")
        }
        let key = value.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        guard key.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            throw ProviderError(
                .configuration,
                "vault secret \(secret) holds a value that cannot be an API key (spaces, line breaks or "
                    + "non-ASCII characters): store the key alone with `moat vault add \(secret)`")
        }
        return key
    }

    /// Reads one answer: an error status, server-sent events, or one JSON document.
    func read(
        _ response: PinnedHTTPTransport.StreamedResponse, onText: @escaping @Sendable (String) async -> Void
    ) async throws -> ModelReply {
        guard (200..<300).contains(response.status) else {
            // Drain a little of the error body so the server sees a clean read; its text is not shown (it
            // may quote the request).
            var drained = 0
            for try await chunk in response.body {
                drained += chunk.count
                if drained > 64 << 10 { break }
            }
            throw statusFailure(response.status, retryAfter: response.header("retry-after"))
        }
        let contentType = response.header("content-type")?.lowercased() ?? ""
        if contentType.hasPrefix("text/event-stream") {
            return try await readEvents(response.body, onText: onText)
        }
        var bytes: [UInt8] = []
        for try await chunk in response.body { bytes += chunk }
        guard !bytes.isEmpty else {
            throw bad(
                "answered with an empty body (llama-cpp-python does this when streaming with tools: "
                    + "set providers.\(name).stream: false)")
        }
        guard let completion = try? JSONDecoder().decode(WireCompletion.self, from: Data(bytes)) else {
            throw bad("sent an answer that is not chat-completions JSON")
        }
        let reply = try reply(fromWhole: completion)
        // A server that ignored `stream: true` still shows its text to the reader.
        if settings.stream, !reply.text.isEmpty { await onText(reply.text) }
        return reply
    }

    func reply(fromWhole completion: WireCompletion) throws(ProviderError) -> ModelReply {
        if completion.error != nil { throw bad("reported an error instead of an answer") }
        guard let choice = completion.choices?.first(where: { ($0.index ?? 0) == 0 }), let message = choice.message
        else { throw bad("sent an answer without a message (choices[0].message)") }
        var assembler = ToolCallAssembler()
        for (position, call) in (message.toolCalls ?? []).enumerated() {
            if let problem = assembler.add(call, position: position, streaming: false) { throw bad("sent \(problem)") }
        }
        return ModelReply(
            text: message.content ?? "", toolCalls: try calls(assembler), finishReason: choice.finishReason,
            usage: usage(completion.usage))
    }

    func readEvents(
        _ body: PinnedHTTPTransport.ResponseBody, onText: @escaping @Sendable (String) async -> Void
    ) async throws -> ModelReply {
        var parser = ServerSentEventParser()
        var text = ""
        var assembler = ToolCallAssembler()
        var finishReason: String?
        var usage: TokenUsage?
        var count = 0
        var done = false
        func handle(_ event: String) async throws(ProviderError) {
            count += 1
            if event == "[DONE]" {
                done = true
                return
            }
            guard let chunk = try? JSONDecoder().decode(WireCompletion.self, from: Data(event.utf8)) else {
                throw bad("sent stream event \(count), which is not valid JSON")
            }
            if chunk.error != nil { throw bad("reported an error in the middle of the answer (stream event \(count))") }
            for choice in chunk.choices ?? [] where (choice.index ?? 0) == 0 {
                if let piece = choice.delta?.content ?? choice.message?.content, !piece.isEmpty {
                    text += piece
                    await onText(piece)
                }
                for (position, call) in (choice.delta?.toolCalls ?? []).enumerated() {
                    if let problem = assembler.add(call, position: position, streaming: true) {
                        throw bad("sent \(problem)")
                    }
                }
                if let reason = choice.finishReason { finishReason = reason }
            }
            if let reported = self.usage(chunk.usage) { usage = reported }
        }
        reading: for try await bytes in body {
            guard let events = parser.feed(bytes) else { throw bad("sent a stream event larger than 1 MiB") }
            for event in events {
                try await handle(event)
                if done { break reading }
            }
        }
        if !done {
            for event in parser.finish() where !done { try await handle(event) }
        }
        guard done || finishReason != nil else {
            throw bad("stopped in the middle of the answer (the stream ended without finish_reason or [DONE])")
        }
        return ModelReply(text: text, toolCalls: try calls(assembler), finishReason: finishReason, usage: usage)
    }

    func calls(_ assembler: ToolCallAssembler) throws(ProviderError) -> [ToolCall] {
        do {
            return try assembler.finish()
        } catch {
            throw bad("sent \(error.text)")
        }
    }

    func usage(_ wire: WireCompletion.Usage?) -> TokenUsage? {
        guard let wire, wire.promptTokens != nil || wire.completionTokens != nil else { return nil }
        return TokenUsage(input: max(0, wire.promptTokens ?? 0), output: max(0, wire.completionTokens ?? 0))
    }

    /// "the model server at ORIGIN (provider NAME) <problem>": an answer that broke the wire format.
    func bad(_ problem: String) -> ProviderError {
        ProviderError(.badResponse, "the model server at \(origin) (provider \(name)) \(problem)")
    }

    /// What an HTTP error status means for the owner, and what to do.
    func statusFailure(_ status: Int, retryAfter: String?) -> ProviderError {
        let server = "the model server at \(origin) (provider \(name))"
        let model = "\"\(PrintableText.excerpt(settings.model, limit: 80))\""
        switch status {
        case 401, 403:
            guard let secret = settings.apiKeySecret else {
                return ProviderError(
                    .rejected,
                    "\(server) requires an API key (HTTP \(status)): add it with `moat vault add OPENAI_API_KEY` "
                        + "and set providers.\(name).api_key_secret: OPENAI_API_KEY")
            }
            let what =
                status == 401
                ? "refused the API key in vault secret \(secret)"
                : "refused access to model \(model) with the API key in vault secret \(secret)"
            return ProviderError(
                .rejected,
                "\(server) \(what) (HTTP \(status)): check the key, or replace it "
                    + "(`moat vault rm \(secret)`, then `moat vault add \(secret)`)")
        case 404:
            return ProviderError(
                .rejected,
                "\(server) answered 404 to POST \(endpoint.pathAndQuery): check that model \(model) is available "
                    + "there (for Ollama: `ollama pull \(PrintableText.excerpt(settings.model, limit: 80))`) and that "
                    + "providers.\(name).base_url is right (it usually ends in /v1)")
        case 429:
            var wait = ""
            if let retryAfter, let seconds = Int(retryAfter.trimmingCharacters(in: .whitespaces)),
                (0...86400).contains(seconds)
            {
                wait = " in \(seconds) s"
            }
            return ProviderError(.rateLimited, "\(server) is limiting requests (HTTP 429): try again\(wait)")
        case 400, 413, 422:
            return ProviderError(
                .rejected,
                "\(server) refused the request (HTTP \(status)): model \(model) may not support tools, or the "
                    + "conversation may be too long for it")
        case 500...599:
            return ProviderError(
                .badResponse,
                "\(server) failed (HTTP \(status)): see the server's log; a server that runs out of memory needs a "
                    + "smaller model")
        default:
            return ProviderError(.badResponse, "\(server) answered with unexpected HTTP status \(status)")
        }
    }

    /// A transport failure in the owner's words.
    func failure(_ error: NetError) -> ProviderError {
        switch error.code {
        case .connectFailed:
            let state = error.message.contains("connection refused") ? "is not running" : "cannot be reached"
            return ProviderError(
                .unreachable, "the model server at \(origin) \(state): \(startHint) (provider \(name))")
        case .timedOut:
            return ProviderError(
                .timedOut,
                "provider \(name): \(error.message); a slow model needs longer providers.\(name).timeouts "
                    + "(or a smaller model)")
        default:
            return ProviderError(.badResponse, "provider \(name): \(error.message)")
        }
    }

    /// How to start the server usually found on this port.
    var startHint: String {
        switch endpoint.port {
        case 11434: "start it with `ollama serve`"
        case 1234: "start the server in LM Studio (or `lms server start`)"
        case 8080: "start it (llama.cpp: `llama-server -m MODEL.gguf --jinja`)"
        case 8000: "start it (vLLM: `vllm serve MODEL`; llama-cpp-python: `python -m llama_cpp.server`)"
        default: "start it, or fix providers.\(name).base_url"
        }
    }
}
