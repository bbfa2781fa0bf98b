#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Bytes that must stay secret: keys, passwords, vault values.
///
/// The bytes live in their own anonymous memory mapping, never in the Swift heap, so that:
/// - the pages are locked (`mlock`) and cannot be written to swap; when the process's lock limit
///   (`RLIMIT_MEMLOCK`) is used up, the bytes still work but are swappable (``isLocked`` tells);
/// - the pages are excluded from core dumps (`MADV_DONTDUMP`);
/// - the bytes are wiped with `explicit_bzero`, which the optimizer may not remove, before the mapping
///   is returned to the kernel when the last reference goes away.
///
/// The contents never change after initialization, which makes the type safe to share across tasks.
/// It is deliberately not `Codable` and prints as `<redacted>` in every form (`description`,
/// `debugDescription`, `dump`, string interpolation), so a value cannot slip into a log line or an error
/// by accident. Equality is constant-time for inputs of equal length.
///
/// Every copy made *out* of a `SecretBytes` (for example the `String` a placeholder resolves to) is the
/// caller's responsibility: keep such copies short-lived.
public final class SecretBytes: @unchecked Sendable {
    // @unchecked: the mapping is written only inside `init` and read-only afterwards.
    private let base: UnsafeMutableRawPointer?
    private let mappedLength: Int
    /// The number of secret bytes.
    public let count: Int
    /// Whether the pages are locked in RAM (false when the process's `RLIMIT_MEMLOCK` is exhausted).
    public let isLocked: Bool

    /// Allocates `count` zeroed secret bytes and lets `initializer` fill them in place.
    ///
    /// Writing in place avoids ever holding the secret in an ordinary (unwiped, swappable) buffer.
    /// If `initializer` throws, the memory is wiped and released and the error is rethrown.
    public init<E: Error>(
        count: Int,
        initializer: (UnsafeMutableRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        precondition(count >= 0, "SecretBytes: negative count")
        self.count = count
        guard count > 0 else {
            base = nil
            mappedLength = 0
            isLocked = true
            return
        }
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)
        let length = (count + page - 1) / page * page
        let address = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let address, address != MAP_FAILED else {
            // Without memory for a few pages nothing else in the process can work either.
            fatalError("SecretBytes: mmap of \(length) bytes failed (errno \(errno))")
        }
        #if os(Linux)
            _ = madvise(address, length, Int32(MADV_DONTDUMP))
        #endif
        isLocked = mlock(address, length) == 0
        base = address
        mappedLength = length
        // Every stored property is set, so if `initializer` throws, `deinit` runs and wipes and releases
        // the mapping; releasing it here as well would unmap it twice.
        try initializer(UnsafeMutableRawBufferPointer(start: address, count: count))
    }

    /// Copies `bytes` into secret memory. The source is the caller's to wipe.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { target in
            if let source = bytes.baseAddress, let destination = target.baseAddress {
                destination.copyMemory(from: source, byteCount: bytes.count)
            }
        }
    }

    /// Copies `bytes` into secret memory and wipes the array it came from.
    ///
    /// The array is wiped in place; copies the array made earlier (for example when it grew) are out of
    /// reach, so prefer ``init(count:initializer:)`` for secrets read from outside the process.
    public convenience init(wiping bytes: inout [UInt8]) {
        self.init(count: bytes.count) { target in
            bytes.withUnsafeBytes { source in
                if let from = source.baseAddress, let to = target.baseAddress {
                    to.copyMemory(from: from, byteCount: source.count)
                }
            }
        }
        bytes.withUnsafeMutableBytes { Self.wipe($0) }
        bytes.removeAll()
    }

    deinit {
        if let base {
            Self.release(base, length: mappedLength, locked: isLocked)
        }
    }

    /// True when there are no bytes.
    public var isEmpty: Bool { count == 0 }

    /// Calls `body` with a read-only view of the bytes. Do not let the pointer escape.
    public func withUnsafeBytes<Result, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> Result
    ) throws(E) -> Result {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Overwrites `buffer` with zeros in a way the optimizer may not skip.
    public static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let address = buffer.baseAddress, buffer.count > 0 else { return }
        #if canImport(Glibc) || canImport(Musl)
            explicit_bzero(address, buffer.count)
        #else
            memset_s(address, buffer.count, 0, buffer.count)
        #endif
    }

    private static func release(_ address: UnsafeMutableRawPointer, length: Int, locked: Bool) {
        wipe(UnsafeMutableRawBufferPointer(start: address, count: length))
        if locked { _ = munlock(address, length) }
        _ = munmap(address, length)
    }
}

extension SecretBytes: Equatable {
    /// Constant-time for equal lengths: every byte is compared whatever the first difference is.
    /// The lengths themselves are not secret.
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { left in
            rhs.withUnsafeBytes { right in
                var difference: UInt8 = 0
                for index in 0..<left.count {
                    difference |= left[index] ^ right[index]
                }
                return difference == 0
            }
        }
    }
}

extension SecretBytes: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    /// No children: `dump` and debuggers that use reflection see nothing but the type.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .class) }
}
