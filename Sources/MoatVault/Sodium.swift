import CSodium
import MoatCore

/// The libsodium calls the vault uses; the only file that touches libsodium's C API.
enum Sodium {
    /// `sodium_init` is idempotent and thread-safe; a global `let` runs it exactly once.
    private static let initialized: Bool = sodium_init() >= 0

    /// `count` bytes from the kernel's CSPRNG (public material: salts).
    static func randomBytes(_ count: Int) -> [UInt8] {
        precondition(initialized, "libsodium failed to initialize")
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        return bytes
    }

    /// `count` random bytes generated directly into secret memory (keys, generated passwords).
    static func randomSecret(_ count: Int) -> SecretBytes {
        precondition(initialized, "libsodium failed to initialize")
        return SecretBytes(count: count) { buffer in
            if let base = buffer.baseAddress { randombytes_buf(base, buffer.count) }
        }
    }

    /// A uniformly random number below `upperBound`, without modulo bias.
    static func uniform(_ upperBound: UInt32) -> UInt32 {
        precondition(initialized, "libsodium failed to initialize")
        return randombytes_uniform(upperBound)
    }
}
