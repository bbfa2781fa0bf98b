import Foundation
public import MoatCore
public import MoatNet
public import MoatVault

/// A model behind Anthropic's Messages API (Docs/Providers.md).
///
/// One round is one `POST {base_url}/v1/messages` with `anthropic-version: 2023-06-01`: the system
/// messages become the top-level `system`, the rest alternating `user` / `assistant` turns with
/// `tool_use` and `tool_result` content blocks, the tools with their `input_schema`, and `max_tokens`
/// (required by the API). A streamed answer hands `text_delta` pieces to `onText` and assembles each
/// `tool_use` block's input from its `input_json_delta` pieces; event types it does not know are
/// skipped; an `error` event ends the round (retryable only when no content block had started). The
/// API key is read from the vault at egress and sent as `x-api-key`; it appears in no
/// error, and the server's own error text is never shown (only its `error.type`).
public struct AnthropicProvider: ModelProvider {
    /// The API version this wire format follows.
    public static let apiVersion = "2023-06-01"

    public var name: String { settings.name }
    public var settings: ProviderSettings { connection.settings }
    public var contextTokens: Int? { settings.contextTokens }
    let connection: ProviderEndpoint

    /// - Throws: ``ProviderError`` `.configuration` when the base URL is unusable.
    public init(
        settings: ProviderSettings, vault: UnlockedVault?, resolver: AddressResolver = .system,
        userAgent: String = "Moat/\(MoatVersion.current)"
    ) throws(ProviderError) {
        connection = try ProviderEndpoint(
            settings: settings, path: "/v1/messages", vault: vault, resolver: resolver, userAgent: userAgent)
    }

    public func complete(
        _ request: ModelRequest, onText: @escaping @Sendable (String) async -> Void
    ) async throws(ProviderError) -> ModelReply {
        let maxTokens = request.maximumOutputTokens ?? settings.maxTokens ?? ProviderSettings.anthropicDefaultMaxTokens
        let body = try connection.encode { () throws(ToolParametersError) in
            try MessagesRequest(model: settings.model, request: request, maxTokens: maxTokens, stream: settings.stream)
        }
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"),
            ("Accept", settings.stream ? "text/event-stream" : "application/json"),
            ("anthropic-version", Self.apiVersion),
        ]
        if let key = try connection.apiKey() { headers.append(("x-api-key", key)) }
        return try await connection.post(body, headers: headers, statusFailure: statusFailure) { response in
            let contentType = response.header("content-type")?.lowercased() ?? ""
            if contentType.hasPrefix("text/event-stream") {
                return try await readEvents(response.body, onText: onText)
            }
            var bytes: [UInt8] = []
            for try await chunk in response.body { bytes += chunk }
            guard let whole = try? JSONDecoder().decode(MessagesResponse.self, from: Data(bytes)),
                whole.type == "message"
            else { throw connection.bad("sent an answer that is not a Messages API message") }
            var assembler = ContentAssembler()
            for (index, block) in (whole.content ?? []).enumerated() {
                if let problem = assembler.start(block, index: index) { throw connection.bad("sent \(problem)") }
            }
            let reply = assembler.reply(stopReason: whole.stopReason, usage: whole.usage)
            if settings.stream, !reply.text.isEmpty { await onText(reply.text) }
            return reply
        }
    }

    /// Reads a streamed answer: `message_start`, then per content block `content_block_start`,
    /// `content_block_delta`s and `content_block_stop`, then `message_delta` (stop reason, output
    /// tokens) and `message_stop`; `ping` and unknown types are skipped, `error` ends the round.
    func readEvents(
        _ body: PinnedHTTPTransport.ResponseBody, onText: @escaping @Sendable (String) async -> Void
    ) async throws -> ModelReply {
        var parser = ServerSentEventParser()
        var assembler = ContentAssembler()
        var stopReason: String?
        var input: Int?
        var output: Int?
        var count = 0
        var stopped = false
        func handle(_ data: String) async throws(ProviderError) {
            count += 1
            guard let event = try? JSONDecoder().decode(MessagesStreamEvent.self, from: Data(data.utf8)) else {
                throw connection.bad("sent stream event \(count), which is not valid JSON")
            }
            switch event.type {
            case "message_start":
                input = event.message?.usage?.inputTokens ?? input
                output = event.message?.usage?.outputTokens ?? output
            case "content_block_start":
                guard let index = event.index, let block = event.contentBlock else {
                    throw connection.bad("sent content_block_start (stream event \(count)) without index or block")
                }
                if let problem = assembler.start(block, index: index) { throw connection.bad("sent \(problem)") }
                if let text = block.text, block.type == "text", !text.isEmpty { await onText(text) }
            case "content_block_delta":
                guard let index = event.index, let delta = event.delta else {
                    throw connection.bad("sent content_block_delta (stream event \(count)) without index or delta")
                }
                switch assembler.add(delta, index: index) {
                case .failure(let problem): throw connection.bad("sent \(problem.text) (stream event \(count))")
                case .success(let text?): await onText(text)
                case .success(nil): break
                }
            case "message_delta":
                stopReason = event.delta?.stopReason ?? stopReason
                input = event.usage?.inputTokens ?? input
                output = event.usage?.outputTokens ?? output
            case "message_stop":
                stopped = true
            case "error":
                // Before any content block nothing of the answer was read: the same as a 529 or 429 status.
                let error = streamError(event.error?.type, event: count)
                throw assembler.isEmpty ? error.markedRetryable() : error
            default:
                // content_block_stop, ping, and event types added after this client was written.
                break
            }
        }
        reading: for try await bytes in body {
            guard let events = parser.feed(bytes) else {
                throw connection.bad("sent a stream event larger than 1 MiB")
            }
            for event in events {
                try await handle(event)
                if stopped { break reading }
            }
        }
        if !stopped {
            for event in parser.finish() where !stopped { try await handle(event) }
        }
        guard stopped else {
            throw connection.bad("stopped in the middle of the answer (the stream ended without message_stop)")
        }
        let usage = input == nil && output == nil ? nil : MessagesUsage(inputTokens: input, outputTokens: output)
        return assembler.reply(stopReason: stopReason, usage: usage)
    }

    /// An `error` event in the middle of a streamed answer (the status was already 200).
    func streamError(_ type: String?, event: Int) -> ProviderError {
        let type = Self.printableType(type) ?? "an error"
        switch type {
        case "rate_limit_error":
            return ProviderError(
                .rateLimited, "\(connection.server) is limiting requests (rate_limit_error in stream event \(event))")
        case "overloaded_error", "api_error":
            return ProviderError(
                .badResponse,
                "\(connection.server) reported \(type) in the middle of the answer (stream event \(event)): "
                    + "the API is overloaded or failing; try again later"
            ).countsAsDown()
        default:
            return ProviderError(
                .badResponse,
                "\(connection.server) reported \(type) in the middle of the answer (stream event \(event))")
        }
    }

    /// An error `type` fit to show: lower-case letters and `_` only, at most 64 characters.
    static func printableType(_ type: String?) -> String? {
        guard let type, !type.isEmpty, type.utf8.count <= 64,
            type.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || $0 == "_" })
        else { return nil }
        return type
    }

    /// What an HTTP error status (and the body's `error.type`) means for the owner, and what to do.
    func statusFailure(_ status: Int, _ errorType: String?) -> ProviderError {
        let server = connection.server
        let model = connection.quotedModel
        let detail = errorType.map { "HTTP \(status), \($0)" } ?? "HTTP \(status)"
        switch status {
        case 401, 403:
            return connection.keyFailure(status, exampleSecret: "ANTHROPIC_API_KEY")
        case 402:
            return ProviderError(
                .rejected, "\(server) refused the request (\(detail)): check the account's billing and credits")
        case 404:
            return ProviderError(
                .rejected,
                "\(server) answered 404 to POST /v1/messages (\(detail)): check that model \(model) exists and that "
                    + "providers.\(name).base_url is the URL before /v1/messages (https://api.anthropic.com)")
        case 400, 413, 422:
            return ProviderError(
                .rejected,
                "\(server) refused the request (\(detail)): model \(model) may not support tools, or the "
                    + "conversation may be too long for it")
        case 429:
            return connection.rateLimited
        case 529:
            return ProviderError(.badResponse, "\(server) is overloaded (\(detail)): try again later")
        case 500...599:
            return ProviderError(.badResponse, "\(server) failed (\(detail)): a problem on the server's side")
        default:
            return ProviderError(.badResponse, "\(server) answered with unexpected HTTP status \(status)")
        }
    }
}

/// Builds the answer from content blocks, whole or streamed: text blocks in order, `tool_use` blocks
/// with their input (the whole `input` object, or the concatenated `partial_json` pieces).
struct ContentAssembler {
    private var blocks: [Int: Block] = [:]
    private var order: [Int] = []

    private struct Block {
        var isTool: Bool
        var id: String
        var name: String
        var text: String
        /// The `input` of `content_block_start`, used when no `partial_json` followed.
        var startInput: JSONValue?
    }

    /// Whether no content block has started.
    var isEmpty: Bool { order.isEmpty }

    /// Records a block's start; blocks of other types than `text` and `tool_use` are kept out.
    mutating func start(_ block: ContentBlock, index: Int) -> String? {
        guard block.type == "text" || block.type == "tool_use" else { return nil }
        guard blocks[index] == nil else { return "content block \(index) twice" }
        guard order.count < ToolCallAssembler.maximumCalls * 2 else { return "more than 128 content blocks" }
        let isTool = block.type == "tool_use"
        if isTool, blocks.values.filter(\.isTool).count >= ToolCallAssembler.maximumCalls {
            return "more than \(ToolCallAssembler.maximumCalls) tool calls in one answer"
        }
        if isTool, (block.name ?? "").isEmpty { return "tool_use block \(index) without a name" }
        blocks[index] = Block(
            isTool: isTool, id: block.id ?? "", name: block.name ?? "", text: isTool ? "" : block.text ?? "",
            startInput: isTool ? block.input : nil)
        order.append(index)
        return nil
    }

    /// Adds a delta; returns the text to show (a `text_delta`), nil for anything else.
    mutating func add(_ delta: MessagesStreamEvent.Delta, index: Int) -> Result<String?, WireProblem> {
        switch delta.type {
        case "text_delta":
            guard blocks[index]?.isTool == false, let text = delta.text else {
                return .failure(WireProblem(text: "a text_delta for content block \(index), which is not text"))
            }
            blocks[index]?.text += text
            return .success(text.isEmpty ? nil : text)
        case "input_json_delta":
            guard blocks[index]?.isTool == true, let piece = delta.partialJSON else {
                return .failure(
                    WireProblem(text: "an input_json_delta for content block \(index), which is not a tool_use"))
            }
            blocks[index]?.text += piece
            return .success(nil)
        default:
            return .success(nil)  // thinking_delta, signature_delta, citations_delta, …
        }
    }

    /// The reply: the text blocks joined, the tool calls in block order with their input as JSON text
    /// (see ``arguments(streamed:whole:)``), the stop reason in the words
    /// ``ModelReply/finishReason`` uses (`stop`, `tool_calls`, `length`; others as sent).
    func reply(stopReason: String?, usage: MessagesUsage?) -> ModelReply {
        var text = ""
        var calls: [ToolCall] = []
        for index in order.sorted() {
            guard let block = blocks[index] else { continue }
            if !block.isTool {
                text += block.text
                continue
            }
            let arguments = Self.arguments(streamed: block.text, whole: block.startInput)
            calls.append(
                ToolCall(
                    id: block.id.isEmpty ? "toolu_\(calls.count + 1)" : block.id, name: block.name, arguments: arguments
                ))
        }
        let finish: String? =
            switch stopReason {
            case "end_turn", "stop_sequence": "stop"
            case "tool_use": "tool_calls"
            case "max_tokens": "length"
            case let other: other.flatMap(AnthropicProvider.printableType)
            }
        let tokens = usage.flatMap { usage in
            usage.inputTokens == nil && usage.outputTokens == nil
                ? nil : TokenUsage(input: max(0, usage.inputTokens ?? 0), output: max(0, usage.outputTokens ?? 0))
        }
        return ModelReply(text: text, toolCalls: calls, finishReason: finish, usage: tokens)
    }

    /// A call's input as JSON text, the same whether it came whole (`input`) or in `partial_json`
    /// pieces: valid JSON is written again with sorted keys; pieces that do not form valid JSON are
    /// kept as sent (model output: the tool that receives them checks them and says what is wrong).
    static func arguments(streamed: String, whole: JSONValue?) -> String {
        let value: JSONValue?
        if streamed.isEmpty {
            value = whole ?? .object([:])
        } else {
            value = try? JSONDecoder().decode(JSONValue.self, from: Data(streamed.utf8))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let value, let data = try? encoder.encode(value) else { return streamed }
        return String(decoding: data, as: UTF8.self)
    }
}
