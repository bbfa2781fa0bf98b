import Foundation
public import MoatCore

/// A generated master password: 32 random bytes as lower-case base32 in groups of four, e.g.
/// `k3vq-7wxa-…` (64 characters), so the owner can read it aloud or type it.
///
/// The text itself, hyphens included, is the password: nothing decodes it back to bytes.
public enum RecoveryKey {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// A new key, generated directly in secret memory.
    public static func generate() -> SecretBytes {
        let random = Sodium.randomSecret(32)
        // 256 bits in 5-bit characters: 52 characters (the last carries 1 bit), 13 groups of 4.
        let characters = 52
        return SecretBytes(count: characters + characters / 4 - 1) { output in
            random.withUnsafeBytes { bytes in
                var written = 0
                for index in 0..<characters {
                    if index > 0 && index % 4 == 0 {
                        output[written] = UInt8(ascii: "-")
                        written += 1
                    }
                    let bit = index * 5
                    var value = 0
                    for offset in 0..<5 where bit + offset < 256 {
                        let position = bit + offset
                        value = value << 1 | Int((bytes[position / 8] >> (7 - position % 8)) & 1)
                    }
                    if bit + 5 > 256 { value <<= bit + 5 - 256 }
                    output[written] = alphabet[value]
                    written += 1
                }
            }
        }
    }
}

extension RecoveryKey {
    /// Writes `key` to `path` (mode 0600, atomically) with a note on what it is, for a server that
    /// created the vault with no terminal to show the key on. The caller logs the path, never the key.
    public static func write(_ key: SecretBytes, to path: String) throws(VaultError) {
        let heading = Array(
            """
            Moat vault recovery key: the master password of vault.moat in this directory.
            Store it somewhere safe (a password manager, or on paper), then delete this file.
            You need it to open the vault on another machine or after this machine's identity changes.

            """.utf8
        )
        var contents = heading
        key.withUnsafeBytes { contents += $0 }
        contents.append(UInt8(ascii: "\n"))
        defer { contents.withUnsafeMutableBytes { SecretBytes.wipe($0) } }
        try VaultFileSystem.replace(path, with: contents)
    }
}

extension RecoveryKey {
    /// The key in a file ``write(_:to:)`` wrote: its last line (the lines before are the note), for
    /// `moat doctor --fix` sealing a vault unattended. The file's bytes are wiped after the copy.
    public static func read(from path: String) throws(VaultError) -> SecretBytes {
        guard var contents = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else {
            throw VaultError(.io, "cannot read \(path)")
        }
        defer { contents.withUnsafeMutableBytes { SecretBytes.wipe($0) } }
        var end = contents.count
        while end > 0 && contents[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        let start = contents[..<end].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        guard end > start, end - start <= 200 else {
            throw VaultError(.badInput, "\(path) does not end with a recovery key line")
        }
        return contents[start..<end].withUnsafeBytes { SecretBytes(copying: $0) }
    }
}
