public import MoatCore
public import MoatNet
public import MoatVault

/// What the model is told about one tool: the schema a provider sends.
public struct ToolDescriptor: Sendable, Hashable {
    public let name: String
    public let domain: TrustDomain
    public let description: String
    /// The JSON Schema of the arguments, as JSON text.
    public let parameters: String
}

/// The tools offered to the model, found by name.
///
/// Built once by the composition root from the tools it set up; names are unique. The order of
/// ``descriptors`` is by name, so the same tools always give the model the same request text.
public struct ToolRegistry: Sendable {
    private let tools: [String: any Tool]

    /// Refuses two tools with one name (a programming error the composition root must fix).
    public init(_ tools: [any Tool]) throws(ToolError) {
        var byName: [String: any Tool] = [:]
        for tool in tools {
            guard byName[tool.name] == nil else {
                throw ToolError(.failed, "two tools are named \(tool.name); each tool needs a name of its own")
            }
            byName[tool.name] = tool
        }
        self.tools = byName
    }

    /// The names, sorted.
    public var names: [String] { tools.keys.sorted() }

    /// Every tool, sorted by name (the order the model is offered them in).
    public var all: [any Tool] { names.compactMap { tools[$0] } }

    /// The tool called `name`.
    /// - Throws: ``ToolError`` `.unknownTool` listing the tools there are.
    public func tool(named name: String) throws(ToolError) -> any Tool {
        guard let tool = tools[name] else {
            let known = names.isEmpty ? "none" : names.joined(separator: ", ")
            throw ToolError(
                .unknownTool,
                "there is no tool named '\(PrintableText.excerpt(name, limit: 64))'; the tools are: \(known)")
        }
        return tool
    }

    /// Every tool's schema, sorted by name.
    public var descriptors: [ToolDescriptor] {
        names.compactMap { tools[$0] }.map {
            ToolDescriptor(name: $0.name, domain: $0.domain, description: $0.description, parameters: $0.parameters)
        }
    }

    /// Checks a call the model made: finds the tool and prepares the call (no side effects).
    public func prepare(tool name: String, arguments: String) throws(ToolError) -> PreparedCall {
        try tool(named: name).prepare(arguments)
    }
}

extension ToolRegistry {
    /// The built-in tools of an installation, for the composition root: the file tools and the shell over
    /// `workspace`, the web tools through the SSRF guard with the owner's `ssrf` exceptions, and
    /// `send_message` when a channel gives a sender.
    ///
    /// - Parameters:
    ///   - vault: where `http_request` resolves placeholders and scrubs results; nil refuses placeholders.
    ///   - launcherPath: the sandbox launcher; by default `moat-sandbox` beside the running executable.
    public static func builtin(
        workspace: Workspace,
        settings: ToolsSettings,
        ssrf: SSRFSettings,
        vault: UnlockedVault?,
        messageSender: (any MessageSender)? = nil,
        launcherPath: String? = nil
    ) throws(ToolError) -> ToolRegistry {
        let access = try WebAccess(ssrf: ssrf, settings: settings)
        var tools: [any Tool] = [
            ReadFileTool(workspace: workspace, settings: settings),
            WriteFileTool(workspace: workspace, settings: settings),
            ListFilesTool(workspace: workspace, settings: settings),
            ShellTool(workspace: workspace, settings: settings, launcherPath: launcherPath),
            WebFetchTool(access: access, settings: settings),
            HTTPRequestTool(access: access, settings: settings, vault: vault),
        ]
        if let messageSender { tools.append(SendMessageTool(sender: messageSender)) }
        return try ToolRegistry(tools)
    }
}
