import Crypto
import MoatStore
import Testing

@testable import MoatAuth

/// The MAC of each owner-authentication record under a known key, pinned: every row already in a
/// `moat.db` carries a MAC over exactly these fields in this order, so a change here would lock the owner
/// out (the owner row fails closed) and void every session and token. The expected values were computed
/// independently of this code, from the released field lists.
@Suite struct RowMACTests {
    let rows = RowAuthenticator(key: SymmetricKey(data: (0..<32).map { UInt8($0) }))
    static let created: Int64 = 1_765_000_000_000

    @Test("the owner row's MAC is that of the released row")
    func owner() {
        var owner = OwnerRecord(
            username: "owner", passwordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", now: Self.created)
        owner.totpEnabled = true
        owner.totpLastStep = 58_833_333
        owner.tokenVersion = 3
        owner.updatedAt = 1_765_000_001_000
        #expect(rows.mac(owner) == "cde0cccbfe5fd5f5cdc42dca694be47d6c893fbdbb60da47a9544d7531932978")
    }

    @Test("an API token's MAC leaves out its last use and is that of the released row")
    func apiToken() {
        var token = APITokenRecord(
            prefix: "WH2fWLCc", name: "fixture", scope: .read, tokenHash: String(repeating: "ef", count: 32),
            createdAt: Self.created, expiresAt: nil)
        token.revokedAt = 1_765_000_002_000
        let mac = rows.mac(token)
        #expect(mac == "46423e65fa08315e6b6479537e66accfdb8bff600b67f7572a85586a3d6b4190")
        token.lastUsedAt = 1_765_000_003_000
        #expect(rows.verify(mac, of: token))
    }

    @Test("session, setup-token and recovery-code MACs are those of the released rows")
    func sessionSetupRecovery() {
        let session = SessionRow(idHash: String(repeating: "01", count: 32), tokenVersion: 3, createdAt: Self.created)
        #expect(rows.mac(session) == "9aa4d1340890f658d3ae3eefc11c756e8b9bb6463c53c848fb5e7ee6380ac279")
        let setup = SetupTokenRow(
            tokenHash: String(repeating: "23", count: 32), createdAt: Self.created, expiresAt: 1_765_000_900_000)
        #expect(rows.mac(setup) == "04d333d26e4fb30f0d9caaf06f5c18dd0b8da682d38c8a377655d88ade0eafdb")
        let recovery = RecoveryCodeRow(codeHash: String(repeating: "45", count: 32), createdAt: Self.created)
        #expect(rows.mac(recovery) == "0d7090f076441f9d468155ee0e59ee0f7b652724410429112d0e4caed772e286")
    }
}
