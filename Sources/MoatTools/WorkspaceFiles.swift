// The one file in MoatTools with raw file-system calls: every access below the workspace root is
// resolved by the kernel beneath a descriptor of the root (openat2), or walks from that descriptor with
// openat(2), one component at a time, never following a symlink.

import CMoatFiles
import MoatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An open descriptor, closed when the value goes away.
final class FileDescriptor {
    let fd: Int32

    init(_ fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    func status() -> stat? {
        var info = stat()
        return fstat(fd, &info) == 0 ? info : nil
    }
}

/// What a listing shows of one entry.
struct WorkspaceEntry: Equatable {
    enum Kind: String { case file, directory, symlink, other }
    let name: String
    let kind: Kind
    let size: Int64
}

/// Reads, writes and lists below a ``Workspace``'s root so that no path can lead outside it.
///
/// Why it holds, even against a process that changes the tree while a call runs (the shell, a racing
/// thread): each directory is opened with `openat(parent, name, O_DIRECTORY | O_NOFOLLOW)` from the
/// descriptor of the one before, starting at the root's descriptor; a symlink anywhere, the last
/// component included, makes `openat` fail instead of being followed, so there is no window between a
/// check and a use. The root itself is re-checked by device and inode, and every directory and file
/// must be on the root's file system (no mount point is crossed). A file is opened with `O_NONBLOCK`
/// (a FIFO cannot hang the call) and checked with `fstat` on the open descriptor: only regular files
/// with one link are read or replaced (a hard link may be a name for a file outside). Writes go to a
/// new 0600 file created with `O_EXCL | O_NOFOLLOW` in the same directory, then `renameat` over the
/// name, which replaces the directory entry and never writes through whatever it pointed at.
struct WorkspaceFiles {
    let workspace: Workspace
    /// Whether to try openat2 first (the kernel resolves the whole path beneath the root, refusing
    /// symlinks, magic links and mount points); the walk decides and explains whenever it fails, and
    /// does everything on kernels before 5.6. Tests turn it off to run the walk alone.
    var beneath = true

    init(workspace: Workspace) {
        self.workspace = workspace
        self.beneath = workspace.resolveBeneath
    }

    /// The directories to walk and the last component; refuses a path naming the root itself.
    private func split(_ path: String, action: String) throws(ToolError) -> ([String], String) {
        let destination = try workspace.destination(of: path, tool: action, file: true)
        let components = destination.split(separator: "/").map(String.init)
        return (Array(components.dropLast()), components[components.count - 1])
    }

    // MARK: Walking

    private func openRoot() throws(ToolError) -> FileDescriptor {
        let fd = open(workspace.root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw ToolError(.failed, "the workspace cannot be opened (\(Self.errnoText())); ask the owner to check it")
        }
        let root = FileDescriptor(fd)
        guard let info = root.status(), UInt64(info.st_dev) == workspace.device,
            UInt64(info.st_ino) == workspace.inode
        else {
            throw ToolError(.refused, "the workspace root was replaced since Moat opened it; nothing was done")
        }
        return root
    }

    /// `components` opened beneath `root` in one openat2 call, or nil when that failed for any reason
    /// (the caller then walks, which refuses with the exact reason or succeeds just as safely).
    private func openBeneath(_ root: FileDescriptor, _ components: [String], flags: Int32) -> FileDescriptor? {
        guard beneath, !components.isEmpty else { return nil }
        let fd = moat_open_beneath(root.fd, components.joined(separator: "/"), flags, 0)
        return fd >= 0 ? FileDescriptor(fd) : nil
    }

    /// Opens the directories of `components` from the root; `create` makes missing ones (0700).
    private func openDirectory(_ components: [String], path: String, create: Bool = false) throws(ToolError)
        -> FileDescriptor
    {
        var current = try openRoot()
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
        if let opened = openBeneath(current, components, flags: flags) { return opened }
        for component in components {
            var fd = openat(current.fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 && errno == ENOENT && create {
                if mkdirat(current.fd, component, 0o700) == 0 || errno == EEXIST {
                    fd = openat(current.fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                }
            }
            guard fd >= 0 else { throw explain(errno, in: current, component, path: path, wanted: "a directory") }
            let next = FileDescriptor(fd)
            try checkSameFileSystem(next, path: path)
            current = next
        }
        return current
    }

    private func checkSameFileSystem(_ descriptor: FileDescriptor, path: String) throws(ToolError) {
        guard let info = descriptor.status(), UInt64(info.st_dev) == workspace.device else {
            throw ToolError(
                .refused, "\(Workspace.printable(path)) crosses into another file system (a mount point); refused")
        }
    }

    /// The refusal for a failed `openat` of `component`: a symlink, the wrong kind of file, or missing.
    private func explain(
        _ code: Int32, in directory: FileDescriptor, _ component: String, path: String, wanted: String
    ) -> ToolError {
        let shown = Workspace.printable(path)
        var info = stat()
        guard fstatat(directory.fd, component, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if code == ENOENT || errno == ENOENT {
                return ToolError(.failed, "\(shown) does not exist in the workspace (list_files shows what does)")
            }
            return ToolError(.failed, "\(shown) cannot be opened: \(String(cString: strerror(code)))")
        }
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            return ToolError(
                .refused,
                "\(shown) goes through a symbolic link ('\(PrintableText.excerpt(component, limit: 60))'); links "
                    + "are never followed in the workspace")
        case S_IFDIR where wanted != "a directory":
            return ToolError(.refused, "\(shown) is a directory, not \(wanted) (list_files lists a directory)")
        case S_IFDIR:
            return ToolError(.failed, "\(shown) cannot be opened: \(String(cString: strerror(code)))")
        case S_IFREG:
            return ToolError(
                .refused, "\(shown): '\(PrintableText.excerpt(component, limit: 60))' is a file, not \(wanted)")
        default:
            return ToolError(
                .refused, "\(shown) is a FIFO, socket or device, not \(wanted); only regular files are used")
        }
    }

    /// Refuses anything but a regular file with one link on the workspace's file system.
    private func checkRegularFile(_ info: stat, path: String) throws(ToolError) {
        let shown = Workspace.printable(path)
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw ToolError(.refused, "\(shown) is a directory, not a file (list_files lists a directory)")
        case S_IFLNK: throw ToolError(.refused, "\(shown) is a symbolic link; links are never followed")
        default: throw ToolError(.refused, "\(shown) is a FIFO, socket or device; only regular files are used")
        }
        guard info.st_nlink <= 1 else {
            throw ToolError(
                .refused,
                "\(shown) has \(info.st_nlink) hard links: another name may be a file outside the workspace, so it "
                    + "is neither read nor replaced")
        }
        guard UInt64(info.st_dev) == workspace.device else {
            throw ToolError(.refused, "\(shown) is on another file system (a mount point); refused")
        }
    }

    // MARK: Operations

    /// The first `limit` bytes of the file at `path`, and its whole size.
    func readFile(_ path: String, limit: Int) throws(ToolError) -> (bytes: [UInt8], size: Int) {
        let (parents, name) = try split(path, action: "read_file")
        let flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
        let file: FileDescriptor
        if let opened = openBeneath(try openRoot(), parents + [name], flags: flags) {
            file = opened
        } else {
            let directory = try openDirectory(parents, path: path)
            let fd = openat(directory.fd, name, flags)
            guard fd >= 0 else { throw explain(errno, in: directory, name, path: path, wanted: "a file") }
            file = FileDescriptor(fd)
        }
        let fd = file.fd
        guard let info = file.status() else { throw ToolError(.failed, "\(Workspace.printable(path)) cannot be read") }
        try checkRegularFile(info, path: path)
        var bytes = [UInt8](repeating: 0, count: limit)
        var filled = 0
        while filled < limit {
            let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, limit - filled) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw ToolError(.failed, "\(Workspace.printable(path)) cannot be read: \(Self.errnoText())")
            }
            if count == 0 { break }
            filled += count
        }
        return (Array(bytes[0..<filled]), max(Int(info.st_size), filled))
    }

    /// Replaces (or creates) the file at `path` with `content`, mode 0600; missing directories on the
    /// way are created (0700).
    func writeFile(_ path: String, content: [UInt8]) throws(ToolError) {
        let (parents, name) = try split(path, action: "write_file")
        let directory = try openDirectory(parents, path: path, create: true)
        var existing = stat()
        if fstatat(directory.fd, name, &existing, AT_SYMLINK_NOFOLLOW) == 0 {
            try checkRegularFile(existing, path: path)
        }
        let temporary = ".moat-write-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let fd = openat(
            directory.fd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ToolError(.failed, "\(Workspace.printable(path)) cannot be written: \(Self.errnoText())")
        }
        var written = 0
        var failure: String?
        while written < content.count {
            let count = content.withUnsafeBytes { write(fd, $0.baseAddress! + written, content.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                failure = Self.errnoText()
                break
            }
            written += count
        }
        if failure == nil && fsync(fd) != 0 { failure = Self.errnoText() }
        close(fd)
        if failure == nil && renameat(directory.fd, temporary, directory.fd, name) != 0 {
            failure = errno == EISDIR || errno == ENOTEMPTY ? "it is a directory" : Self.errnoText()
        }
        if let failure {
            unlinkat(directory.fd, temporary, 0)
            throw ToolError(.failed, "\(Workspace.printable(path)) was not written: \(failure)")
        }
        fsync(directory.fd)
    }

    /// The entries of the directory at `path` ("" for the root), sorted by name: at most `limit`, and
    /// how many there were.
    func listDirectory(_ path: String, limit: Int) throws(ToolError) -> (entries: [WorkspaceEntry], total: Int) {
        let components = try workspace.components(of: path)
        let directory = try openDirectory(components, path: path)
        // fdopendir takes over a descriptor of its own, so the walk's one stays ours to close.
        let fd = openat(directory.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0, let stream = fdopendir(fd) else {
            if fd >= 0 { close(fd) }
            throw ToolError(.failed, "\(Workspace.printable(path)) cannot be listed: \(Self.errnoText())")
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = Self.name(of: entry)
            if name != "." && name != ".." { names.append(name) }
        }
        names.sort { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        var entries: [WorkspaceEntry] = []
        for name in names.prefix(limit) {
            var info = stat()
            guard fstatat(directory.fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let kind: WorkspaceEntry.Kind =
                switch info.st_mode & S_IFMT {
                case S_IFREG: .file
                case S_IFDIR: .directory
                case S_IFLNK: .symlink
                default: .other
                }
            entries.append(WorkspaceEntry(name: name, kind: kind, size: Int64(info.st_size)))
        }
        return (entries, names.count)
    }

    /// The name in a directory entry.
    static func name(of entry: UnsafeMutablePointer<dirent>) -> String {
        withUnsafePointer(to: &entry.pointee.d_name) { pointer in
            pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
