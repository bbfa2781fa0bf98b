import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

@Suite(.lowestPriority) struct Argon2Tests {
    @Test("the RFC 9106 section 5.3 Argon2id test vector passes through our libargon2 binding")
    func rfc9106Vector() throws {
        let tag = try Argon2id.hash(
            password: [UInt8](repeating: 0x01, count: 32),
            salt: [UInt8](repeating: 0x02, count: 16),
            secret: [UInt8](repeating: 0x03, count: 8),
            associatedData: [UInt8](repeating: 0x04, count: 12),
            parameters: Argon2Parameters(uncheckedMemoryKiB: 32, iterations: 3, parallelism: 4),
            length: 32
        )
        let expected: [UInt8] = [
            0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53, 0xc9,
            0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01, 0xe6, 0x59,
        ]
        #expect(tag == expected)
    }

    @Test("defaults are RFC 9106's second recommended option: m = 64 MiB, t = 3, p = 4")
    func defaults() {
        #expect(Argon2Parameters.recommended.memoryKiB == 65536)
        #expect(Argon2Parameters.recommended.iterations == 3)
        #expect(Argon2Parameters.recommended.parallelism == 4)
        #expect(Argon2Parameters.minimumMemoryKiB == 19 * 1024)
        #expect(Argon2Parameters.minimumIterations == 2)
        #expect(VaultSeal.parameters.memoryKiB == 8 * 1024)
        #expect(VaultSeal.parameters.iterations == 1)
        #expect(Argon2Parameters.recommended.description == "Argon2id m=64 MiB, t=3, p=4")
    }

    @Test("parameters below the floor or above the ceiling are refused")
    func bounds() {
        #expect(throws: Never.self) { try Argon2Parameters(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1) }
        for (memory, iterations, lanes) in [
            (19 * 1024 - 1, 2, 1), (19 * 1024, 1, 1), (8 * 1024, 1, 1), (8 * 1024 * 1024, 3, 4), (65536, 65, 4),
            (65536, 3, 0), (65536, 3, 65), (4 * 1024 * 1024, 64, 4), (256 * 1024 + 1, 3, 4), (65536, 5, 4),
            (65536, 3, 9),
        ] as [(UInt32, UInt32, UInt32)] {
            let error = vaultError {
                _ = try Argon2Parameters(memoryKiB: memory, iterations: iterations, parallelism: lanes)
            }
            #expect(error?.code == .weakParameters, "\(memory) \(iterations) \(lanes)")
        }
    }

    @Test("derivation is deterministic and depends on password, salt and every parameter")
    func deterministic() throws {
        let salt = [UInt8](repeating: 7, count: 32)
        let weak = VaultFixture.weak
        let one = try Argon2id.deriveKey(password: secret("password one"), salt: salt, parameters: weak)
        #expect(one.count == 32)
        #expect(one == (try Argon2id.deriveKey(password: secret("password one"), salt: salt, parameters: weak)))
        #expect(one != (try Argon2id.deriveKey(password: secret("password two"), salt: salt, parameters: weak)))
        #expect(
            one
                != (try Argon2id.deriveKey(
                    password: secret("password one"), salt: [8] + salt.dropFirst(), parameters: weak)))
        let more = try Argon2Parameters(memoryKiB: 19 * 1024, iterations: 3, parallelism: 1)
        #expect(one != (try Argon2id.deriveKey(password: secret("password one"), salt: salt, parameters: more)))
    }
}
