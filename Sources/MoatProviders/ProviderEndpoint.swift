import Foundation
import MoatCore
import MoatNet
import MoatVault
import NIOCore
import Synchronization

/// The part every provider shares: one owner-configured endpoint, the API key read from the vault at
/// egress, one HTTP exchange with the provider's time and size limits, and the failures in the owner's
/// words, marked ``ProviderError/retryable`` only when nothing of the answer was read.
struct ProviderEndpoint: Sendable {
    let settings: ProviderSettings
    /// `{base_url}/chat/completions` or `{base_url}/v1/messages`.
    let url: FetchURL
    let vault: UnlockedVault?
    let resolver: AddressResolver
    let transport: PinnedHTTPTransport

    /// - Throws: ``ProviderError`` `.configuration` when the base URL is unusable.
    init(
        settings: ProviderSettings, path: String, vault: UnlockedVault?, resolver: AddressResolver, userAgent: String
    ) throws(ProviderError) {
        if let problem = ProviderSettings.baseURLProblem(settings.baseURL, kind: settings.kind) {
            throw ProviderError(.configuration, "providers.\(settings.name).base_url \(problem)")
        }
        let base = settings.baseURL.hasSuffix("/") ? String(settings.baseURL.dropLast()) : settings.baseURL
        guard case .success(let url) = FetchURL.parse(base + path) else {
            throw ProviderError(.configuration, "providers.\(settings.name).base_url is not a usable URL")
        }
        var limits = PinnedHTTPTransport.Limits()
        limits.maximumBodyBytes = settings.maximumResponseBytes
        do {
            // A model round after the last reuses its connection (same checked address, re-resolved each
            // round): a new TCP connection per round was about a quarter of a turn's CPU.
            transport = try PinnedHTTPTransport(
                limits: limits, userAgent: userAgent, keepAlive: PinnedConnectionPool.Limits())
        } catch {
            throw ProviderError(.configuration, "the TLS client for provider \(settings.name) cannot be set up")
        }
        self.settings = settings
        self.url = url
        self.vault = vault
        self.resolver = resolver
    }

    var name: String { settings.name }
    /// `scheme://host:port` of the model server, for messages.
    var origin: String { url.origin }
    /// "the model server at ORIGIN (provider NAME)".
    var server: String { "the model server at \(origin) (provider \(name))" }

    /// The JSON body of a request (`make` builds it; a tool whose parameters are not a JSON object is a
    /// programming error in the tool, reported as a configuration problem).
    func encode<Body: Encodable>(_ make: () throws(ToolParametersError) -> Body) throws(ProviderError) -> [UInt8] {
        do {
            let body = try make()
            if let written = body as? any WrittenJSON { return try written.json() }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            return Array(try encoder.encode(body))
        } catch let error as ToolParametersError {
            throw ProviderError(
                .configuration,
                "the parameters of tool \(PrintableText.excerpt(error.tool, limit: 64)) are not a JSON object")
        } catch {
            throw ProviderError(.configuration, "the request for provider \(name) cannot be encoded")
        }
    }

    /// One `POST` of `body`. A status outside 2xx becomes `statusFailure(status, errorType)` (with
    /// `errorType` read from the error body's `error.type` when the server sent JSON), retryable for
    /// 408, 429 and 5xx; a 2xx answer is handed to `read`. A connection refused, or closed before the
    /// answer's head, is retryable; anything after the head is not (part of the answer was read).
    func post<Reply: Sendable>(
        _ body: [UInt8], headers: [(name: String, value: String)],
        statusFailure: (Int, String?) -> ProviderError,
        read: (PinnedHTTPTransport.StreamedResponse) async throws -> Reply
    ) async throws(ProviderError) -> Reply {
        let target: CheckedURL
        do {
            target = try await CheckedURL.ownerConfigured(url, resolver: resolver)
        } catch {
            throw error.code == .urlRefused
                ? ProviderError(.configuration, "providers.\(name).base_url is refused: \(error.message)")
                : ProviderError(
                    .unreachable, "the model server of provider \(name) cannot be reached: \(error.message)"
                )
                .countsAsDown()
        }
        let answered = Atomic(false)
        do {
            return try await transport.stream(
                target, method: "POST", headers: headers, body: body, limits: streamLimits
            ) { response in
                answered.store(true, ordering: .sequentiallyConsistent)
                guard (200..<300).contains(response.status) else {
                    throw await failure(response, statusFailure: statusFailure)
                }
                return try await read(response)
            }
        } catch let error as ProviderError {
            throw error
        } catch let error as NetError {
            let failure = failure(error)
            let beforeAnswer = !answered.load(ordering: .sequentiallyConsistent) && error.code != .timedOut
            throw beforeAnswer ? failure.markedRetryable() : failure
        } catch {
            throw ProviderError(.badResponse, "the exchange with \(server) failed")
        }
    }

    /// An error status as a ``ProviderError``: the server's `error.type` (never its message, which can
    /// quote the request) is read from at most 64 KiB of the body.
    func failure(
        _ response: PinnedHTTPTransport.StreamedResponse, statusFailure: (Int, String?) -> ProviderError
    ) async -> ProviderError {
        var bytes: [UInt8] = []
        do {
            for try await chunk in response.body {
                bytes += chunk.prefix(max(0, (64 << 10) - bytes.count))
                if bytes.count >= 64 << 10 { break }
            }
        } catch {
            // The status says enough; a body cut short changes nothing.
        }
        let errorType = (try? JSONDecoder().decode(WireErrorBody.self, from: Data(bytes)))?.error?.type
            .flatMap { type in
                type.utf8.count <= 64 && type.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || $0 == "_" }
                    ? type : nil
            }
        let status = response.status
        return Self.classified(
            statusFailure(status, errorType), status: status, shouldRetry: response.header("x-should-retry"),
            after: RetryAfter.parse(
                milliseconds: response.header("retry-after-ms"), header: response.header("retry-after")))
    }

    /// An error status's failure marked as the status says: a 5xx or 529 counts toward the breaker;
    /// 408, 429 and 5xx may be sent again, unless the server's `x-should-retry` (which Anthropic and
    /// OpenAI send) says otherwise: `false` is never retried, `true` is retried whatever the status
    /// (the answer's body was not read, so nothing of it reached the agent).
    static func classified(_ error: ProviderError, status: Int, shouldRetry: String?, after: RetryAfter?)
        -> ProviderError
    {
        let down = (500...599).contains(status) ? error.countsAsDown() : error
        let byStatus = status == 408 || status == 429 || (500...599).contains(status)
        let retry =
            switch shouldRetry?.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true": true
            case "false": false
            default: byStatus
            }
        return retry ? down.markedRetryable(after: after) : down
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

    /// "the model server at ORIGIN (provider NAME) <problem>": an answer that broke the wire format.
    func bad(_ problem: String) -> ProviderError {
        ProviderError(.badResponse, "\(server) \(problem)")
    }

    /// 401 or 403: the key is missing or refused. `exampleSecret` names the secret in the advice when
    /// the provider has none (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`).
    func keyFailure(_ status: Int, exampleSecret: String) -> ProviderError {
        guard let secret = settings.apiKeySecret else {
            return ProviderError(
                .rejected,
                "\(server) requires an API key (HTTP \(status)): add it with `moat vault add \(exampleSecret)` "
                    + "and set providers.\(name).api_key_secret: \(exampleSecret)")
        }
        let what =
            status == 401
            ? "refused the API key in vault secret \(secret)"
            : "refused access to model \(quotedModel) with the API key in vault secret \(secret)"
        return ProviderError(
            .rejected,
            "\(server) \(what) (HTTP \(status)): check the key, or replace it "
                + "(`moat vault rm \(secret)`, then `moat vault add \(secret)`)")
    }

    /// 429: the server is limiting requests.
    var rateLimited: ProviderError {
        ProviderError(.rateLimited, "\(server) is limiting requests (HTTP 429): try again later")
    }

    /// 5xx: the server failed.
    func serverFailure(_ status: Int) -> ProviderError {
        ProviderError(
            .badResponse,
            "\(server) failed (HTTP \(status)): see the server's log; a server that runs out of memory needs a "
                + "smaller model")
    }

    var quotedModel: String { "\"\(PrintableText.excerpt(settings.model, limit: 80))\"" }

    /// A transport failure in the owner's words.
    func failure(_ error: NetError) -> ProviderError {
        switch error.code {
        case .connectFailed:
            let state = error.message.contains("connection refused") ? "is not running" : "cannot be reached"
            return ProviderError(
                .unreachable, "the model server at \(origin) \(state): \(startHint) (provider \(name))"
            )
            .countsAsDown()
        case .timedOut:
            return ProviderError(
                .timedOut,
                "provider \(name): \(error.message); a slow model needs longer providers.\(name).timeouts "
                    + "(or a smaller model)"
            ).countsAsDown()
        default:
            return ProviderError(.badResponse, "provider \(name): \(error.message)").countsAsDown()
        }
    }

    /// How to start the server usually found on this port.
    var startHint: String {
        switch url.port {
        case 11434: "start it with `ollama serve`"
        case 1234: "start the server in LM Studio (or `lms server start`)"
        case 8080: "start it (llama.cpp: `llama-server -m MODEL.gguf --jinja`)"
        case 8000: "start it (vLLM: `vllm serve MODEL`; llama-cpp-python: `python -m llama_cpp.server`)"
        default: "start it, or fix providers.\(name).base_url"
        }
    }
}

/// `{"error": {"type": "…", "message": "…"}}` (Anthropic) or `{"error": {"type": …, "code": …}}`
/// (OpenAI): only the type is read.
struct WireErrorBody: Decodable {
    struct Detail: Decodable {
        let type: String?
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            type = try? container.decodeIfPresent(String.self, forKey: .type)
        }
        enum CodingKeys: String, CodingKey { case type }
    }
    let error: Detail?
}
