import Foundation
import MoatCore
import MoatTestSupport
import Testing

@_spi(Testing) @testable import MoatVault

/// The copy the in-process fixtures use instead of a new vault each (``PreparedVault``).
@Suite(.lowestPriority) struct VaultCopyTests {
    @Test("a copy opens with the same password, starts with the same contents, and changes apart from its original")
    func copyIsIndependent() throws {
        let fixture = VaultFixture()
        let original = try fixture.create()
        try original.add("FIRST", value: secret("value one"), policy: .none)
        let target = TemporaryDirectory("moat-vault-copy")
        let copy = try original.copy(to: VaultPaths(stateDirectory: target.path))
        #expect(try copy.value(named: "FIRST") == secret("value one"))
        try copy.add("SECOND", value: secret("value two"), policy: .none)
        try original.remove("FIRST")
        #expect(try copy.value(named: "FIRST") == secret("value one"))
        #expect(try original.value(named: "SECOND") == nil)
        let reopened = try UnlockedVault.open(
            paths: VaultPaths(stateDirectory: target.path), password: secret("correct horse battery"))
        #expect(try reopened.secrets().map(\.name).sorted() == ["FIRST", "SECOND"])
        #expect(throws: VaultError.self) {
            try UnlockedVault.open(paths: VaultPaths(stateDirectory: target.path), password: secret("wrong password!"))
        }
    }

    @Test("a copy never replaces a vault that exists at its destination")
    func copyRefusesExisting() throws {
        let fixture = VaultFixture()
        let original = try fixture.create()
        let other = VaultFixture()
        _ = try other.create(password: "another vault's password")
        let before = other.fileBytes
        let error = vaultError { _ = try original.copy(to: other.paths) }
        #expect(error?.code == .alreadyExists)
        #expect(other.fileBytes == before)
    }

    @Test("each prepared copy is a vault of its own, empty, with the prepared password")
    func preparedCopies() throws {
        let first = TemporaryDirectory("moat-prepared")
        let second = TemporaryDirectory("moat-prepared")
        let one = try PreparedVault.copy(to: VaultPaths(stateDirectory: first.path))
        let two = try PreparedVault.copy(to: VaultPaths(stateDirectory: second.path))
        #expect(try one.secrets().isEmpty && two.secrets().isEmpty)
        try one.add("ONLY_ONE", value: secret("a value"), policy: .none)
        #expect(try two.value(named: "ONLY_ONE") == nil)
        let third = TemporaryDirectory("moat-prepared")
        #expect(try PreparedVault.copy(to: VaultPaths(stateDirectory: third.path)).secrets().isEmpty)
        _ = try UnlockedVault.open(
            paths: VaultPaths(stateDirectory: first.path), password: secret(PreparedVault.password))
    }
}
