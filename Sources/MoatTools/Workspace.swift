import MoatCore
public import MoatStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The directory the file tools and the shell may use, and nothing outside it.
///
/// The root is checked once, when the workspace is opened: it exists, is a directory, and is neither
/// the state directory, the configuration directory, nor a parent of either (the model's tools would
/// reach the vault and the database). Inside the state directory only its `workspace/` (or a directory
/// below it) may be the root. Every later access walks from a descriptor of this root, one component at
/// a time without following symlinks (``WorkspaceFiles``), and checks that the root is still the
/// directory it was (same device and inode).
public struct Workspace: Sendable {
    /// The canonical absolute path of the root (symlinks resolved when it was opened).
    public let root: String
    /// Where the shell sees the workspace (its working directory).
    public static let mountPoint = "/workspace"

    let device: UInt64
    let inode: UInt64
    /// Whether the file tools try openat2 before walking (``WorkspaceFiles``); tests turn it off.
    var resolveBeneath = true
    /// The state and configuration directories (canonical), for the shell's protected paths.
    let layout: StateLayout

    /// Opens the configured root, or `workspace/` in the state directory (created 0700) when none is.
    public static func open(configured: String?, layout: StateLayout) throws(ToolError) -> Workspace {
        guard let configured else {
            do {
                try FileModes.makeDirectory(layout.workspaceDirectory)
            } catch {
                throw ToolError(.failed, "cannot create the workspace \(layout.workspaceDirectory): \(error.message)")
            }
            return try Workspace(root: layout.workspaceDirectory, layout: layout)
        }
        return try Workspace(root: configured, layout: layout)
    }

    /// Checks `root` against `layout` (see the type's rules).
    public init(root: String, layout: StateLayout) throws(ToolError) {
        guard root.hasPrefix("/"), !root.utf8.contains(0) else {
            throw ToolError(.failed, "the workspace root must be an absolute path (tools.workspace)")
        }
        guard let canonical = Self.realPath(root) else {
            throw ToolError(
                .failed, "the workspace root \(root) does not exist or cannot be read; create it (mode 0700) first")
        }
        var info = stat()
        guard stat(canonical, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw ToolError(.failed, "the workspace root \(root) is not a directory")
        }
        let state = Self.realPath(layout.stateDirectory) ?? layout.stateDirectory
        let config = Self.realPath(layout.configDirectory) ?? layout.configDirectory
        let defaultRoot = Self.realPath(layout.workspaceDirectory) ?? layout.workspaceDirectory
        for (directory, name) in [(state, "state directory"), (config, "configuration directory")] {
            if Self.isInside(directory, canonical) {
                throw ToolError(
                    .refused,
                    "the workspace root \(root) is Moat's \(name) (\(directory)) or a parent of it: the model's "
                        + "tools would reach the vault, the database and the configuration. Set tools.workspace to "
                        + "a directory of its own, or leave it out to use \(layout.workspaceDirectory)")
            }
        }
        let insideState = Self.isInside(canonical, state)
        let insideConfig = Self.isInside(canonical, config)
        if (insideState || insideConfig) && !Self.isInside(canonical, defaultRoot) {
            throw ToolError(
                .refused,
                "the workspace root \(root) is inside Moat's state or configuration directory; only "
                    + "\(layout.workspaceDirectory) (or a directory below it) may be used there")
        }
        self.root = canonical
        self.device = UInt64(info.st_dev)
        self.inode = UInt64(info.st_ino)
        self.layout = StateLayout(configDirectory: config, stateDirectory: state)
    }

    /// Whether `path` is `directory` or lies below it (both canonical).
    static func isInside(_ path: String, _ directory: String) -> Bool {
        directory == "/" || path == directory || path.hasPrefix(directory + "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The components of `path` below the root, checked: relative to the root, or absolute under the
    /// root's path or under ``mountPoint`` (the shell's view); no `..`, no NUL, no component longer
    /// than 255 bytes. `""` and `.` name the root itself.
    func components(of path: String) throws(ToolError) -> [String] {
        guard !path.utf8.contains(0) else { throw ToolError(.refused, "the path contains a NUL byte") }
        guard path.utf8.count <= 4096 else { throw ToolError(.refused, "the path is longer than 4096 bytes") }
        var relative = Substring(path)
        if path.hasPrefix("/") {
            var stripped: Substring?
            for prefix in [root, Self.mountPoint] where path == prefix || path.hasPrefix(prefix + "/") {
                stripped = path.dropFirst(prefix.count)
                break
            }
            guard let stripped else {
                throw ToolError(
                    .refused,
                    "\(Self.printable(path)) is outside the workspace: use a path relative to the workspace "
                        + "(like notes/todo.txt)")
            }
            relative = stripped
        }
        let parts = relative.split(separator: "/").filter { $0 != "." }
        if parts.contains("..") {
            throw ToolError(
                .refused, "\(Self.printable(path)): '..' is not allowed; name the file from the workspace's top")
        }
        if parts.contains(where: { $0.utf8.count > 255 }) {
            throw ToolError(.refused, "\(Self.printable(path)): a path component is longer than 255 bytes")
        }
        return parts.map(String.init)
    }

    /// The checked path as a prepared call's destination (`.` for the root); a `file` path may not name
    /// the root itself.
    func destination(of path: String, tool: String, file: Bool) throws(ToolError) -> String {
        let components = try components(of: path)
        guard !components.isEmpty else {
            if !file { return "." }
            throw ToolError(.invalidArguments, "\(tool) needs a file path inside the workspace, like notes.txt")
        }
        return components.joined(separator: "/")
    }

    /// A model-given path as it may appear in a message.
    static func printable(_ path: String) -> String {
        "'" + PrintableText.excerpt(path, limit: 120) + "'"
    }

    /// Host paths the shell's sandbox keeps out of every bind: the state directory's entries except the
    /// workspace (the whole state directory when the workspace lies elsewhere), and the configuration
    /// directory (only its entries when it is the state directory).
    func protectedPaths() -> [String] {
        let state = layout.stateDirectory
        guard Self.isInside(root, state) else {
            return Array(Set([state, layout.configDirectory])).sorted()
        }
        var paths: Set<String> = []
        let named = ["moat.db", "moat.db-wal", "moat.db-shm", "vault.moat", "vault.seal", "config.yaml"]
        for name in named + Self.entries(of: state) where name != "workspace" {
            paths.insert(state + "/" + name)
        }
        if !Self.isInside(layout.configDirectory, state) { paths.insert(layout.configDirectory) }
        return paths.sorted()
    }

    private static func entries(of directory: String) -> [String] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = WorkspaceFiles.name(of: entry)
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
