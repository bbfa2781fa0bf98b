import GRDB

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension MoatDatabase {
    /// A consistent copy of the whole database as the bytes of one SQLite file, taken with SQLite's
    /// online backup API while other connections (another process's `moat serve` included) go on
    /// reading and writing: the copy is one committed state of the file.
    ///
    /// The copy is made in `scratchDirectory` (the private state directory; never /tmp) and removed
    /// before this returns.
    public func backupBytes(scratchDirectory: String) throws(StoreError) -> [UInt8] {
        var template = Array((scratchDirectory + "/.moat.db.backup-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw StoreError(.io, "cannot create a scratch file in \(scratchDirectory)") }
        closeDescriptor(fd)
        let copy = String(cString: template.map { $0 })
        defer {
            for suffix in ["", "-journal", "-wal", "-shm"] { unlink(copy + suffix) }
        }
        do {
            let destination = try DatabaseQueue(path: copy)
            try pool.backup(to: destination)
            try destination.close()
        } catch {
            throw StoreError(.io, "cannot copy \(path) with SQLite's backup API: \(error)")
        }
        guard let handle = fopen(copy, "rb") else { throw StoreError(.io, "cannot read the copy \(copy)") }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, handle) }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        guard ferror(handle) == 0 else { throw StoreError(.io, "cannot read the copy \(copy)") }
        return bytes
    }
}

/// `close(2)`, out of reach of ``MoatDatabase/close()``'s name.
private func closeDescriptor(_ fd: Int32) {
    close(fd)
}
