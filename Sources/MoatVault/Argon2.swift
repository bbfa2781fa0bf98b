import CArgon2
import MoatCore

/// The cost of an Argon2id derivation (RFC 9106): memory in KiB, passes over it, and lanes.
///
/// A vault's parameters are stored in its header. Reading a header that asks for less than
/// ``minimumMemoryKiB`` or ``minimumIterations`` is refused: an attacker who can write the file must
/// not be able to make the next write use a key that is cheap to brute-force (the downgrade guard).
/// More than a few times what Moat writes is refused as well, before any derivation: a header edited
/// to 4 GiB and 64 passes once cost 4.2 GB and minutes of CPU per open, repeated by every reload.
public struct Argon2Parameters: Sendable, Hashable, CustomStringConvertible {
    /// Memory, in KiB.
    public let memoryKiB: UInt32
    /// Passes over the memory (`t`).
    public let iterations: UInt32
    /// Lanes (`p`); libargon2 also uses this many threads.
    public let parallelism: UInt32

    /// RFC 9106's second recommended option, for memory-constrained machines: m = 64 MiB, t = 3, p = 4.
    public static let recommended = Argon2Parameters(uncheckedMemoryKiB: 64 * 1024, iterations: 3, parallelism: 4)
    /// The weakest memory a vault may ask for: 19 MiB (OWASP's floor for Argon2id).
    public static let minimumMemoryKiB: UInt32 = 19 * 1024
    /// The fewest passes a vault may ask for.
    public static let minimumIterations: UInt32 = 2
    /// The most memory a header may ask for: 256 MiB, four times ``recommended``.
    public static let maximumMemoryKiB: UInt32 = 256 * 1024
    /// The most passes a header may ask for: with ``maximumMemoryKiB``, about five times the work of
    /// ``recommended`` (about one second of CPU on a small machine).
    public static let maximumIterations: UInt32 = 4
    /// The most lanes a header may ask for.
    public static let maximumParallelism: UInt32 = 8

    /// Parameters for a new vault; refused below the floor or above the ceiling.
    ///
    /// Tests and owners on small machines may choose less than ``recommended``, never less than
    /// 19 MiB and 2 passes.
    public init(memoryKiB: UInt32, iterations: UInt32, parallelism: UInt32) throws(VaultError) {
        self.init(uncheckedMemoryKiB: memoryKiB, iterations: iterations, parallelism: parallelism)
        try checkVaultBounds(source: "the requested parameters")
    }

    /// For the seal, whose key protects a password that is itself Argon2id-hardened, and for tests.
    init(uncheckedMemoryKiB memoryKiB: UInt32, iterations: UInt32, parallelism: UInt32) {
        self.memoryKiB = memoryKiB
        self.iterations = iterations
        self.parallelism = parallelism
    }

    /// Refuses parameters below the vault floor or above the ceiling; `source` names where they came from.
    func checkVaultBounds(source: String) throws(VaultError) {
        if memoryKiB < Self.minimumMemoryKiB || iterations < Self.minimumIterations {
            throw VaultError(
                .weakParameters,
                "\(source) ask for weaker key derivation (\(self)) than Moat accepts (at least m=19 MiB, t=2): "
                    + "the file was tampered with or damaged; restore it from a backup"
            )
        }
        try checkCeiling(source: source)
    }

    /// Refuses parameters that would exhaust memory or time, or that libargon2 rejects.
    func checkCeiling(source: String) throws(VaultError) {
        guard memoryKiB <= Self.maximumMemoryKiB, iterations <= Self.maximumIterations,
            parallelism >= 1, parallelism <= Self.maximumParallelism, iterations >= 1,
            memoryKiB >= 8 * parallelism
        else {
            throw VaultError(
                .weakParameters,
                "\(source) ask for key derivation Moat does not allow (\(self); at most m=256 MiB, t=4, p=8): "
                    + "the file was tampered with or damaged; restore it from a backup"
            )
        }
    }

    public var description: String {
        let memory = memoryKiB % 1024 == 0 ? "\(memoryKiB / 1024) MiB" : "\(memoryKiB) KiB"
        return "Argon2id m=\(memory), t=\(iterations), p=\(parallelism)"
    }
}

/// Argon2id through libargon2; the only file that touches libargon2's C API.
enum Argon2id {
    /// Derives a `length`-byte key from `password` and `salt` (and RFC 9106's optional `secret`,
    /// which the seal uses for its machine secret) directly into secret memory.
    static func deriveKey(
        password: SecretBytes,
        salt: [UInt8],
        secret: SecretBytes? = nil,
        parameters: Argon2Parameters,
        length: Int = 32
    ) throws(VaultError) -> SecretBytes {
        try parameters.checkCeiling(source: "key derivation")
        var status: Int32 = 0
        let noSecret = SecretBytes(count: 0) { _ in }
        let key = SecretBytes(count: length) { output in
            password.withUnsafeBytes { passwordBytes in
                (secret ?? noSecret).withUnsafeBytes { secretBytes in
                    status = run(
                        output: output,
                        password: passwordBytes,
                        salt: salt,
                        secret: secretBytes,
                        associatedData: [],
                        parameters: parameters
                    )
                }
            }
        }
        guard status == ARGON2_OK.rawValue else { throw failure(status, parameters) }
        return key
    }

    /// The full RFC 9106 interface (with secret and associated data), for the test vectors.
    static func hash(
        password: [UInt8],
        salt: [UInt8],
        secret: [UInt8],
        associatedData: [UInt8],
        parameters: Argon2Parameters,
        length: Int
    ) throws(VaultError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: length)
        let status = output.withUnsafeMutableBytes { buffer in
            password.withUnsafeBytes { passwordBytes in
                secret.withUnsafeBytes { secretBytes in
                    run(
                        output: buffer,
                        password: passwordBytes,
                        salt: salt,
                        secret: secretBytes,
                        associatedData: associatedData,
                        parameters: parameters
                    )
                }
            }
        }
        guard status == ARGON2_OK.rawValue else { throw failure(status, parameters) }
        return output
    }

    private static func run(
        output: UnsafeMutableRawBufferPointer,
        password: UnsafeRawBufferPointer,
        salt: [UInt8],
        secret: UnsafeRawBufferPointer,
        associatedData: [UInt8],
        parameters: Argon2Parameters
    ) -> Int32 {
        var salt = salt
        var associatedData = associatedData
        // libargon2 takes non-const pointers for inputs it only reads (and, with the default flags,
        // leaves the password and secret untouched); a zero-length input gets a valid dummy pointer.
        var empty: UInt8 = 0
        return withUnsafeMutablePointer(to: &empty) { dummy in
            salt.withUnsafeMutableBufferPointer { saltBuffer in
                associatedData.withUnsafeMutableBufferPointer { adBuffer in
                    var context = argon2_context()
                    context.out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    context.outlen = UInt32(output.count)
                    context.pwd = UnsafeMutablePointer(
                        mutating: password.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(dummy)
                    )
                    context.pwdlen = UInt32(password.count)
                    context.salt = saltBuffer.baseAddress ?? dummy
                    context.saltlen = UInt32(saltBuffer.count)
                    context.secret = UnsafeMutablePointer(
                        mutating: secret.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(dummy)
                    )
                    context.secretlen = UInt32(secret.count)
                    context.ad = adBuffer.baseAddress ?? dummy
                    context.adlen = UInt32(adBuffer.count)
                    context.t_cost = parameters.iterations
                    context.m_cost = parameters.memoryKiB
                    context.lanes = parameters.parallelism
                    context.threads = parameters.parallelism
                    context.version = UInt32(ARGON2_VERSION_13.rawValue)
                    context.allocate_cbk = nil
                    context.free_cbk = nil
                    context.flags = 0  // ARGON2_DEFAULT_FLAGS: the password and secret are left as they are
                    return argon2_ctx(&context, Argon2_id)
                }
            }
        }
    }

    private static func failure(_ status: Int32, _ parameters: Argon2Parameters) -> VaultError {
        let reason = String(cString: argon2_error_message(status))
        if status == ARGON2_MEMORY_ALLOCATION_ERROR.rawValue {
            return VaultError(.io, "not enough memory for key derivation (\(parameters)): \(reason)")
        }
        return VaultError(.io, "key derivation failed (\(parameters)): \(reason)")
    }
}
