import CArgon2
public import MoatCore

/// The owner's login password hash: Argon2id through libargon2, stored as the standard PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
///
/// Parameters follow OWASP's floor for Argon2id (m = 19 MiB, t = 2, p = 1): a login must stay fast
/// enough for two checks at once on a small machine. A stored hash asking for less than the floor, or
/// for more than ``Argon2Parameters`` allows, is refused before libargon2 sees it, so a tampered row can
/// neither weaken the check nor exhaust memory.
public enum PasswordHash {
    /// The parameters new hashes use.
    public static let parameters = Argon2Parameters(uncheckedMemoryKiB: 19 * 1024, iterations: 2, parallelism: 1)

    /// Hashes `password` with a fresh 16-byte random salt.
    public static func make(_ password: SecretBytes) throws(VaultError) -> String {
        let salt = Sodium.randomBytes(16)
        let length = argon2_encodedlen(
            parameters.iterations, parameters.memoryKiB, parameters.parallelism, UInt32(salt.count), 32, Argon2_id)
        var encoded = [CChar](repeating: 0, count: length + 1)
        let status = password.withUnsafeBytes { bytes in
            salt.withUnsafeBufferPointer { saltBuffer in
                argon2id_hash_encoded(
                    parameters.iterations, parameters.memoryKiB, parameters.parallelism,
                    bytes.baseAddress, bytes.count, saltBuffer.baseAddress, saltBuffer.count,
                    32, &encoded, encoded.count
                )
            }
        }
        guard status == ARGON2_OK.rawValue else {
            throw VaultError(.io, "password hashing failed: \(String(cString: argon2_error_message(status)))")
        }
        return String(decoding: encoded.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `password` matches `encoded`. A malformed hash, or one outside the allowed parameters,
    /// never matches. libargon2 compares the hashes in constant time.
    public static func verify(_ password: SecretBytes, against encoded: String) -> Bool {
        guard let parameters = Self.parameters(of: encoded),
            parameters.memoryKiB >= Argon2Parameters.minimumMemoryKiB,
            parameters.iterations >= Argon2Parameters.minimumIterations,
            (try? parameters.checkCeiling(source: "the stored password hash")) != nil
        else { return false }
        let status = password.withUnsafeBytes { bytes in
            argon2id_verify(encoded, bytes.baseAddress, bytes.count)
        }
        return status == ARGON2_OK.rawValue
    }

    /// The parameters written in a PHC string, or nil when it is not `$argon2id$v=19$m=…,t=…,p=…$…$…`.
    public static func parameters(of encoded: String) -> Argon2Parameters? {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0].isEmpty, parts[1] == "argon2id", parts[2] == "v=19",
            !parts[4].isEmpty, !parts[5].isEmpty
        else { return nil }
        var values: [String: UInt32] = [:]
        for field in parts[3].split(separator: ",") {
            let pair = field.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, let value = UInt32(pair[1]) else { return nil }
            values[String(pair[0])] = value
        }
        guard values.count == 3, let m = values["m"], let t = values["t"], let p = values["p"] else { return nil }
        return Argon2Parameters(uncheckedMemoryKiB: m, iterations: t, parallelism: p)
    }
}
