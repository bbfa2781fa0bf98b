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
    public var settings: ProviderSettings { connection.settings }
    public var contextTokens: Int? { settings.contextTokens }
    /// `{base_url}/chat/completions`, its key and its transport.
    let connection: ProviderEndpoint

    /// - Parameters:
    ///   - vault: where ``ProviderSettings/apiKeySecret`` is read from (nil: no vault is open; a
    ///     provider that needs a key then fails each round with a clear message).
    ///   - resolver: how the base URL's host name is resolved (tests inject one).
    /// - Throws: ``ProviderError`` `.configuration` when the base URL is unusable.
    public init(
        settings: ProviderSettings, vault: UnlockedVault?, resolver: AddressResolver = .system,
        userAgent: String = "Moat/\(MoatVersion.current)"
    ) throws(ProviderError) {
        connection = try ProviderEndpoint(
            settings: settings, path: "/chat/completions", vault: vault, resolver: resolver, userAgent: userAgent)
    }

    var endpoint: FetchURL { connection.url }
    /// `scheme://host:port` of the model server, for messages.
    var origin: String { connection.origin }

    public func complete(
        _ request: ModelRequest, onText: @escaping @Sendable (String) async -> Void
    ) async throws(ProviderError) -> ModelReply {
        let body = try connection.encode { () throws(ToolParametersError) in
            try ChatCompletionRequest(
                model: settings.model, request: request, stream: settings.stream,
                maxTokens: request.maximumOutputTokens ?? settings.maxTokens)
        }
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"),
            ("Accept", settings.stream ? "text/event-stream" : "application/json"),
        ]
        if let key = try connection.apiKey() { headers.append(("Authorization", "Bearer " + key)) }
        return try await connection.post(
            body, headers: headers, statusFailure: { status, _ in statusFailure(status) },
            read: { response in try await read(response, onText: onText) })
    }

    /// Reads one 2xx answer: server-sent events, or one JSON document.
    func read(
        _ response: PinnedHTTPTransport.StreamedResponse, onText: @escaping @Sendable (String) async -> Void
    ) async throws -> ModelReply {
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

    func bad(_ problem: String) -> ProviderError { connection.bad(problem) }

    func failure(_ error: NetError) -> ProviderError { connection.failure(error) }

    /// What an HTTP error status means for the owner, and what to do.
    func statusFailure(_ status: Int) -> ProviderError {
        let server = connection.server
        let model = connection.quotedModel
        switch status {
        case 401, 403:
            return connection.keyFailure(status, exampleSecret: "OPENAI_API_KEY")
        case 404:
            return ProviderError(
                .rejected,
                "\(server) answered 404 to POST \(endpoint.pathAndQuery): check that model \(model) is available "
                    + "there (for Ollama: `ollama pull \(PrintableText.excerpt(settings.model, limit: 80))`) and that "
                    + "providers.\(name).base_url is right (it usually ends in /v1)")
        case 429:
            return connection.rateLimited
        case 400, 413, 422:
            return ProviderError(
                .rejected,
                "\(server) refused the request (HTTP \(status)): model \(model) may not support tools, or the "
                    + "conversation may be too long for it")
        case 500...599:
            return connection.serverFailure(status)
        default:
            return ProviderError(.badResponse, "\(server) answered with unexpected HTTP status \(status)")
        }
    }
}
