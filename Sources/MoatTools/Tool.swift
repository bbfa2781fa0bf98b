public import MoatCore

/// A tool call checked and put in canonical form, before anything runs.
///
/// It is what the trust decision, an approval and the audit log see: an approval binds to exactly
/// ``tool``, ``arguments`` and ``destination`` (MoatPolicy's `ActionRequest`), so a changed call can
/// never be run under an approval given for another.
public struct PreparedCall: Sendable, Hashable {
    /// The tool's name.
    public let tool: String
    /// The arguments re-serialised canonically (sorted keys, no insignificant space).
    public let arguments: String
    /// Where the call acts: a host, a workspace path, a contact; "" when it has no single destination.
    public let destination: String
    /// One line for the owner saying what will happen (used for level 1 and for pending approvals).
    /// Printable text only, never a secret value (placeholders stay as `{{secret:NAME}}`).
    public let summary: String

    public init(tool: String, arguments: String, destination: String, summary: String) {
        self.tool = tool
        self.arguments = arguments
        self.destination = destination
        self.summary = summary
    }
}

/// What one run of a tool gives back to the pipeline.
public struct ToolOutput: Sendable, Hashable {
    /// The result for the model, already cut to the tool's size cap (with a marker where it was cut).
    /// The pipeline scrubs every vault value from it before the model or a reply sees it.
    public var text: String
    /// Whether the text came from outside the owner's control (a web page, a remote API's answer,
    /// a command's output): reading it taints the turn.
    public var external: Bool
    /// Whether ``text`` was cut at the size cap.
    public var truncated: Bool

    public init(text: String, external: Bool, truncated: Bool = false) {
        self.text = text
        self.external = external
        self.truncated = truncated
    }
}

/// Who a call runs for and in which conversation.
public struct ToolContext: Sendable {
    /// Records that a call is about to send the vault secrets `names` (names only, never a value) to
    /// `host`; throws when it cannot, and the call then sends nothing. (The pipeline's recorder writes
    /// one `vault.use` audit entry per secret: the vault page's "last use".)
    public typealias SecretUseRecorder = @Sendable (_ names: [String], _ host: String) async throws -> Void

    public let principal: Principal
    public let conversationID: String
    /// Where a tool records a secret's use before it leaves the gateway; nil records nothing.
    public let recordSecretUse: SecretUseRecorder?

    public init(principal: Principal, conversationID: String, recordSecretUse: SecretUseRecorder? = nil) {
        self.principal = principal
        self.conversationID = conversationID
        self.recordSecretUse = recordSecretUse
    }
}

/// A tool the model may call. The names and parameters of the built-in tools are a contract
/// (Docs/Agent.md). A tool never decides whether it may run — the pipeline does that from its
/// ``domain`` — but it alone enforces its own confinement (workspace root, SSRF guard, secret policy).
public protocol Tool: Sendable {
    /// The name the model calls it by (`read_file`).
    var name: String { get }
    /// The domain whose trust level gates it.
    var domain: TrustDomain { get }
    /// What it does, for the model.
    var description: String { get }
    /// The JSON Schema of its arguments (an `object` schema), as JSON text.
    var parameters: String { get }

    /// Parses and checks `arguments` (model output: untrusted) without side effects.
    /// - Throws: ``ToolError`` `.invalidArguments` saying what is wrong, for the model to correct.
    func prepare(_ arguments: String) throws(ToolError) -> PreparedCall

    /// Runs a call ``prepare(_:)`` returned. Confinement failures are ``ToolError`` `.refused`.
    func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput
}
