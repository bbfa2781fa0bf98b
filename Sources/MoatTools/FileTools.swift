public import MoatCore

/// `read_file {path}` [files]: a file's text from the workspace, cut at `tools.files.read_bytes`.
///
/// Its result is external (taints the turn): a workspace file may hold anything a command or a
/// download put there.
public struct ReadFileTool: BuiltinTool {
    public let name = "read_file"
    public let domain = TrustDomain.files
    public let description =
        "Read a text file from the workspace. The path is relative to the workspace (like notes/todo.txt); "
        + "symbolic links, hard links and files outside the workspace are refused."
    let parameterList: [ToolParameter] = [.string("path", "The file's path relative to the workspace.")]
    let workspace: Workspace
    let settings: ToolsSettings

    public init(workspace: Workspace, settings: ToolsSettings) {
        self.workspace = workspace
        self.settings = settings
    }

    public func prepare(_ arguments: String) throws(ToolError) -> PreparedCall {
        let checked = try checkedArguments(arguments)
        let destination = try workspace.destination(of: checked.string("path"), tool: name, file: true)
        return prepared(checked, destination: destination, summary: "read the workspace file \(destination)")
    }

    public func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        let path = try checkedArguments(of: call).string("path")
        let (bytes, size) = try WorkspaceFiles(workspace: workspace).readFile(path, limit: settings.readBytes)
        var text = ToolText.lossy(bytes)
        let cut = size > bytes.count
        if cut { text += ToolText.marker(what: "the file", kept: bytes.count, total: size) }
        return ToolOutput(text: text, external: true).capped(settings.outputBytes, streamsCut: cut)
    }
}

/// `write_file {path, content}` [files]: creates or replaces a workspace file (mode 0600), creating
/// missing directories; content at most `tools.files.write_bytes`.
public struct WriteFileTool: BuiltinTool {
    public let name = "write_file"
    public let domain = TrustDomain.files
    public let description =
        "Create or replace a text file in the workspace (missing directories are created). The path is "
        + "relative to the workspace; symbolic links, hard links and paths outside it are refused."
    let parameterList: [ToolParameter] = [
        .string("path", "The file's path relative to the workspace."),
        .string("content", "The whole new content of the file."),
    ]
    let workspace: Workspace
    let settings: ToolsSettings

    public init(workspace: Workspace, settings: ToolsSettings) {
        self.workspace = workspace
        self.settings = settings
    }

    public func prepare(_ arguments: String) throws(ToolError) -> PreparedCall {
        let checked = try checkedArguments(arguments)
        let destination = try workspace.destination(of: checked.string("path"), tool: name, file: true)
        let size = checked.string("content").utf8.count
        guard size <= settings.writeBytes else {
            throw ToolError(
                .invalidArguments,
                "write_file: the content is \(size) bytes; at most \(settings.writeBytes) bytes may be written at once")
        }
        return prepared(
            checked, destination: destination, summary: "write \(size) bytes to the workspace file \(destination)")
    }

    public func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        let checked = try checkedArguments(of: call)
        let content = Array(checked.string("content").utf8)
        guard content.count <= settings.writeBytes else {
            throw ToolError(.invalidArguments, "write_file: the content is larger than \(settings.writeBytes) bytes")
        }
        try WorkspaceFiles(workspace: workspace).writeFile(checked.string("path"), content: content)
        return ToolOutput(text: "wrote \(content.count) bytes to \(call.destination)", external: false)
    }
}

/// `list_files {path}` [files]: the entries of a workspace directory ("" or "." for the top), sorted,
/// at most `tools.files.list_entries`. Symlinks are shown as such and never followed.
public struct ListFilesTool: BuiltinTool {
    public let name = "list_files"
    public let domain = TrustDomain.files
    public let description =
        "List a directory of the workspace: \"\" or \".\" for its top, or a path relative to it. Each line is "
        + "'file NAME (SIZE bytes)', 'dir NAME/', 'link NAME (not followed)' or 'other NAME'."
    let parameterList: [ToolParameter] = [
        .string("path", "The directory relative to the workspace; \"\" for the top.")
    ]
    let workspace: Workspace
    let settings: ToolsSettings

    public init(workspace: Workspace, settings: ToolsSettings) {
        self.workspace = workspace
        self.settings = settings
    }

    public func prepare(_ arguments: String) throws(ToolError) -> PreparedCall {
        let checked = try checkedArguments(arguments)
        let destination = try workspace.destination(of: checked.string("path"), tool: name, file: false)
        return prepared(checked, destination: destination, summary: "list the workspace directory \(destination)")
    }

    public func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        let path = try checkedArguments(of: call).string("path")
        let (entries, total) = try WorkspaceFiles(workspace: workspace).listDirectory(path, limit: settings.listEntries)
        var lines = entries.map { entry -> String in
            let name = PrintableText.excerpt(entry.name, limit: 255)
            switch entry.kind {
            case .file: return "file \(name) (\(entry.size) bytes)"
            case .directory: return "dir \(name)/"
            case .symlink: return "link \(name) (not followed)"
            case .other: return "other \(name)"
            }
        }
        if lines.isEmpty { lines = ["(empty directory)"] }
        var text = lines.joined(separator: "\n")
        let cut = total > entries.count
        if cut { text += "\n[cut: \(total - entries.count) more of \(total) entries not listed]" }
        return ToolOutput(text: text, external: false).capped(settings.outputBytes, streamsCut: cut)
    }
}
