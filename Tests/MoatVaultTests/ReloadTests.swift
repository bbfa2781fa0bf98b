import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

@Suite(.lowestPriority) struct ReloadTests {
    @Test("a long-lived vault object sees changes another process made, and writers never lose changes")
    func followsOtherWriters() throws {
        let fixture = VaultFixture()
        let server = try fixture.create()
        let cli = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
        #expect(try server.refreshIfChanged() == false)
        try cli.add("FROM_CLI", value: secret("cli value 1"), policy: .none)
        #expect(try server.refreshIfChanged() == true)
        #expect(try server.secrets().map(\.name) == ["FROM_CLI"])
        // The server writes starting from the latest file, so the CLI's entry survives.
        try server.add("FROM_SERVER", value: secret("server value"), policy: .none)
        try cli.remove("FROM_CLI")
        #expect(try server.secrets().map(\.name) == ["FROM_SERVER"])
        #expect(try cli.secrets().map(\.name) == ["FROM_SERVER"])
    }

    @Test(
        "after a re-key elsewhere, an unsealed vault follows through the seal; a password-opened one says to unlock again"
    )
    func followsRekey() throws {
        let fixture = VaultFixture()
        let creator = try fixture.create()
        try creator.add("KEEP", value: secret("kept value"), policy: .none)
        try creator.seal(password: secret("correct horse battery"), pin: nil, machine: VaultFixture.here)
        let server = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: VaultFixture.here)
        let byPassword = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
        try creator.rekey(
            currentPassword: secret("correct horse battery"),
            newPassword: secret("the second password"),
            parameters: VaultFixture.weak,
            machine: VaultFixture.here
        )
        try creator.add("AFTER", value: secret("after rekey"), policy: .none)
        #expect(try server.secrets().map(\.name) == ["AFTER", "KEEP"])
        try server.add("SERVER", value: secret("server side"), policy: .none)
        let error = vaultError { _ = try byPassword.secrets() }
        #expect(error?.code == .changedElsewhere)
        // The values already in memory still scrub.
        #expect(byPassword.scrub("kept value") == "[secret:KEEP]")
    }

    @Test("a scrubber taken after another process added a value scrubs it; one taken before keeps its moment")
    func scrubberFollowsOtherWriters() throws {
        let fixture = VaultFixture()
        let server = try fixture.create()
        let cli = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
        let before = server.scrubber()
        try cli.add("FROM_CLI", value: secret("cli value 1"), policy: .none)
        #expect(before("the value cli value 1") == "the value cli value 1")
        let after = server.scrubber()
        #expect(after("the value cli value 1") == "the value [secret:FROM_CLI]")
        #expect(after("the value cli value 1") == server.scrub("the value cli value 1"))
    }

    @Test("no temporary files are left behind, and the lock file is private")
    func tidy() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create()
        for index in 0..<5 { try vault.add("N\(index)", value: secret("value \(index)"), policy: .none) }
        let names = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).sorted()
        #expect(names == ["vault.lock", "vault.moat"])
        #expect(FileModes(fixture.paths.lock).mode == 0o600)
    }
}
