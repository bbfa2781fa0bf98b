import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

/// What the seal protects (issue 13, item 8): it holds a key, never the master password; it uses the
/// host key where there is one; a PIN is long and stretched; the seal's KDF parameters are fixed.
@Suite(.lowestPriority) struct SealSecrecyTests {
    let password = "correct horse battery"
    static let pin = "86420975312468"

    func bytes(_ path: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test(
        "a copy of the state directory plus host name and machine-id yields a key, never the master password, and that key does not open a vault.moat copied before a re-key"
    )
    func copyDoesNotYieldPassword() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create(password: password)
        try vault.add("OLD_SECRET", value: secret("removed before the re-key"), policy: .none)
        let before = fixture.fileBytes
        try vault.rekey(
            currentPassword: secret(password),
            newPassword: secret("a brand new password"),
            parameters: VaultFixture.weak,
            machine: VaultFixture.here
        )
        try vault.seal(password: secret("a brand new password"), pin: nil, machine: VaultFixture.here)

        // The attack: everything in the state directory and the machine's identity, decrypted with
        // Moat's own code. The weakest mode (fingerprint only) is the one an attacker can open at all.
        let opened = try VaultSeal.open(path: fixture.paths.seal, pin: nil, machine: VaultFixture.here)
        #expect(opened.count == 1)
        for credential in opened {
            guard case .key(let key) = credential else {
                Issue.record("the seal holds a password")
                continue
            }
            #expect(key.count == 32)
            for text in [password, "a brand new password"] {
                #expect(key != secret(text))
                key.withUnsafeBytes { #expect(!contains(Array($0), Array(text.utf8))) }
            }
            // It opens today's vault (that is its job) ...
            let current = fixture.fileBytes
            let header = try VaultHeader.parse(current, path: "current")
            #expect(throws: Never.self) {
                _ = try VaultCipher.open(file: current, header: header, key: key, failure: VaultError(.io, "")) { _ in }
            }
            // ... and not the copy made before the re-key, which still holds OLD_SECRET.
            let oldHeader = try VaultHeader.parse(before, path: "old copy")
            let old = vaultError {
                _ = try VaultCipher.open(
                    file: before, header: oldHeader, key: key, failure: VaultError(.cannotDecrypt, "")
                ) { _ in }
            }
            #expect(old?.code == .cannotDecrypt)
        }
        let file = try bytes(fixture.paths.seal)
        for text in [password, "a brand new password"] { #expect(!contains(file, Array(text.utf8))) }
    }

    @Test(
        "a seal bound to the host key does not open with a copy of the state directory and the fingerprint, nor with another host key",
        .enabled(if: SystemdCredentials.installed() != nil, "systemd-creds is not installed")
    )
    func hostKey() throws {
        let fixture = VaultFixture()
        let machine = try #require(fixture.withHostKey)
        let vault = try fixture.create(password: password)
        try vault.add("API_KEY", value: secret("sk-live-0123456789abcdef"), policy: .none)
        let written = try vault.seal(password: secret(password), pin: nil, machine: machine)
        #expect(written.info == VaultSeal.Info(hasPIN: false, protection: .hostKey))
        #expect(written.hostKeyProblem == nil)
        #expect(try VaultSeal.inspect(fixture.paths.seal)?.protection == .hostKey)
        #expect(try VaultSeal.inspect(fixture.paths.seal)?.exposure.contains("does not open the vault") == true)

        let unsealed = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: machine)
        #expect(try unsealed.secrets().map(\.name) == ["API_KEY"])

        // The copy: every file of the state directory and the fingerprint, but not the host key.
        let copy = vaultError {
            _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: VaultFixture.here)
        }
        #expect(copy?.code == .sealDidNotOpen)
        #expect(copy?.message.contains("host key") == true)
        let elsewhere = SealMachine(
            fingerprint: VaultFixture.fingerprint,
            hostKey: SystemdCredentials(tool: machine.hostKey!.tool, hostKeyFile: fixture.directory.path + "/other.key")
        )
        let other = vaultError { _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: elsewhere) }
        #expect(other?.code == .sealDidNotOpen)
        #expect(other?.message.contains("moat vault seal") == true)

        // A re-key keeps the host key binding; where the host key cannot be used it refuses rather
        // than falling back to the fingerprint.
        let refused = vaultError {
            try unsealed.rekey(
                currentPassword: nil, newPassword: secret("a brand new password"), parameters: VaultFixture.weak,
                machine: VaultFixture.here)
        }
        #expect(refused?.message.contains("nothing changed") == true)
        try unsealed.rekey(
            currentPassword: nil, newPassword: secret("a brand new password"), parameters: VaultFixture.weak,
            machine: machine)
        #expect(try VaultSeal.inspect(fixture.paths.seal)?.protection == .hostKey)
        #expect(throws: Never.self) { _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: machine) }
    }

    @Test("a PIN shorter than 14 characters is refused with the rule, and no seal is written")
    func shortPIN() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create(password: password)
        for short in ["2468", "1234567890123", "ab-cd-ef-gh-i"] {
            let error = vaultError {
                try vault.seal(password: secret(password), pin: secret(short), machine: VaultFixture.here)
            }
            #expect(error?.code == .badInput)
            #expect(error?.message.contains("at least 14 characters") == true)
            #expect(error?.message.contains(short) == false)
            #expect(!FileManager.default.fileExists(atPath: fixture.paths.seal))
            let file = try fixture.directory.write("pin", short + "\n")
            let read = vaultError { _ = try SecretInput.pin(from: .file(file), confirm: true) }
            #expect(read?.code == .badInput)
        }
        #expect(throws: Never.self) {
            try vault.seal(password: secret(password), pin: secret(Self.pin), machine: VaultFixture.here)
        }
    }

    @Test(
        "a PIN seal is stretched with m=64 MiB, t=3, p=4; a wrong PIN is refused; parameters edited in the header are refused before deriving"
    )
    func pinStretched() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create(password: password)
        try vault.seal(password: secret(password), pin: secret(Self.pin), machine: VaultFixture.here)
        let file = try bytes(fixture.paths.seal)
        func u32(_ offset: Int) -> UInt32 { file[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        #expect(file[9] == 1)
        #expect(u32(12) == 64 * 1024 && u32(16) == 3 && u32(20) == 4)
        #expect(VaultSeal.pinParameters == Argon2Parameters.recommended)

        let wrong = vaultError {
            _ = try UnlockedVault.unseal(
                paths: fixture.paths, pin: secret("86420975312469"), machine: VaultFixture.here)
        }
        #expect(wrong?.code == .sealDidNotOpen)
        #expect(wrong?.message.contains("the PIN is wrong") == true)

        // Lowered to what a seal without a PIN uses, raised, or other lanes: all refused, fast.
        for (offset, value) in [(12, 8 * 1024), (16, 1), (12, 4 * 1024 * 1024), (16, 64), (20, 1), (20, 64)] {
            var edited = file
            edited.replaceSubrange(
                offset..<(offset + 4), with: withUnsafeBytes(of: UInt32(value).bigEndian, Array.init))
            let error = vaultError {
                _ = try VaultSeal.open(
                    path: fixture.paths.seal, pin: secret(Self.pin), machine: VaultFixture.here, data: edited)
            }
            #expect(error?.code == .weakParameters, "offset \(offset) = \(value)")
            #expect(error?.message.contains("Moat writes only") == true)
        }
        // The PIN flag cleared: the no-PIN parameters no longer match either.
        var unflagged = file
        unflagged[9] = 0
        let flag = vaultError {
            _ = try VaultSeal.open(path: fixture.paths.seal, pin: nil, machine: VaultFixture.here, data: unflagged)
        }
        #expect(flag?.code == .weakParameters)
    }

    /// A format-1 seal as Moat wrote it before issue 13: the password itself under a fingerprint key.
    func writeFormatOne(_ fixture: VaultFixture, password: String) throws {
        var header = VaultSeal.magic + [1, 0, 1]
        for value in [UInt32(8 * 1024), 1, 1] { header += withUnsafeBytes(of: value.bigEndian, Array.init) }
        let key = try Argon2id.deriveKey(
            password: secret(""), salt: VaultFixture.fingerprint.digest, parameters: VaultSeal.parameters)
        var raw = [1, 0, UInt8(password.utf8.count)] + Array(password.utf8)
        let plaintext = SecretBytes(wiping: &raw)
        try Data(try SealFile.encrypt(plaintext, header: header, key: key))
            .write(to: URL(fileURLWithPath: fixture.paths.seal))
    }

    @Test("a seal from an older Moat still opens, says it holds the password, and sealing again replaces it")
    func formatOne() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create(password: password)
        try writeFormatOne(fixture, password: password)
        let info = try #require(try VaultSeal.inspect(fixture.paths.seal))
        #expect(info.holdsPassword)
        #expect(info.exposure.contains("holds the master password itself"))
        #expect(info.exposure.contains("moat vault seal"))
        #expect(throws: Never.self) {
            _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: VaultFixture.here)
        }

        try vault.seal(password: secret(password), pin: nil, machine: VaultFixture.here)
        #expect(try VaultSeal.inspect(fixture.paths.seal)?.holdsPassword == false)
        #expect(!contains(try bytes(fixture.paths.seal), Array(password.utf8)))
        #expect(throws: Never.self) {
            _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: VaultFixture.here)
        }
    }
}
