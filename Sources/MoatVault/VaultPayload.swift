import Foundation
import MoatCore

/// The plaintext inside `vault.moat`: the entries, in a length-prefixed binary form.
///
/// Binary rather than JSON so values are copied straight from the decrypted buffer into
/// ``SecretBytes`` and never pass through `String`s or a parser's intermediate buffers. All integers are
/// big-endian (layout in Docs/Vault.md):
///
///     u8  payload version (2; version 1 had no generation and reads as generation 0)
///     u64 generation: one more than the vault it replaced, so a copied-back older file is recognised
///     u32 entry count
///     per entry: u8 name length, name (ASCII) | u32 value length, value
///                i64 created, i64 updated (Unix seconds)
///                u8 tool count, per tool: u8 length, tool
///                u8 host count, per host: u8 length, host
enum VaultPayload {
    static let version: UInt8 = 2
    /// The first version, without a generation; still read.
    static let versionWithoutGeneration: UInt8 = 1

    /// Serializes `entries` (sorted by name) into secret memory sized exactly in advance, so the
    /// plaintext is never in a growable buffer that could leave unwiped copies behind.
    static func encode(_ entries: [SecretEntry], generation: UInt64 = 0) -> SecretBytes {
        let sorted = entries.sorted { $0.name < $1.name }
        var size = 1 + 8 + 4
        for entry in sorted {
            size += 1 + entry.name.utf8.count + 4 + entry.value.count + 16
            size += 1 + entry.policy.tools.reduce(0) { $0 + 1 + $1.utf8.count }
            size += 1 + entry.policy.hosts.reduce(0) { $0 + 1 + $1.utf8.count }
        }
        return SecretBytes(count: size) { buffer in
            var writer = ByteWriter(buffer: buffer)
            writer.append(version)
            writer.append(generation)
            writer.append(UInt32(sorted.count))
            for entry in sorted {
                writer.appendShort(Array(entry.name.utf8))
                writer.append(UInt32(entry.value.count))
                entry.value.withUnsafeBytes { writer.append($0) }
                writer.append(UInt64(bitPattern: Int64(entry.createdAt.timeIntervalSince1970.rounded(.down))))
                writer.append(UInt64(bitPattern: Int64(entry.updatedAt.timeIntervalSince1970.rounded(.down))))
                writer.append(UInt8(entry.policy.tools.count))
                for tool in entry.policy.tools { writer.appendShort(Array(tool.utf8)) }
                writer.append(UInt8(entry.policy.hosts.count))
                for host in entry.policy.hosts { writer.appendShort(Array(host.utf8)) }
            }
            precondition(writer.offset == size, "vault payload size mismatch")
        }
    }

    /// Parses a decrypted payload. The bytes were authenticated, so a failure here means a bug or a file
    /// written by something that is not Moat; the error says which entry and field.
    static func decode(_ bytes: UnsafeRawBufferPointer, path: String) throws(VaultError) -> [SecretEntry] {
        try decodeWithGeneration(bytes, path: path).entries
    }

    /// Parses a decrypted payload with its generation (0 for a version-1 payload).
    static func decodeWithGeneration(
        _ bytes: UnsafeRawBufferPointer,
        path: String
    ) throws(VaultError) -> (generation: UInt64, entries: [SecretEntry]) {
        var reader = ByteReader(bytes: bytes, path: path)
        let payloadVersion = try reader.u8("payload version")
        guard payloadVersion == version || payloadVersion == versionWithoutGeneration else {
            throw VaultError(
                .unsupportedVersion,
                "\(path): payload version \(payloadVersion) is newer than this Moat understands; upgrade Moat"
            )
        }
        let generation = payloadVersion == version ? try reader.u64("generation") : 0
        let count = try reader.u32("entry count")
        var entries: [SecretEntry] = []
        var names: Set<String> = []
        for index in 0..<Int(count) {
            let field = "entry \(index + 1)"
            let name = try reader.shortString("\(field) name")
            guard SecretName.isValid(name), names.insert(name).inserted else {
                throw VaultError(.corrupt, "\(path): payload \(field): invalid or repeated secret name")
            }
            let length = Int(try reader.u32("\(field) value length"))
            guard length <= SecretEntry.maximumValueBytes else {
                throw VaultError(.corrupt, "\(path): payload \(field) (\(name)): value length \(length) is too large")
            }
            let value = SecretBytes(copying: try reader.bytes(length, "\(field) (\(name)) value"))
            let created = Int64(bitPattern: try reader.u64("\(field) created"))
            let updated = Int64(bitPattern: try reader.u64("\(field) updated"))
            var tools: [String] = []
            for _ in 0..<Int(try reader.u8("\(field) tool count")) {
                tools.append(try reader.shortString("\(field) tool"))
            }
            var hosts: [String] = []
            for _ in 0..<Int(try reader.u8("\(field) host count")) {
                hosts.append(try reader.shortString("\(field) host"))
            }
            let policy: SecretPolicy
            do {
                policy = try SecretPolicy(tools: tools, hosts: hosts)
            } catch {
                throw VaultError(.corrupt, "\(path): payload \(field) (\(name)): \(error.message)")
            }
            entries.append(
                SecretEntry(
                    name: name,
                    value: value,
                    createdAt: Date(timeIntervalSince1970: TimeInterval(created)),
                    updatedAt: Date(timeIntervalSince1970: TimeInterval(updated)),
                    policy: policy
                )
            )
        }
        guard reader.isAtEnd else {
            throw VaultError(.corrupt, "\(path): payload has \(reader.remaining) unexpected bytes after the last entry")
        }
        return (generation, entries)
    }
}

/// Appends big-endian integers and byte strings into a buffer of known size.
struct ByteWriter {
    let buffer: UnsafeMutableRawBufferPointer
    var offset = 0

    init(buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
    }

    mutating func append(_ value: UInt8) {
        buffer[offset] = value
        offset += 1
    }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        for shift in stride(from: T.bitWidth - 8, through: 0, by: -8) {
            append(UInt8(truncatingIfNeeded: value >> shift))
        }
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        (buffer.baseAddress! + offset).copyMemory(from: source, byteCount: bytes.count)
        offset += bytes.count
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// A byte string of at most 255 bytes, preceded by its length.
    mutating func appendShort(_ bytes: [UInt8]) {
        append(UInt8(bytes.count))
        append(bytes)
    }
}

/// Reads big-endian integers and byte strings; every read names its field so errors say where.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func bytes(_ count: Int, _ field: String) throws(VaultError) -> UnsafeRawBufferPointer {
        guard count <= remaining else {
            throw VaultError(.corrupt, "\(path): payload ends inside \(field)")
        }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    mutating func u8(_ field: String) throws(VaultError) -> UInt8 {
        try bytes(1, field)[0]
    }

    mutating func u16(_ field: String) throws(VaultError) -> UInt16 {
        try bytes(2, field).reduce(UInt16(0)) { $0 << 8 | UInt16($1) }
    }

    mutating func u32(_ field: String) throws(VaultError) -> UInt32 {
        try bytes(4, field).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    mutating func u64(_ field: String) throws(VaultError) -> UInt64 {
        try bytes(8, field).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    mutating func shortString(_ field: String) throws(VaultError) -> String {
        let length = Int(try u8("\(field) length"))
        let raw = try bytes(length, field)
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw VaultError(.corrupt, "\(path): payload \(field) is not UTF-8")
        }
        return text
    }
}
