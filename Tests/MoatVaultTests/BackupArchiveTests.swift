import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

/// The backup archive's format below the command: what authenticates, and what a payload that
/// authenticates may still not hold.
@Suite(.lowestPriority) struct BackupArchiveTests {
    static let passphrase = "a backup passphrase of mine"
    static let members = [
        BackupArchive.Member(name: "moat.db", bytes: Array("SQLite format 3\u{0}".utf8)),
        BackupArchive.Member(name: "vault.moat", bytes: [1, 2, 3]),
        BackupArchive.Member(name: "config.yaml", bytes: Array("port: 8080\n".utf8)),
    ]

    func secret(_ text: String) -> SecretBytes {
        var bytes = Array(text.utf8)
        return SecretBytes(wiping: &bytes)
    }

    @Test("an archive opens with its passphrase to exactly the members sealed, and its plaintext is not in the file")
    func roundTrip() throws {
        let file = try BackupArchive.seal(
            Self.members, passphrase: secret(Self.passphrase), parameters: VaultFixture.weak)
        #expect(Array(file[0..<8]) == Array("MOATBAK".utf8) + [0])
        #expect(try BackupArchive.open(file, passphrase: secret(Self.passphrase), path: "b") == Self.members)
        #expect(file.firstRange(of: Array("port: 8080".utf8)) == nil)
        let again = try BackupArchive.seal(
            Self.members, passphrase: secret(Self.passphrase), parameters: VaultFixture.weak)
        #expect(Array(again[23..<67]) != Array(file[23..<67]), "a new salt and nonce for every backup")
    }

    @Test("a header asking for key derivation below the vault's floor is refused before any key is derived")
    func downgradeRefused() throws {
        var file = try BackupArchive.seal(
            Self.members, passphrase: secret(Self.passphrase), parameters: VaultFixture.weak)
        file[11...14] = [0, 0, 0, 8]  // 8 KiB of Argon2 memory
        #expect(throws: VaultError.self) {
            try BackupArchive.open(file, passphrase: secret(Self.passphrase), path: "b")
        }
    }

    @Test(
        "an authenticated payload with an unknown member, a repeated one, a length past the end or trailing bytes is refused"
    )
    func damagedPayload() throws {
        func payload(_ parts: [[UInt8]]) -> [UInt8] { parts.flatMap { $0 } }
        func member(_ name: String, length: UInt64, _ bytes: [UInt8]) -> [UInt8] {
            [UInt8(name.utf8.count)] + Array(name.utf8)
                + (0..<8).reversed().map { UInt8((length >> (8 * UInt64($0))) & 0xff) }
                + bytes
        }
        let cases: [[UInt8]] = [
            payload([[1], member("../etc/passwd", length: 1, [0])]),
            payload([[2], member("moat.db", length: 1, [0]), member("moat.db", length: 1, [0])]),
            payload([[1], member("moat.db", length: 9, [0])]),
            payload([[1], member("moat.db", length: 1, [0]), [7]]),
            [],
        ]
        for plain in cases {
            #expect(throws: VaultError.self, "\(plain)") { try BackupArchive.decode(plain, path: "b") }
        }
        #expect(try BackupArchive.decode(payload([[1], member("moat.db", length: 1, [9])]), path: "b").count == 1)
    }
}
