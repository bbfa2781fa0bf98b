import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

@Suite(.lowestPriority) struct SealTests {
    let password = "correct horse battery"
    static let pin = "24681357902468"

    func sealedVault(pin: String? = nil) throws -> VaultFixture {
        let fixture = VaultFixture()
        let vault = try fixture.create(password: password)
        try vault.add("API_KEY", value: secret("sk-live-0123456789abcdef"), policy: .none)
        try vault.seal(password: secret(password), pin: pin.map(secret), machine: VaultFixture.here)
        return fixture
    }

    @Test("the seal opens here without a password, and the file is 0600 with no password in it")
    func opensHere() throws {
        let fixture = try sealedVault()
        let vault = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: VaultFixture.here)
        #expect(try vault.secrets().map(\.name) == ["API_KEY"])
        #expect(FileModes(fixture.paths.seal).mode == 0o600)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture.paths.seal)))
        #expect(!contains(bytes, Array(password.utf8)))
        #expect(try VaultSeal.inspect(fixture.paths.seal) == VaultSeal.Info(hasPIN: false, protection: .fingerprint))
    }

    @Test(
        "a changed fingerprint fails with the message to unlock with the master password and seal again",
        arguments: [
            MachineFingerprint(
                hostname: "laptop", operatingSystem: "Linux", architecture: "x86_64",
                machineID: "0123456789abcdef0123456789abcdef"),
            MachineFingerprint(
                hostname: "workstation", operatingSystem: "Linux", architecture: "aarch64",
                machineID: "0123456789abcdef0123456789abcdef"),
            MachineFingerprint(
                hostname: "workstation", operatingSystem: "Linux", architecture: "x86_64",
                machineID: "fedcba9876543210fedcba9876543210"),
            MachineFingerprint(
                hostname: "workstation", operatingSystem: "FreeBSD", architecture: "x86_64",
                machineID: "0123456789abcdef0123456789abcdef"),
        ]
    )
    func changedFingerprint(_ fingerprint: MachineFingerprint) throws {
        let other = SealMachine(fingerprint: fingerprint, hostKey: nil)
        let fixture = try sealedVault()
        let error = vaultError { _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: other) }
        #expect(error?.code == .sealDidNotOpen)
        #expect(error?.message.contains("Unlock with the master password and seal again: moat vault seal") == true)
        // The master password still works, and sealing again binds the vault to the new fingerprint.
        let vault = try UnlockedVault.open(paths: fixture.paths, password: secret(password))
        try vault.seal(password: secret(password), pin: nil, machine: other)
        #expect(throws: Never.self) { _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: other) }
    }

    @Test("with a PIN: the right PIN opens, a wrong PIN or no PIN does not")
    func pin() throws {
        let fixture = try sealedVault(pin: Self.pin)
        #expect(try VaultSeal.inspect(fixture.paths.seal) == VaultSeal.Info(hasPIN: true, protection: .fingerprint))
        #expect(throws: Never.self) {
            _ = try UnlockedVault.unseal(paths: fixture.paths, pin: secret(Self.pin), machine: VaultFixture.here)
        }
        let wrong = vaultError {
            _ = try UnlockedVault.unseal(
                paths: fixture.paths, pin: secret("13579246801357"), machine: VaultFixture.here)
        }
        #expect(wrong?.code == .sealDidNotOpen)
        #expect(wrong?.message.contains("the PIN is wrong") == true)
        #expect(wrong?.message.contains(Self.pin) == false)
        #expect(wrong?.message.contains("13579246801357") == false)
        let missing = vaultError {
            _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: VaultFixture.here)
        }
        #expect(missing?.code == .noTerminal)
        #expect(missing?.message.contains("--pin-file") == true)
    }

    @Test("sealing needs the master password; a wrong one changes nothing")
    func sealNeedsPassword() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create(password: password)
        let error = vaultError {
            try vault.seal(password: secret("not the password"), pin: nil, machine: VaultFixture.here)
        }
        #expect(error?.code == .badInput)
        #expect(!FileManager.default.fileExists(atPath: fixture.paths.seal))
        let unsealed = vaultError {
            _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: VaultFixture.here)
        }
        #expect(unsealed?.code == .notSealed)
    }

    @Test("every flipped byte of the seal file is detected")
    func sealFlips() throws {
        let fixture = try sealedVault()
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture.paths.seal)))
        for index in original.indices {
            var flipped = original
            flipped[index] ^= 0x01
            let error = vaultError {
                _ = try VaultSeal.open(
                    path: fixture.paths.seal, pin: nil, machine: VaultFixture.here, data: flipped)
            }
            #expect(error != nil, "byte \(index)")
        }
    }

    @Test("a seal whose key no longer opens the vault says to seal again")
    func staleSeal() throws {
        let fixture = try sealedVault()
        let other = VaultFixture()
        _ = try other.create(password: "another long password")
        // Replace the vault by one with another password, keeping the old seal.
        try fixture.writeFile(other.fileBytes)
        let error = vaultError {
            _ = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: VaultFixture.here)
        }
        #expect(error?.code == .sealDidNotOpen)
        #expect(error?.message.contains("seal again") == true)
    }

    @Test("rekey changes the password and salt, re-seals, and keeps the secrets")
    func rekey() throws {
        let fixture = try sealedVault(pin: Self.pin)
        let before = fixture.fileBytes
        let vault = try UnlockedVault.unseal(paths: fixture.paths, pin: secret(Self.pin), machine: VaultFixture.here)
        let noPIN = vaultError {
            try vault.rekey(
                currentPassword: secret(password),
                newPassword: secret("a brand new password"),
                parameters: VaultFixture.weak,
                machine: VaultFixture.here
            )
        }
        #expect(noPIN?.code == .noTerminal)
        let wrongCurrent = vaultError {
            try vault.rekey(
                currentPassword: secret("not the current one"),
                newPassword: secret("a brand new password"),
                parameters: VaultFixture.weak,
                sealPIN: secret(Self.pin),
                machine: VaultFixture.here
            )
        }
        #expect(wrongCurrent?.code == .badInput)
        #expect(fixture.fileBytes == before)

        try vault.rekey(
            currentPassword: secret(password),
            newPassword: secret("a brand new password"),
            parameters: VaultFixture.weak,
            sealPIN: secret(Self.pin),
            machine: VaultFixture.here
        )
        let after = fixture.fileBytes
        #expect(before[23..<55] != after[23..<55])
        #expect(
            vaultError { _ = try UnlockedVault.open(paths: fixture.paths, password: secret(password)) }?.code
                == .cannotDecrypt)
        let reopened = try UnlockedVault.open(paths: fixture.paths, password: secret("a brand new password"))
        #expect(try reopened.value(named: "API_KEY") == secret("sk-live-0123456789abcdef"))
        let unsealed = try UnlockedVault.unseal(
            paths: fixture.paths, pin: secret(Self.pin), machine: VaultFixture.here)
        #expect(try unsealed.secrets().count == 1)
        let keys = try VaultSeal.open(path: fixture.paths.seal, pin: secret(Self.pin), machine: VaultFixture.here)
        #expect(keys.count == 1)
        // The vault still works for writes after the re-key.
        try vault.add("SECOND", value: secret("second value"), policy: .none)
        #expect(try reopened.secrets().count == 2)
    }
}
