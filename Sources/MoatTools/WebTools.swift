public import MoatCore
public import MoatNet
public import MoatVault
import NIOCore

/// The outbound side the web tools share: the SSRF guard (with the owner's `policy.ssrf` exceptions,
/// the one list of them) and the transport pinned to the address the guard checked, with the size and
/// time caps of `tools.web`.
public struct WebAccess: Sendable {
    let guardrail: URLGuard
    let transport: any PinnedTransport

    /// - Parameters:
    ///   - ssrf: the owner's exceptions and blocks (`policy.ssrf`).
    ///   - resolver: DNS; tests give their own.
    ///   - transport: the pinned transport; by default `PinnedHTTPTransport` with the caps of `settings`.
    public init(
        ssrf: SSRFSettings,
        settings: ToolsSettings,
        resolver: AddressResolver = .system,
        transport: (any PinnedTransport)? = nil
    ) throws(ToolError) {
        guardrail = URLGuard(settings: ssrf, resolver: resolver)
        if let transport {
            self.transport = transport
            return
        }
        var limits = PinnedHTTPTransport.Limits()
        limits.maximumBodyBytes = settings.fetchBytes
        limits.totalTimeout = .seconds(settings.fetchTimeLimit.components.seconds)
        limits.connectTimeout = .seconds(min(10, settings.fetchTimeLimit.components.seconds))
        do {
            self.transport = try PinnedHTTPTransport(limits: limits, userAgent: "Moat")
        } catch {
            throw ToolError(.failed, "the web tools cannot set up TLS: \(error)")
        }
    }

    /// The URL parsed, or a message for the model; `{{secret:…}}` is refused in a URL, which is written
    /// to logs and the audit log.
    static func parse(_ text: String, tool: String) throws(ToolError) -> FetchURL {
        if text.contains("{{secret:") {
            throw ToolError(
                .invalidArguments,
                "\(tool): {{secret:…}} placeholders are not allowed in a URL (URLs are logged and audited); put the "
                    + "secret in a header or the body of http_request")
        }
        switch FetchURL.parse(text) {
        case .success(let url): return url
        case .failure(let error):
            throw ToolError(.invalidArguments, "\(tool): the URL is not accepted: \(error.message)")
        }
    }

    /// A guard refusal or a failed fetch as the tool's error.
    static func toolError(_ error: NetError, tool: String) -> ToolError {
        ToolError(error.code == .urlRefused ? .refused : .failed, "\(tool): \(error.message)")
    }

    /// The response for the model: status, origin, content type, selected headers, then the body as text.
    static func describe(_ response: FetchResponse, from url: FetchURL, headers: Bool) -> String {
        let type = response.header("content-type") ?? "none given"
        var text = "HTTP \(response.status) from \(url.origin); content-type: \(type); \(response.body.count) bytes"
        if headers {
            for header in response.headers {
                text += "\n\(PrintableText.strip(header.name)): \(PrintableText.strip(header.value))"
            }
        }
        return text + "\n\n" + ToolText.lossy(response.body)
    }
}

/// `web_fetch {url}` [web]: GET a URL through the SSRF guard, redirects re-checked at every hop; the
/// body as text (UTF-8, malformed bytes replaced), cut to `tools.output_bytes`. External: it taints the turn.
public struct WebFetchTool: BuiltinTool {
    public let name = "web_fetch"
    public let domain = TrustDomain.web
    public let description =
        "Fetch a web page or file over http(s) with GET and return its text. Private and local addresses are "
        + "refused unless the owner allowed them."
    let parameterList: [ToolParameter] = [.string("url", "The http or https URL to fetch.")]
    let access: WebAccess
    let settings: ToolsSettings

    public init(access: WebAccess, settings: ToolsSettings) {
        self.access = access
        self.settings = settings
    }

    public func prepare(_ arguments: String) throws(ToolError) -> PreparedCall {
        let checked = try checkedArguments(arguments)
        let url = try WebAccess.parse(checked.string("url"), tool: name)
        return prepared(checked, destination: url.hostHeader, summary: "fetch \(url)")
    }

    public func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        let url = try WebAccess.parse(try checkedArguments(of: call).string("url"), tool: name)
        let fetcher = GuardedFetcher(guardrail: access.guardrail, transport: access.transport)
        let outcome: GuardedFetcher.Outcome
        do {
            outcome = try await fetcher.fetch(
                url.description, headers: [("Accept", "text/html, text/plain, application/json, */*;q=0.5")])
        } catch {
            throw WebAccess.toolError(error, tool: name)
        }
        let final = outcome.visited.last?.url ?? url
        let text = WebAccess.describe(outcome.response, from: final, headers: false)
        return ToolOutput(text: text, external: true).capped(settings.outputBytes)
    }
}

/// `http_request {method, url, headers, body}` [integrations]: one request to an API, with
/// `{{secret:NAME}}` placeholders in header values and the body resolved only here, at egress, and only
/// when the secret's policy allows `http_request` and the URL's host.
///
/// The model never sees a value: the prepared call keeps the placeholders, a placeholder in the URL is
/// refused (URLs are logged), redirects are not followed (a secret never goes to a second host; the 3xx
/// comes back as the result), and the whole result — status, headers and body — is scrubbed of every
/// vault value before it is returned, so a server echoing a secret back gives `[secret:NAME]`.
public struct HTTPRequestTool: BuiltinTool {
    public let name = "http_request"
    public let domain = TrustDomain.integrations
    public let description =
        "Send one HTTP request to an API and return the status, headers and body. Header values and the body "
        + "may hold {{secret:NAME}} placeholders, filled in by the gateway when the secret's policy allows this "
        + "host; the URL may not. Redirects are returned, not followed."
    let parameterList: [ToolParameter] = [
        .string("method", "One of GET, POST, PUT, PATCH, DELETE, HEAD."),
        .string("url", "The http or https URL (no secrets in it)."),
        ToolParameter(
            name: "headers", kind: .stringMap, required: false,
            description: "Request headers, like {\"Authorization\": \"Bearer {{secret:API_TOKEN}}\"}."),
        .string("body", "The request body (text), for POST, PUT and PATCH.", required: false),
    ]
    public static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    /// Headers the transport sets itself, or that would change how the message is framed.
    static let reservedHeaders: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive",
        "proxy-authorization", "proxy-connection", "accept-encoding",
    ]

    let access: WebAccess
    let settings: ToolsSettings
    let vault: UnlockedVault?

    /// - Parameter vault: where placeholders are resolved and results scrubbed; without one a request
    ///   with a placeholder is refused.
    public init(access: WebAccess, settings: ToolsSettings, vault: UnlockedVault?) {
        self.access = access
        self.settings = settings
        self.vault = vault
    }

    private struct Request {
        let method: String
        let url: FetchURL
        let headers: [(name: String, value: String)]
        let body: String
    }

    private func check(_ arguments: ToolArguments) throws(ToolError) -> Request {
        let method = arguments.string("method")
        guard Self.methods.contains(method) else {
            throw ToolError(
                .invalidArguments, "http_request: \"method\" must be one of \(Self.methods.joined(separator: ", "))")
        }
        let url = try WebAccess.parse(arguments.string("url"), tool: name)
        let headers = arguments.stringMap("headers")
        var seen: Set<String> = []
        for header in headers {
            let lower = header.name.lowercased()
            guard !header.name.isEmpty, header.name.utf8.count <= 256,
                header.name.unicodeScalars.allSatisfy({ $0.isASCII && Self.tokenCharacters.contains($0) })
            else {
                throw ToolError(
                    .invalidArguments,
                    "http_request: the header name '\(PrintableText.excerpt(header.name, limit: 40))' is not a valid "
                        + "HTTP field name")
            }
            guard seen.insert(lower).inserted else {
                throw ToolError(.invalidArguments, "http_request: the header \(header.name) is given twice")
            }
            guard !Self.reservedHeaders.contains(lower) else {
                throw ToolError(
                    .invalidArguments, "http_request: the header \(header.name) is set by the gateway; leave it out")
            }
            guard !header.value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }),
                header.value.utf8.count <= 8192
            else {
                throw ToolError(
                    .invalidArguments,
                    "http_request: the value of \(header.name) must be one line of at most 8192 bytes")
            }
        }
        let body = arguments.string("body")
        guard body.utf8.count <= settings.fetchBytes else {
            throw ToolError(.invalidArguments, "http_request: the body is larger than \(settings.fetchBytes) bytes")
        }
        return Request(method: method, url: url, headers: headers, body: body)
    }

    static let tokenCharacters = Set(
        "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".unicodeScalars)

    public func prepare(_ arguments: String) throws(ToolError) -> PreparedCall {
        let checked = try checkedArguments(arguments)
        let request = try check(checked)
        let secrets = request.headers.contains { $0.value.contains("{{secret:") } || request.body.contains("{{secret:")
        var summary = "\(request.method) \(request.url)"
        if !request.headers.isEmpty {
            summary += " with headers " + request.headers.map(\.name).joined(separator: ", ")
        }
        if !request.body.isEmpty { summary += ", a \(request.body.utf8.count)-byte body" }
        if secrets { summary += " (secrets filled in at egress)" }
        return prepared(checked, destination: request.url.hostHeader, summary: summary)
    }

    public func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        let request = try check(try checkedArguments(of: call))
        let checkedURL: CheckedURL
        switch await access.guardrail.check(request.url) {
        case .allow(let allowed): checkedURL = allowed
        case .deny(let reason): throw ToolError(.refused, "http_request: the URL was refused: \(reason)")
        }
        // The policy's host: the name in the URL, or the address as written in a policy (no brackets).
        let host: String
        switch request.url.host {
        case .name(let name): host = name
        case .address(let address): host = address.description
        }
        var headers: [(name: String, value: String)] = []
        let body: String
        do {
            for header in request.headers {
                headers.append((header.name, try resolve(header.value, host: host)))
            }
            body = try resolve(request.body, host: host)
        } catch {
            throw ToolError(.refused, "http_request: \(error.message); the request was not sent")
        }
        // Resolved, so every placeholder named an allowed secret: their use is recorded before they leave.
        var used: [String] = []
        for name in ([request.body] + request.headers.map(\.value)).flatMap(SecretName.placeholders(in:))
        where !used.contains(name) {
            used.append(name)
        }
        if !used.isEmpty, let record = context.recordSecretUse {
            do {
                try await record(used, host)
            } catch {
                throw ToolError(
                    .refused,
                    "http_request: the use of \(used.joined(separator: ", ")) could not be recorded in the audit log; "
                        + "the request was not sent")
            }
        }
        let response: FetchResponse
        do {
            response = try await access.transport.send(
                checkedURL, method: request.method, headers: headers, body: Array(body.utf8))
        } catch let error as NetError {
            throw ToolError(.failed, "http_request: \(scrub(error.message))")
        } catch {
            throw ToolError(.failed, "http_request: the request to \(request.url.origin) failed")
        }
        // Scrubbed whole before it is cut, so a cut can never leave part of a value behind.
        let text = scrub(WebAccess.describe(response, from: request.url, headers: true))
        return ToolOutput(text: text, external: true).capped(settings.outputBytes)
    }

    private func resolve(_ text: String, host: String) throws(VaultError) -> String {
        guard text.contains("{{secret:") else { return text }
        guard let vault else {
            throw VaultError(.notFound, "a {{secret:…}} placeholder needs the vault, and no vault is open")
        }
        return try vault.resolvePlaceholders(in: text, tool: name, host: host)
    }

    private func scrub(_ text: String) -> String {
        vault?.scrub(text) ?? text
    }
}
