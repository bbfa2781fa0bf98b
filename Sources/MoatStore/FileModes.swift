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
        let type = UInt32(info.st_mode) & UInt32(S_IFMT)
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
        if info.st_uid != uid && info.st_uid != 0 {
            problems.append(
                PermissionProblem(
                    path: path,
                    problem: "is owned by uid \(info.st_uid), not by this user (uid \(uid))",
                    fix: "chown \(uid) \(shellQuoted(path))"
                )
            )
        }
        let mode = UInt32(info.st_mode) & 0o7777
        if mode & forbidden != 0 {
            let wanted = mode & ~forbidden & 0o777
            let what = forbidden == 0o077 ? "group- or world-accessible" : "group- or world-writable"
            problems.append(
                PermissionProblem(
                    path: path,
                    problem: "is \(what) (mode \(octal(mode)))",
                    fix:
                        "chmod \(octal(wanted == 0 ? (kind == .directory ? 0o700 : 0o600) : wanted)) \(shellQuoted(path))"
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
