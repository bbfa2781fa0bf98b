import Crypto
import Foundation
import MoatCore
public import MoatNet
public import MoatVault
import NIOCore
import Synchronization

/// The Matrix client-server API (v3) as the bot's account uses it: who am I, `/sync`, join and leave a
/// room, send a text. Every request goes through MoatNet's pinned transport to the owner-configured
/// homeserver (``CheckedURL/ownerConfigured(_:resolver:)``: loopback and LAN allowed, metadata addresses
/// and credentials in the URL refused), with the access token read from the vault at the request (or got
/// by a password login kept in memory). The token is sent only in the `Authorization` header, to that
/// homeserver; no message, error or log line holds it.
public final class MatrixClient: Sendable {
    /// Bounds of one request.
    public struct Limits: Sendable {
        public var connectTimeout: Duration = .seconds(10)
        /// A request other than `/sync`, from connecting to the last byte.
        public var requestTimeout: Duration = .seconds(30)
        /// Added to a `/sync`'s own long-poll timeout for the answer to arrive.
        public var syncGrace: Duration = .seconds(30)
        /// The largest answer read (a `/sync` of a busy account is the large one).
        public var maximumResponseBytes = 16 << 20

        public init() {}
    }

    public let settings: MatrixSettings
    let base: String
    let vault: UnlockedVault
    let resolver: AddressResolver
    let transport: PinnedHTTPTransport
    let limits: Limits
    /// The token a password login got (never written anywhere).
    let loginToken = Mutex<SecretBytes?>(nil)

    /// - Throws: ``ChannelError`` `.configuration` when the homeserver URL is unusable.
    public init(
        settings: MatrixSettings, vault: UnlockedVault, resolver: AddressResolver = .system, limits: Limits = Limits()
    ) throws(ChannelError) {
        if ChannelsSettings.callbackURLProblem(settings.homeserverURL) != nil {
            throw ChannelError(.configuration, "channels.matrix.homeserver_url \(MatrixSettings.homeserverURLAdvice)")
        }
        base =
            settings.homeserverURL.hasSuffix("/") ? String(settings.homeserverURL.dropLast()) : settings.homeserverURL
        do {
            transport = try PinnedHTTPTransport(userAgent: "Moat/\(MoatVersion.current)")
        } catch {
            throw ChannelError(.configuration, "the TLS client for the Matrix homeserver cannot be set up")
        }
        self.settings = settings
        self.vault = vault
        self.resolver = resolver
        self.limits = limits
    }

    /// "the Matrix homeserver at ORIGIN".
    var server: String {
        let origin = (try? FetchURL.parse(base).get())?.origin ?? "(unusable URL)"
        return "the Matrix homeserver at \(origin)"
    }

    // MARK: The API

    /// The user id the credential belongs to (`GET /account/whoami`); it must be ``MatrixSettings/userID``.
    ///
    /// - Throws: ``ChannelError`` `.unauthorized` when the homeserver refuses the credential, `.configuration`
    ///   when it belongs to another account.
    @discardableResult
    public func checkIdentity() async throws(ChannelError) -> String {
        try await owner { () async throws(Failure) in try await identity() }
    }

    func identity() async throws(Failure) -> String {
        struct WhoAmI: Decodable {
            let userID: String
            enum CodingKeys: String, CodingKey { case userID = "user_id" }
        }
        let answer: WhoAmI = try decode(try await call("GET", "/account/whoami"))
        guard answer.userID == settings.userID else {
            throw Failure(
                configuration: "the \(credentialWords) belongs to \(PrintableText.excerpt(answer.userID, limit: 80)), "
                    + "not to channels.matrix.user_id \(settings.userID): fix one of them")
        }
        return answer.userID
    }

    /// Joins room `roomID` (an invite the bot accepts).
    public func join(_ roomID: String) async throws(ChannelError) {
        _ = try await owner { () async throws(Failure) in
            try await call("POST", "/rooms/\(Self.segment(roomID))/join", body: Array("{}".utf8))
        }
    }

    /// Leaves (or declines the invite to) room `roomID`.
    public func leave(_ roomID: String) async throws(ChannelError) {
        _ = try await owner { () async throws(Failure) in
            try await call("POST", "/rooms/\(Self.segment(roomID))/leave", body: Array("{}".utf8))
        }
    }

    /// Sends `text` as an `m.text` message to `roomID` and returns the event id. The transaction id is
    /// derived from `messageID` (the outbound message's id), so a retry of the same message — after a
    /// timeout, or a restart — is answered with the first event instead of sending it twice.
    ///
    /// `answers` (a prompt's: what an approving and a denying answer to it stand for) travel in the event
    /// as `org.moat.answers`, so a reaction to the prompt after a restart can still be read back
    /// (``promptAnswers(event:in:)``).
    @discardableResult
    public func sendText(_ text: String, to roomID: String, messageID: String, answers: PromptAnswers? = nil)
        async throws(ChannelError) -> String
    {
        struct Content: Encodable {
            let msgtype = "m.text"
            let body: String
            let answers: PromptAnswers?
            enum CodingKeys: String, CodingKey {
                case msgtype, body
                case answers = "org.moat.answers"
            }
        }
        struct Sent: Decodable {
            let eventID: String
            enum CodingKeys: String, CodingKey { case eventID = "event_id" }
        }
        let body = Array((try? JSONEncoder().encode(Content(body: text, answers: answers))) ?? Data())
        let path = "/rooms/\(Self.segment(roomID))/send/m.room.message/\(Self.transactionID(for: messageID))"
        let sent: Sent = try await owner { () async throws(Failure) in
            try decode(try await call("PUT", path, body: body))
        }
        return sent.eventID
    }

    /// Sends an approval prompt: `summary` (what the action will do and why it needs approval), then
    /// ``MatrixApprovalAnswer/instructions``. Returns the prompt's event id, which a reaction
    /// (`relatesTo`) or a reply (`inReplyTo`) names; sent again for the same `approvalID`, it is the same event.
    @discardableResult
    public func sendApprovalPrompt(_ summary: String, to roomID: String, approvalID: String) async throws(ChannelError)
        -> String
    {
        try await sendText(
            summary + "\n\n" + MatrixApprovalAnswer.instructions, to: roomID, messageID: "approval:" + approvalID,
            answers: PromptAnswers(approve: "approve " + approvalID, deny: "deny " + approvalID))
    }

    /// What a prompt the bot itself sent stands for (its `org.moat.answers`), read back from the
    /// homeserver: `GET /rooms/{roomId}/event/{eventId}`. Nil when the event is not the bot's own (anyone
    /// can put any field in their own events), carries no answers of the expected shape, or cannot be
    /// read.
    public func promptAnswers(event eventID: String, in roomID: String) async throws(ChannelError) -> PromptAnswers? {
        struct Event: Decodable {
            let sender: String
            let content: Content
            struct Content: Decodable {
                let answers: PromptAnswers?
                enum CodingKeys: String, CodingKey { case answers = "org.moat.answers" }
                init(from decoder: any Decoder) throws {
                    answers = try? decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(
                        PromptAnswers.self, forKey: .answers)
                }
            }
        }
        let path = "/rooms/\(Self.segment(roomID))/event/\(Self.segment(eventID))"
        let event: Event
        do {
            event = try decode(try await call("GET", path))
        } catch {
            guard error.transient else { return nil }  // Not found, not visible: no prompt of ours.
            throw error.error
        }
        guard event.sender == settings.userID, let answers = event.content.answers, answers.wellFormed else {
            return nil
        }
        return answers
    }

    /// The transaction id of outbound message `messageID`: a hash, so any id is a valid path segment.
    public static func transactionID(for messageID: String) -> String {
        "moat-" + SHA256.hash(data: Data(messageID.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// One `/sync` (long polling for at most `timeout` when `since` is given).
    func sync(since: String?, timeout: Duration, filter: String) async throws(Failure) -> MatrixSyncResponse {
        var query = [("filter", filter), ("timeout", String(timeout.components.seconds * 1000))]
        if let since { query.append(("since", since)) }
        return try decode(try await call("GET", "/sync", query: query, waiting: timeout + limits.syncGrace))
    }

    /// One page of `roomID`'s events backwards from `from`, stopping at `to` (a `/sync` position), with
    /// only the event types `filter` names.
    func messagesBackwards(in roomID: String, from: String, to: String, limit: Int, filter: String)
        async throws(Failure) -> MatrixMessagesPage
    {
        let query = [("dir", "b"), ("from", from), ("to", to), ("limit", String(limit)), ("filter", filter)]
        return try decode(try await call("GET", "/rooms/\(Self.segment(roomID))/messages", query: query))
    }

    // MARK: Requests

    /// `roomID` (or any value) as one path segment: everything but the unreserved characters escaped.
    /// Room ids are opaque: they are never parsed, only escaped.
    static func segment(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<"\u{80}"))
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    var credentialWords: String {
        switch settings.credential {
        case .accessToken(let secret): "access token in vault secret \(secret)"
        case .password(let secret): "password in vault secret \(secret)"
        }
    }

    /// One authenticated request under `/_matrix/client/v3`; a 2xx answer's body, or the failure in the
    /// owner's words. A password login's token the homeserver no longer knows is replaced once.
    func call(
        _ method: String, _ path: String, query: [(String, String)] = [], body: [UInt8] = [],
        waiting: Duration? = nil
    ) async throws(Failure) -> [UInt8] {
        for attempt in 1...2 {
            let token = try await accessToken()
            do {
                return try await exchange(
                    method, "/_matrix/client/v3" + path, query: query, body: body, token: token, waiting: waiting)
            } catch let failure {
                guard attempt == 1, failure.errcode == "M_UNKNOWN_TOKEN", case .password = settings.credential else {
                    throw failure
                }
                loginToken.withLock { $0 = nil }
            }
        }
        throw Failure(error: ChannelError(.unauthorized, "\(server) refused the \(credentialWords)"), transient: false)
    }

    /// `body`'s result, or its failure as the ``ChannelError`` the owner reads.
    func owner<Result>(_ body: () async throws(Failure) -> Result) async throws(ChannelError) -> Result {
        do {
            return try await body()
        } catch {
            throw error.error
        }
    }

    /// The access token for the next request: from the vault, or from a password login.
    func accessToken() async throws(Failure) -> String {
        switch settings.credential {
        case .accessToken(let secret):
            return try vaultText(secret, what: "access token")
        case .password(let secret):
            if let token = loginToken.withLock({ $0 }) { return Self.text(token) }
            let password = try vaultText(secret, what: "password", allowSpaces: true)
            struct Identifier: Encodable {
                let type = "m.id.user"
                let user: String
            }
            struct Login: Encodable {
                let type = "m.login.password"
                let identifier: Identifier
                let password: String
                let deviceID: String
                let displayName = "Moat"
                enum CodingKeys: String, CodingKey {
                    case type, identifier, password
                    case deviceID = "device_id"
                    case displayName = "initial_device_display_name"
                }
            }
            struct LoggedIn: Decodable {
                let accessToken: String
                enum CodingKeys: String, CodingKey { case accessToken = "access_token" }
            }
            let login = Login(
                identifier: Identifier(user: settings.userID), password: password, deviceID: settings.deviceID)
            let body = Array((try? JSONEncoder().encode(login)) ?? Data())
            let answer: LoggedIn = try decode(
                try await exchange("POST", "/_matrix/client/v3/login", query: [], body: body, token: nil))
            var bytes = Array(answer.accessToken.utf8)
            let token = SecretBytes(wiping: &bytes)
            loginToken.withLock { $0 = token }
            return answer.accessToken
        }
    }

    static func text(_ secret: SecretBytes) -> String {
        secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    func vaultText(_ secret: String, what: String, allowSpaces: Bool = false) throws(Failure) -> String {
        let value: SecretBytes?
        do {
            value = try vault.value(named: secret)
        } catch {
            throw Failure(configuration: "the Matrix channel cannot read vault secret \(secret): \(error.message)")
        }
        guard let value, !value.isEmpty else {
            throw Failure(
                configuration: "the Matrix channel needs the bot's \(what) in vault secret \(secret), which does not "
                    + "exist: add it with `moat vault add \(secret)`")
        }
        let text = Self.text(value)
        let low: UInt32 = allowSpaces ? 0x1f : 0x20
        guard text.unicodeScalars.allSatisfy({ $0.value > low && $0.value != 0x7f }),
            allowSpaces || text.utf8.allSatisfy({ $0 < 0x80 })
        else {
            throw Failure(
                configuration: "vault secret \(secret) holds a value that cannot be a Matrix \(what) (line breaks, "
                    + "control or non-ASCII characters): store it alone with `moat vault add \(secret)`")
        }
        return text
    }

    /// A failed exchange: the error for the owner, with what a retry needs to know.
    struct Failure: Error {
        let error: ChannelError
        var errcode: String?
        /// `M_LIMIT_EXCEEDED`'s `retry_after_ms`, or a 429's `Retry-After`.
        var retryAfter: Duration?
        /// Worth retrying: the homeserver could not be reached, was overloaded, or is limiting requests.
        var transient: Bool

        init(error: ChannelError, errcode: String? = nil, retryAfter: Duration? = nil, transient: Bool) {
            self.error = error
            self.errcode = errcode
            self.retryAfter = retryAfter
            self.transient = transient
        }

        init(configuration message: String) {
            self.init(error: ChannelError(.configuration, message), transient: false)
        }
    }

    /// One HTTP exchange with the homeserver.
    func exchange(
        _ method: String, _ path: String, query: [(String, String)], body: [UInt8], token: String?,
        waiting: Duration? = nil
    ) async throws(Failure) -> [UInt8] {
        var text = base + path
        if !query.isEmpty {
            text += "?" + query.map { "\($0.0)=\(Self.segment($0.1))" }.joined(separator: "&")
        }
        guard case .success(let url) = FetchURL.parse(text) else {
            throw Failure(
                error: ChannelError(.configuration, "channels.matrix.homeserver_url is not a usable URL"),
                transient: false)
        }
        let target: CheckedURL
        do {
            target = try await CheckedURL.ownerConfigured(url, resolver: resolver)
        } catch {
            let refused = error.code == .urlRefused
            throw Failure(
                error: ChannelError(
                    refused ? .configuration : .deliveryFailed,
                    refused
                        ? "channels.matrix.homeserver_url is refused: \(error.message)"
                        : "\(server) cannot be reached: \(error.message)"),
                transient: !refused)
        }
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if !body.isEmpty { headers.append(("Content-Type", "application/json")) }
        if let token { headers.append(("Authorization", "Bearer " + token)) }
        var streamLimits = PinnedHTTPTransport.StreamLimits()
        streamLimits.connectTimeout = SignedCallback.timeAmount(limits.connectTimeout)
        let total = waiting ?? limits.requestTimeout
        streamLimits.firstByteTimeout = SignedCallback.timeAmount(total)
        streamLimits.idleTimeout = SignedCallback.timeAmount(total)
        streamLimits.totalTimeout = SignedCallback.timeAmount(total)
        streamLimits.maximumBodyBytes = limits.maximumResponseBytes
        let answer: (status: Int, retryAfter: String?, body: [UInt8])
        do {
            answer = try await transport.stream(
                target, method: method, headers: headers, body: body, limits: streamLimits
            ) { response in
                var bytes: [UInt8] = []
                for try await chunk in response.body { bytes += chunk }
                return (response.status, response.header("retry-after"), bytes)
            }
        } catch let error as NetError {
            throw Failure(
                error: ChannelError(.deliveryFailed, "the exchange with \(server) failed: \(error.message)"),
                transient: true)
        } catch {
            throw Failure(error: ChannelError(.deliveryFailed, "the exchange with \(server) failed"), transient: true)
        }
        guard !(200..<300).contains(answer.status) else { return answer.body }
        throw failure(status: answer.status, body: answer.body, retryAfterHeader: answer.retryAfter, token: token)
    }

    /// A non-2xx answer in the owner's words (the server's `errcode`, never its free text).
    func failure(status: Int, body: [UInt8], retryAfterHeader: String?, token: String?) -> Failure {
        let parsed = try? JSONDecoder().decode(MatrixErrorBody.self, from: Data(body))
        let errcode = parsed?.errcode
        let code = errcode.map { " \($0)" } ?? ""
        var retryAfter = parsed?.retryAfterMs.map { Duration.milliseconds(min(max($0, 0), 3_600_000)) }
        if retryAfter == nil, let header = retryAfterHeader, let seconds = Int64(header), seconds >= 0 {
            retryAfter = .seconds(min(seconds, 3600))
        }
        let refused =
            status == 401 || errcode == "M_UNKNOWN_TOKEN" || errcode == "M_MISSING_TOKEN"
            || (token == nil && status == 403)
        if status == 429 || errcode == "M_LIMIT_EXCEEDED" {
            return Failure(
                error: ChannelError(
                    .busy, "\(server) is limiting requests (HTTP \(status)\(code)): trying again later"),
                errcode: errcode, retryAfter: retryAfter, transient: true)
        }
        if refused {
            let fix =
                switch settings.credential {
                case .accessToken(let secret):
                    "check the token, or replace it (`moat vault rm \(secret)`, then `moat vault add \(secret)`)"
                case .password(let secret):
                    "check the password in vault secret \(secret) and channels.matrix.user_id"
                }
            return Failure(
                error: ChannelError(
                    .unauthorized, "\(server) refused the \(credentialWords) (HTTP \(status)\(code)): \(fix)"),
                errcode: errcode, transient: false)
        }
        if (500...599).contains(status) {
            return Failure(
                error: ChannelError(.deliveryFailed, "\(server) failed (HTTP \(status)\(code)): see its log"),
                errcode: errcode, transient: true)
        }
        return Failure(
            error: ChannelError(.deliveryFailed, "\(server) refused the request (HTTP \(status)\(code))"),
            errcode: errcode, transient: false)
    }

    func decode<Answer: Decodable>(_ bytes: [UInt8]) throws(Failure) -> Answer {
        do {
            return try JSONDecoder().decode(Answer.self, from: Data(bytes))
        } catch {
            throw Failure(
                error: ChannelError(.deliveryFailed, "\(server) sent an answer that is not the Matrix client API's"),
                transient: true)
        }
    }
}
