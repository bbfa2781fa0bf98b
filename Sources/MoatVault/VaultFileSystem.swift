import MoatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What identifies one version of a file: a write replaces the file by rename, so the inode changes;
/// size and modification time are compared too for writers that do not rename.
struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64
    let size: Int64
    let modifiedSeconds: Int
    let modifiedNanoseconds: Int

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modifiedSeconds = Int(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
    }

    /// The identity of the file at `path` (not following a symlink), or nil when there is none.
    static func of(_ path: String) -> FileIdentity? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return FileIdentity(info)
    }
}

/// The file operations the vault needs: whole-file reads, crash-safe replacement, an advisory lock.
enum VaultFileSystem {
    /// The whole file and its identity, or nil when it does not exist. Refuses symlinks and non-files.
    static func readFile(_ path: String, limit: Int = 256 << 20) throws(VaultError) -> ([UInt8], FileIdentity)? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw ioError("cannot read \(path)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ioError("cannot read \(path)") }
        guard (UInt32(info.st_mode) & UInt32(S_IFMT)) == UInt32(S_IFREG) else {
            throw VaultError(.corrupt, "\(path) is not a regular file")
        }
        guard Int(info.st_size) <= limit else {
            throw VaultError(.corrupt, "\(path) is \(info.st_size) bytes, far larger than any vault")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                read(fd, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                if count == 0 { break }
                throw ioError("cannot read \(path)")
            }
            offset += count
        }
        bytes.removeLast(bytes.count - offset)
        return (bytes, FileIdentity(info))
    }

    /// Replaces `path` with `bytes` so that a crash at any point leaves either the old or the new file.
    ///
    /// The bytes go to a temporary file (mode 0600) in the same directory, which is fsynced and renamed
    /// over `path`; then the directory is fsynced so the rename itself is durable. The caller holds the
    /// vault lock, so any temporary file left by an earlier crashed writer is removed first.
    static func replace(_ path: String, with bytes: [UInt8]) throws(VaultError) {
        try install(try stage(path, with: bytes))
    }

    /// A new version of a file, written and flushed beside it but not yet in place: what a vault change
    /// records in the audit log before it becomes the vault.
    struct StagedFile {
        let temporary: String
        let path: String
    }

    /// Writes `bytes` to a temporary file (mode 0600) next to `path` and flushes it to disk.
    static func stage(_ path: String, with bytes: [UInt8]) throws(VaultError) -> StagedFile {
        let (directory, name) = split(path)
        let prefix = "." + name + ".tmp-"
        removeStale(prefix: prefix, in: directory)
        var template = Array((directory + "/" + prefix + "XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw ioError("cannot create a temporary file in \(directory)") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let temporary = String(cString: template.map { $0 })
        var succeeded = false
        defer {
            if !succeeded { unlink(temporary) }
        }
        defer { close(fd) }
        guard fchmod(fd, 0o600) == 0 else { throw ioError("cannot set mode 0600 on \(temporary)") }
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw ioError("cannot write \(temporary)") }
            offset += count
        }
        guard fsync(fd) == 0 else { throw ioError("cannot flush \(temporary) to disk") }
        succeeded = true
        return StagedFile(temporary: temporary, path: path)
    }

    /// Puts a staged file in place, durably: over the old file, or with `exclusive` only where there is
    /// none (`link` fails when the name exists). The temporary file is gone afterwards either way.
    static func install(_ staged: StagedFile, exclusive: Bool = false) throws(VaultError) {
        defer { unlink(staged.temporary) }
        if exclusive {
            guard link(staged.temporary, staged.path) == 0 else {
                if errno == EEXIST { throw VaultError(.alreadyExists, "\(staged.path) already exists") }
                throw ioError("cannot create \(staged.path)")
            }
        } else {
            guard rename(staged.temporary, staged.path) == 0 else { throw ioError("cannot replace \(staged.path)") }
        }
        try syncDirectory(split(staged.path).0)
    }

    /// Removes a staged file that will not be installed.
    static func discard(_ staged: StagedFile) {
        unlink(staged.temporary)
    }

    /// Removes `path` and makes the removal durable; a missing file is not an error.
    static func remove(_ path: String) throws(VaultError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw ioError("cannot remove \(path)") }
        try syncDirectory(split(path).0)
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    private static func syncDirectory(_ directory: String) throws(VaultError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("cannot open \(directory)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw ioError("cannot flush \(directory) to disk") }
    }

    private static func removeStale(prefix: String, in directory: String) {
        guard let handle = opendir(directory) else { return }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(prefix) { unlink(directory + "/" + name) }
        }
    }

    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    static func ioError(_ what: String) -> VaultError {
        VaultError(.io, "\(what): \(String(cString: strerror(errno)))")
    }
}

/// The advisory `flock` on `vault.lock` that serializes every process touching the vault.
///
/// Writers (the CLI and the server) hold it exclusively around read-modify-write; readers hold it
/// shared, so they never see a vault and a seal from two different writes. `flock` locks belong to an
/// open file description, so a process must never take it twice at once: the vault takes it only at
/// its public entry points.
enum VaultLock {
    enum Mode {
        case shared, exclusive
    }

    static func holding<Result>(
        _ path: String,
        _ mode: Mode,
        _ body: () throws(VaultError) -> Result
    ) throws(VaultError) -> Result {
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VaultFileSystem.ioError("cannot open the lock file \(path)") }
        defer { close(fd) }
        while flock(fd, mode == .exclusive ? LOCK_EX : LOCK_SH) != 0 {
            guard errno == EINTR else { throw VaultFileSystem.ioError("cannot lock \(path)") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
