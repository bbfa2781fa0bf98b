import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

@Suite(.lowestPriority) struct VaultFileTests {
    static let value = "ghp_SuperSecretTokenValue1234567890"

    /// A vault holding one secret, and the bytes of its file.
    func vaultWithSecret() throws -> (VaultFixture, [UInt8]) {
        let fixture = VaultFixture()
        let vault = try fixture.create()
        try vault.add(
            "GITHUB_TOKEN",
            value: secret(Self.value),
            policy: SecretPolicy(tools: ["http"], hosts: ["api.github.com"])
        )
        return (fixture, fixture.fileBytes)
    }

    @Test("a created vault is a 0600 file that reopens with the password and keeps its secrets")
    func roundTrip() throws {
        let (fixture, _) = try vaultWithSecret()
        #expect(FileModes(fixture.paths.vault).mode == 0o600)
        let reopened = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
        let summaries = try reopened.secrets()
        #expect(summaries.map(\.name) == ["GITHUB_TOKEN"])
        #expect(summaries[0].policy.tools == ["http"])
        #expect(summaries[0].policy.hosts == ["api.github.com"])
        #expect(try reopened.value(named: "GITHUB_TOKEN") == secret(Self.value))
        #expect(reopened.parameters == VaultFixture.weak)
    }

    @Test("the file holds no value and no name in plaintext")
    func noPlaintext() throws {
        let (_, bytes) = try vaultWithSecret()
        for needle in [Self.value, "SuperSecret", "GITHUB_TOKEN", "api.github.com", "http"] {
            #expect(!contains(bytes, Array(needle.utf8)), "\(needle) found in the file")
        }
        #expect(Array(bytes[0..<8]) == Array("MOATVLT".utf8) + [0])
    }

    @Test("every write uses a fresh nonce under the same salt")
    func freshNonce() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create()
        let first = fixture.fileBytes
        try vault.add("ONE", value: secret("value one"), policy: .none)
        let second = fixture.fileBytes
        try vault.remove("ONE")
        let third = fixture.fileBytes
        #expect(first[23..<55] == second[23..<55])
        let nonces = [first, second, third].map { Array($0[55..<67]) }
        #expect(Set(nonces).count == 3)
    }

    @Test("a wrong password fails with a clear message that names the file")
    func wrongPassword() throws {
        let (fixture, _) = try vaultWithSecret()
        let error = vaultError {
            _ = try UnlockedVault.open(paths: fixture.paths, password: secret("wrong horse battery"))
        }
        #expect(error?.code == .cannotDecrypt)
        #expect(error?.message.contains("the password is wrong") == true)
        #expect(error?.message.contains(fixture.paths.vault) == true)
        #expect(error?.message.contains(Self.value) == false)
    }

    @Test("flipping any byte of the header, nonce, ciphertext or tag is detected")
    func everyFlipDetected() async throws {
        let (fixture, original) = try vaultWithSecret()
        let password = secret("correct horse battery")
        // Hundreds of opens, each changed header an Argon2 derivation: seconds of CPU, on a thread of its own
        // rather than a cooperative one. Returns the error of opening each version (nil: it opened).
        let (errorForOriginal, errors, publicErrors) = try await atLowestPriority {
            var keys: [[UInt8]: SecretBytes] = [:]
            /// Opens `file` as the vault does, deriving each distinct header's key only once.
            func open(_ file: [UInt8]) -> VaultError? {
                vaultError {
                    let header = try VaultHeader.parse(file, path: "vault.moat")
                    let key =
                        try keys[header.encoded]
                        ?? Argon2id.deriveKey(password: password, salt: header.salt, parameters: header.parameters)
                    keys[header.encoded] = key
                    _ = try VaultCipher.open(
                        file: file, header: header, key: key, failure: VaultError(.cannotDecrypt, "")
                    ) { bytes throws(VaultError) in try VaultPayload.decode(bytes, path: "vault.moat") }
                }
            }
            let errors = original.indices.map { index in
                var flipped = original
                flipped[index] ^= 0x01
                return open(flipped)
            }
            // Through the public API as well, for one byte of each region.
            let publicErrors = try [9, 30, 60, original.count - 20, original.count - 1].map { index in
                var flipped = original
                flipped[index] ^= 0x80
                try fixture.writeFile(flipped)
                return vaultError { _ = try UnlockedVault.open(paths: fixture.paths, password: password) }
            }
            return (open(original), errors, publicErrors)
        }
        #expect(errorForOriginal == nil)
        var codes: [String: Int] = [:]
        for (index, error) in errors.enumerated() {
            #expect(error != nil, "flipping byte \(index) of \(original.count) was not detected")
            codes[error?.code.description ?? "none", default: 0] += 1
        }
        // Header fields are refused when read; everything else fails authentication.
        #expect(codes["corrupt"] == 8)
        #expect(codes["unsupportedVersion"] == 3)
        #expect((codes["cannotDecrypt"] ?? 0) >= original.count - 55)
        #expect(!codes.keys.contains("none"))
        #expect(publicErrors.allSatisfy { $0 != nil })
    }

    @Test("truncated, extended, empty and foreign files are refused with a message that says where")
    func malformedFiles() throws {
        let (fixture, original) = try vaultWithSecret()
        let password = secret("correct horse battery")
        let cases: [([UInt8], VaultError.Code, String)] = [
            (Array(original.prefix(40)), .corrupt, "truncated"),
            ([], .corrupt, "bytes 0-7"),
            (Array("not a vault at all, just text".utf8), .corrupt, "is not a Moat vault"),
            (original + [0], .cannotDecrypt, "the password is wrong, or the file was changed"),
            (Array(original.dropLast()), .cannotDecrypt, "the password is wrong, or the file was changed"),
        ]
        for (bytes, code, text) in cases {
            try fixture.writeFile(bytes)
            let error = vaultError { _ = try UnlockedVault.open(paths: fixture.paths, password: password) }
            #expect(error?.code == code, "\(bytes.count) bytes")
            #expect(error?.message.contains(text) == true, "\(error?.message ?? "")")
        }
    }

    @Test("a header edited to weaker parameters is refused before any key is derived (downgrade guard)")
    func downgradeRefused() throws {
        let (fixture, original) = try vaultWithSecret()
        let password = secret("correct horse battery")
        func setting(_ offset: Int, _ value: UInt32, in bytes: [UInt8]) -> [UInt8] {
            var bytes = bytes
            bytes[offset..<(offset + 4)] = [
                UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff),
            ]
            return bytes
        }
        for edited in [setting(11, 8 * 1024, in: original), setting(15, 1, in: original)] {
            try fixture.writeFile(edited)
            let error = vaultError { _ = try UnlockedVault.open(paths: fixture.paths, password: password) }
            #expect(error?.code == .weakParameters)
            #expect(error?.message.contains("weaker key derivation") == true)
        }
        // Even a well-formed file written with weak parameters (by someone who knows the password) is refused.
        let weak = Argon2Parameters(uncheckedMemoryKiB: 1024, iterations: 1, parallelism: 1)
        let header = VaultHeader(parameters: weak, salt: [UInt8](repeating: 9, count: 32))
        let key = try Argon2id.deriveKey(password: password, salt: header.salt, parameters: weak)
        try fixture.writeFile(try VaultCipher.seal(payload: VaultPayload.encode([]), header: header, key: key))
        let error = vaultError { _ = try UnlockedVault.open(paths: fixture.paths, password: password) }
        #expect(error?.code == .weakParameters)
    }

    @Test(
        "a header raised above m=256 MiB, t=4 or p=8 (4 GiB and 64 passes once cost 4.2 GB per open) is refused before any key is derived"
    )
    func expensiveParametersRefused() throws {
        let (fixture, original) = try vaultWithSecret()
        let password = secret("correct horse battery")
        for (offset, value) in [
            (11, 4 * 1024 * 1024), (11, 256 * 1024 + 1), (15, 64), (15, 5), (19, 9), (19, 64), (19, 0),
        ] as [(Int, UInt32)] {
            var edited = original
            edited.replaceSubrange(offset..<(offset + 4), with: withUnsafeBytes(of: value.bigEndian, Array.init))
            try fixture.writeFile(edited)
            // Reading the header alone already refuses it (this is what stops a derivation).
            let inspected = vaultError { _ = try VaultStatus.inspect(fixture.paths) }
            try #require(inspected?.code == .weakParameters, "offset \(offset) = \(value)")
            #expect(inspected?.message.contains("at most m=256 MiB, t=4, p=8") == true)
            let opened = vaultError { _ = try UnlockedVault.open(paths: fixture.paths, password: password) }
            #expect(opened?.code == .weakParameters)
        }
        // The ceiling itself is allowed.
        #expect(throws: Never.self) { try Argon2Parameters(memoryKiB: 256 * 1024, iterations: 4, parallelism: 8) }
    }

    @Test("create refuses an existing vault and passwords under 12 characters")
    func createGuards() throws {
        let fixture = VaultFixture()
        let short = vaultError { _ = try fixture.create(password: "short pass1") }
        #expect(short?.code == .badInput)
        #expect(short?.message.contains("at least 12 characters") == true)
        #expect(!FileManager.default.fileExists(atPath: fixture.paths.vault))
        _ = try fixture.create()
        let again = vaultError { _ = try fixture.create() }
        #expect(again?.code == .alreadyExists)
        #expect(again?.message.contains("moat vault rekey") == true)
    }

    @Test("invalid names, empty values, duplicates and unknown names are clear errors that change nothing")
    func entryErrors() throws {
        let (fixture, before) = try vaultWithSecret()
        let vault = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
        for name in ["lower", "1ABC", "A-B", "", String(repeating: "A", count: 65), "ÄBC"] {
            let error = vaultError { try vault.add(name, value: secret("some value"), policy: .none) }
            #expect(error?.code == .invalidName, "\(name)")
            #expect(error?.exitCode == 64)
        }
        #expect(vaultError { try vault.add("EMPTY", value: secret(""), policy: .none) }?.code == .invalidValue)
        let duplicate = vaultError { try vault.add("GITHUB_TOKEN", value: secret("other value"), policy: .none) }
        #expect(duplicate?.code == .duplicateSecret)
        #expect(duplicate?.message.contains("--replace") == true)
        let unknown = vaultError { try vault.remove("NOPE") }
        #expect(unknown?.code == .unknownSecret)
        #expect(unknown?.message.contains("NOPE") == true)
        #expect(fixture.fileBytes == before)
        for error in [duplicate, unknown] {
            #expect(error?.message.contains(Self.value) == false)
        }
    }

    @Test("replace keeps the creation date and changes the value, dates and policy")
    func replace() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create()
        let created = Date(timeIntervalSince1970: 1_700_000_000)
        try vault.add("TOKEN", value: secret("first value"), policy: .none, now: created)
        let later = Date(timeIntervalSince1970: 1_800_000_000)
        try vault.add(
            "TOKEN",
            value: secret("second value"),
            policy: SecretPolicy(tools: ["http"], hosts: ["*"]),
            replace: true,
            now: later
        )
        let summary = try #require(try vault.secrets().first)
        #expect(summary.createdAt == created)
        #expect(summary.updatedAt == later)
        #expect(summary.policy.hosts == ["*"])
        #expect(try vault.value(named: "TOKEN") == secret("second value"))
    }

    @Test("status reads the parameters and the seal without the password; a corrupt header is reported")
    func status() throws {
        let (fixture, bytes) = try vaultWithSecret()
        var status = try #require(try VaultStatus.inspect(fixture.paths))
        #expect(status.parameters == VaultFixture.weak)
        #expect(status.seal == nil)
        #expect(status.size == bytes.count)
        let vault = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
        try vault.seal(password: secret("correct horse battery"), pin: nil, machine: VaultFixture.here)
        status = try #require(try VaultStatus.inspect(fixture.paths))
        #expect(status.seal == VaultSeal.Info(hasPIN: false, protection: .fingerprint))
        try fixture.writeFile(Array(bytes.prefix(10)))
        #expect(vaultError { _ = try VaultStatus.inspect(fixture.paths) }?.code == .corrupt)
        #expect(try VaultStatus.inspect(VaultFixture().paths) == nil)
    }
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    for start in 0...(haystack.count - needle.count)
    where haystack[start..<(start + needle.count)].elementsEqual(needle) {
        return true
    }
    return false
}

/// The permission bits of a path.
struct FileModes {
    let mode: UInt32?
    init(_ path: String) {
        var info = stat()
        mode = lstat(path, &info) == 0 ? UInt32(info.st_mode) & 0o7777 : nil
    }
}
