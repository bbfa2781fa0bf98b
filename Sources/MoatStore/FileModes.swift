#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The few file-system calls Moat's state needs, with modes chosen for secrets.
///
/// Kept in one place so the rules (0700 directories, 0600 files, no following of symlinks for
/// secret-bearing files) are applied the same way everywhere.
public enum FileModes {
    enum Kind {
        case directory, file, socket
    }

    /// Creates `path` and its missing parents with mode 0700 (the umask cannot widen it).
    public static func makeDirectory(_ path: String) throws(StoreError) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            var info = stat()
            if lstat(current, &info) == 0 {
                continue
            }
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                let reason = String(cString: strerror(errno))
                throw StoreError(.io, "cannot create directory \(current): \(reason)")
            }
        }
    }

    /// Creates an empty file with mode 0600 if it does not exist yet; never follows a symlink.
    public static func createPrivateFile(_ path: String) throws(StoreError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw StoreError(.io, "cannot create \(path): \(reason)")
        }
        close(fd)
    }

    /// Replaces `path` with a new file of mode 0600 holding `contents` (never through a symlink: an
    /// existing file is removed first and the new one is created exclusively).
    public static func writePrivateFile(_ path: String, contents: [UInt8]) throws(StoreError) {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(.io, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let written = contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == contents.count, fsync(fd) == 0 else {
            throw StoreError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The permission bits of `path`, or nil when it does not exist.
    public static func mode(of path: String) -> UInt32? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return UInt32(info.st_mode) & 0o7777
    }

    static func check(_ path: String, kind: Kind, forbidden: UInt32) -> [PermissionProblem] {
        var info = stat()
        guard lstat(path, &info) == 0 else { return [] }
        return problems(path, owner: UInt32(info.st_uid), mode: UInt32(info.st_mode), kind: kind, forbidden: forbidden)
    }

    /// Every reason a config file is unsafe to read: another user could change it (owner, group or world
    /// write bits) or its directory, or something other than a regular file stands in its place.
    ///
    /// The same rules as `config.yaml` in the config directory, for any path (`--config FILE`). `owner` and
    /// `mode` come from the `fstat` of the descriptor the file is read through, so the file checked is the
    /// file read; the directory is checked with `lstat` (a symbolic link in its place is refused). A sticky
    /// directory such as `/tmp` passes: others can add files there but cannot replace or rename ours.
    public static func configFileProblems(_ path: String, owner: UInt32, mode: UInt32) -> [PermissionProblem] {
        problems(path, owner: owner, mode: mode, kind: .file, forbidden: 0o022)
            + check(directoryName(of: path), kind: .directory, forbidden: 0o022)
    }

    /// The directory part of `path` (`.` for a bare file name, `/` for a file at the root).
    static func directoryName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The problems of a path whose owner and `st_mode` are known.
    static func problems(
        _ path: String, owner: UInt32, mode fullMode: UInt32, kind: Kind, forbidden: UInt32
    ) -> [PermissionProblem] {
        let type = fullMode & UInt32(S_IFMT)
        let expected = kind == .directory ? UInt32(S_IFDIR) : UInt32(S_IFREG)
        if kind != .socket && type != expected && type != UInt32(S_IFLNK) {
            let what = kind == .directory ? "directory" : "regular file"
            return [
                PermissionProblem(
                    path: path, problem: "is not a \(what)", fix: "replace it with the real \(what)")
            ]
        }
        if type == UInt32(S_IFLNK) {
            return [
                PermissionProblem(
                    path: path,
                    problem: "is a symbolic link; Moat does not follow links for its state",
                    fix: "replace it with the real \(kind == .directory ? "directory" : "file")"
                )
            ]
        }
        var problems: [PermissionProblem] = []
        let uid = getuid()
        if owner != uid && owner != 0 {
            problems.append(
                PermissionProblem(
                    path: path,
                    problem: "is owned by uid \(owner), not by this user (uid \(uid))",
                    fix: "chown \(uid) \(shellQuoted(path))"
                )
            )
        }
        let mode = fullMode & 0o7777
        let sticky = kind == .directory && forbidden == 0o022 && mode & UInt32(S_ISVTX) != 0
        if mode & forbidden != 0 && !sticky {
            let wanted = mode & ~forbidden & 0o777
            let what = forbidden == 0o077 ? "group- or world-accessible" : "group- or world-writable"
            let repair = wanted == 0 ? (kind == .directory ? 0o700 : 0o600) : wanted
            problems.append(
                PermissionProblem(
                    path: path,
                    problem: "is \(what) (mode \(octal(mode)))",
                    fix: "chmod \(octal(repair)) \(shellQuoted(path))",
                    repairMode: repair
                )
            )
        }
        return problems
    }

    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Quotes a path for a shell command shown to the user, only when it needs quoting.
    static func shellQuoted(_ path: String) -> String {
        let safe = path.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil))
                || "/._-+:@%".unicodeScalars.contains($0)
        }
        return safe ? path : "'" + path.replacingAll("'", with: "'\\''") + "'"
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
