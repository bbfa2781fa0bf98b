import Crypto
import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

/// The vault's generation: inside the authenticated payload, one higher with every write, never lower
/// for a process that has seen it; and a write is recorded before it replaces the file.
@Suite(.lowestPriority) struct GenerationTests {
    func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    @Test("a new vault is generation 1, every write adds one, and the revision's hash is the file's SHA-256")
    func grows() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create()
        #expect(vault.revision.generation == 1)
        #expect(vault.revision.sha256 == sha256(fixture.fileBytes))
        try vault.add("A", value: secret("value a"), policy: .none)
        try vault.add("A", value: secret("value b"), policy: .none, replace: true)
        try vault.remove("A")
        #expect(vault.revision.generation == 4)
        try vault.rekey(
            currentPassword: secret("correct horse battery"), newPassword: secret("the second password"),
            parameters: VaultFixture.weak)
        #expect(vault.revision.generation == 5)
        #expect(vault.revision.sha256 == sha256(fixture.fileBytes))
        let reopened = try UnlockedVault.open(paths: fixture.paths, password: secret("the second password"))
        #expect(reopened.revision == vault.revision)
    }

    @Test("each write is recorded with the revision it is about to write, before the file is replaced")
    func recordedBeforeWrite() throws {
        let fixture = VaultFixture()
        let before = RecorderBox<[UInt8]>([])
        let seen = RecorderBox<VaultRevision?>(nil)
        let vault = try fixture.create()
        before.value = fixture.fileBytes
        try vault.add("A", value: secret("value a"), policy: .none) { revision in
            // The vault on disk is still the old one while the change is recorded.
            #expect(fixture.fileBytes == before.value)
            seen.value = revision
        }
        #expect(seen.value == vault.revision)
        #expect(seen.value?.generation == 2)
        #expect(seen.value?.sha256 == sha256(fixture.fileBytes))
    }

    @Test("when recording fails, nothing is written: no new vault, no changed vault, no temporary file")
    func recordFailureChangesNothing() throws {
        struct Refused: Error {}
        let fixture = VaultFixture()
        let created = vaultError {
            _ = try UnlockedVault.create(
                paths: fixture.paths, password: secret("correct horse battery"), parameters: VaultFixture.weak
            ) { _ in throw Refused() }
        }
        #expect(created?.message.contains("could not be recorded, so it was not made") == true)
        #expect(!FileManager.default.fileExists(atPath: fixture.paths.vault))

        let vault = try fixture.create()
        let bytes = fixture.fileBytes
        #expect(
            vaultError { try vault.add("A", value: secret("value a"), policy: .none) { _ in throw Refused() } } != nil)
        #expect(vaultError { try vault.remove("A") { _ in throw Refused() } }?.code == .unknownSecret)
        #expect(
            vaultError {
                try vault.rekey(
                    currentPassword: secret("correct horse battery"), newPassword: secret("the second password"),
                    parameters: VaultFixture.weak
                ) { _ in throw Refused() }
            } != nil)
        #expect(fixture.fileBytes == bytes)
        #expect(try vault.secrets().isEmpty)
        #expect(vault.revision.generation == 1)
        let names = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).sorted()
        #expect(names == ["vault.lock", "vault.moat"])
    }

    @Test("a long-lived vault refuses to reload an older copy of vault.moat and keeps what it has")
    func refusesOlderCopy() throws {
        let fixture = VaultFixture()
        let server = try fixture.create()
        try server.add("REMOVED", value: secret("removed value"), policy: .none)
        let old = fixture.fileBytes
        try server.remove("REMOVED")
        try fixture.writeFile(old)
        let error = vaultError { try server.refreshIfChanged() }
        #expect(error?.code == .rolledBack)
        #expect(error?.message.contains("moat vault accept-rollback") == true)
        #expect(server.scrub("removed value") == "removed value")
        // Writes are refused too, so the old file is not built upon.
        #expect(vaultError { try server.add("B", value: secret("value b"), policy: .none) }?.code == .rolledBack)
        // The owner accepts the old copy (from a fresh unlock, as the CLI does): it is written again above
        // every generation seen, and the long-lived vault follows.
        let owner = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
        #expect(owner.revision.generation == 2)
        try owner.acceptRollback(above: 3) { _ in }
        #expect(owner.revision.generation == 4)
        #expect(try server.refreshIfChanged())
        #expect(try server.secrets().map(\.name) == ["REMOVED"])
    }

    @Test("a vault written before generations existed (payload version 1) opens as generation 0")
    func versionOnePayload() throws {
        let fixture = VaultFixture()
        let header = VaultHeader(
            parameters: VaultFixture.weak, salt: Array(repeating: 7, count: VaultHeader.saltLength))
        let key = try Argon2id.deriveKey(
            password: secret("correct horse battery"), salt: header.salt, parameters: header.parameters)
        let entry = SecretEntry(
            name: "OLD", value: secret("old value"), createdAt: Date(timeIntervalSince1970: 0),
            updatedAt: Date(timeIntervalSince1970: 0), policy: .none)
        var bytes = VaultPayload.encode([entry], generation: 0).withUnsafeBytes { Array($0) }
        bytes.removeSubrange(1..<9)
        bytes[0] = 1
        try fixture.writeFile(try VaultCipher.seal(payload: SecretBytes(wiping: &bytes), header: header, key: key))
        let vault = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
        #expect(vault.revision.generation == 0)
        #expect(try vault.secrets().map(\.name) == ["OLD"])
        try vault.add("NEW", value: secret("new value"), policy: .none)
        #expect(vault.revision.generation == 1)
    }
}

/// A mutable cell for values a recorder closure sets.
final class RecorderBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
