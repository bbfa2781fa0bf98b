import Crypto
import Foundation
import MoatAdmin
import MoatApp
import MoatAudit
import MoatAuth
import MoatChannels
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatPolicy
import MoatStore
import MoatTestSupport
import Testing

/// The admin operations' dispatch and input checks, on a real `moat.db`.
@Suite struct PolicyOperationsTests {
    /// The operations over a fresh installation; keep the fixture alive as long as they are used.
    static func operations() throws -> (AdminOperations, OwnerHTTPFixture) {
        let fixture = try OwnerHTTPFixture()
        let engine = PolicyEngine(
            database: fixture.database, authenticator: RowAuthenticator(key: SymmetricKey(size: .bits256)),
            audit: fixture.audit)
        let operations = AdminOperations(
            owner: OwnerOperations(authority: fixture.authority, baseURL: { nil }),
            policy: PolicyOperations(engine: engine))
        return (operations, fixture)
    }

    /// Runs `body` with a real admin socket over `operations` (the server's decoding and dispatch).
    static func withSocket<T: Sendable>(
        _ operations: AdminOperations, _ body: @escaping @Sendable (String) throws -> T
    ) async throws -> T {
        let directory = TemporaryDirectory("moat-admin")
        defer { withExtendedLifetime(directory) {} }
        let path = directory.file("moat.sock")
        let server = AdminSocketServer(
            path: path,
            handler: { operation, _ in await operations.respond(to: operation, client: .local("test")) },
            onRefused: { _ in }, logger: AdminSocketTests.quiet)
        return try await AdminSocketTests.withRunningServer(server, at: path) {
            try await offCooperativePool { try body(path) }
        }
    }

    static func responses(_ lines: [String], at path: String) throws -> [AdminResponse] {
        try lines.map {
            let reply = try RawUnixClient.exchange(path, Array($0.utf8) + [10])
            return try JSONDecoder().decode(AdminResponse.self, from: Data(reply.utf8))
        }
    }

    @Test("an unknown operation or a parameter of the wrong type is a usage error (64) that changes nothing")
    func usageErrors() async throws {
        let (operations, fixture) = try Self.operations()
        defer { withExtendedLifetime(fixture) {} }
        let lines = [
            #"{"op": "vault.dump"}"#, #"{"op": "trust.explode"}"#,
            #"{"op": "trust.set", "params": {"domain": "web", "level": 9, "reason": "r"}}"#,
            #"{"op": "trust.set", "params": {"domain": "web", "level": "2", "reason": "r"}}"#,
            #"{"op": "trust.set", "params": {"domain": "moon", "level": 2, "reason": "r"}}"#,
            #"{"op": "trust.set", "params": {"domain": "web", "level": 2}}"#,
            #"{"op": "trust.rollback", "params": {"id": "x"}}"#,
            #"{"op": "token.create", "params": {"name": "ci", "scope": "root", "expiry": {"standard": {}}}}"#,
            #"{"op": "token.create", "params": {"name": "ci", "scope": "read", "expiry": {"seconds": {"_0": 1}}}}"#,
            #"{"op": "owner.revoke-all", "params": "everything"}"#,
        ]
        let responses = try await Self.withSocket(operations) { path in try Self.responses(lines, at: path) }
        for (line, response) in zip(lines, responses) {
            #expect(response.status == 64, "\(line)")
            #expect(response.result == nil)
            #expect(response.error?.hasPrefix("moat: ") == true, "\(line)")
        }
        #expect(responses[0].error?.contains("unknown admin operation vault.dump") == true)
        #expect(responses[0].error?.contains("may be different versions") == true)
        #expect(responses[2].error?.contains("trust.set: parameter level must be a level from 0 to 4") == true)
        #expect(responses[4].error?.contains("parameter domain must be one of: messaging") == true)
        #expect(responses[5].error?.contains("parameter reason must be given") == true)
        #expect(responses[6].error?.contains("parameter id must be a number") == true)
        #expect(responses[7].error?.contains("parameter scope must be read, write or admin") == true)
        // Nothing changed: every domain still at its default, no change recorded, no token made.
        guard case .trust(let trust) = try await operations.perform(.trustShow, client: .local("test")) else {
            Issue.record("trust.show answered something else")
            return
        }
        #expect(trust.allSatisfy { $0.lastChange == nil && !$0.tampered })
        #expect(trust.first { $0.domain == .web }?.level == .inform)
        #expect(try await operations.perform(.trustHistory(domain: nil), client: .local("test")) == .trustHistory([]))
        #expect(try await operations.perform(.tokenList, client: .local("test")) == .tokens([]))
    }

    @Test("a password or code parameter is never echoed: not in an error, not in a description")
    func secretsNeverEchoed() async throws {
        let (operations, fixture) = try Self.operations()
        defer { withExtendedLifetime(fixture) {} }
        let password = "Sw0rdfish-never-echo"
        let lines = [
            #"{"op": "owner.setup", "params": {"password": "\#(password)", "username": 5}}"#,
            #"{"op": "owner.setup", "params": {"password": "\#(password)", "reset": "\#(password)"}}"#,
            #"{"op": "owner.password", "params": {"password": ["\#(password)"]}}"#,
            #"{"op": "owner.totp-confirm", "params": {"code": "\#(password)"}}"#,
            #"{"op": "owner.password", "params": {"password": "\#(password)"}}"#,
            #"{"op": "owner.setup", "params": {"password": "xQz9k"}}"#,
        ]
        let responses = try await Self.withSocket(operations) { path in try Self.responses(lines, at: path) }
        #expect(responses.map(\.status).prefix(3) == [64, 64, 64])
        for (line, response) in zip(lines, responses) {
            #expect(response.status != 0, "\(line)")
            let error = try #require(response.error)
            #expect(!error.contains(password) && !error.contains("xQz9k"), "\(error)")
        }
        var bytes = Array(password.utf8)
        let secret = SecretBytes(wiping: &bytes)
        for operation in [AdminOperation.ownerPassword(secret), .ownerTOTPConfirm(code: secret)] {
            #expect(!String(describing: operation).contains(password))
            #expect(!String(reflecting: operation).contains(password))
        }
    }

    @Test("owner and policy operations are dispatched from the one table and answer typed results")
    func routing() async throws {
        let (operations, fixture) = try Self.operations()
        defer { withExtendedLifetime(fixture) {} }
        let client = ClientInfo.local("test")
        #expect(try await operations.perform(.ownerStatus, client: client) == .ownerStatus(nil))
        let set = try await operations.perform(
            .trustSet(domain: .web, level: .suggest, reason: "test", force: false), client: client)
        guard case .trustChanged(let change) = set else {
            Issue.record("trust.set answered something else")
            return
        }
        #expect(change.domain == .web && change.from == .inform && change.to == .suggest && change.kind == "set")
        // Bad input exits 64 (usage), as for every other command (one error → exit-code mapping).
        let empty = await #expect(throws: AdminFailure.self) {
            try await operations.perform(
                .trustSet(domain: .web, level: .none, reason: " ", force: false), client: client)
        }
        #expect(empty?.status == 64 && empty?.message.contains("reason") == true)
        let names = Set(AdminOperation.Name.allCases.map(\.rawValue))
        #expect(names.count == AdminOperation.Name.allCases.count)
        #expect(names.contains("owner.setup-link") && names.contains("approvals.deny"))
    }

    @Test(
        "pairing and channel operations: a binding code to show, listed pending; bad codes refused as usage or not found"
    )
    func channelOperations() async throws {
        let fixture = try OwnerHTTPFixture()
        let engine = PolicyEngine(
            database: fixture.database, authenticator: RowAuthenticator(key: SymmetricKey(size: .bits256)),
            audit: fixture.audit)
        let desk = PairingDesk(
            database: fixture.database, authenticator: RowAuthenticator(key: SymmetricKey(size: .bits256)),
            audit: fixture.audit, policy: engine)
        let operations = AdminOperations(
            owner: OwnerOperations(authority: fixture.authority, baseURL: { nil }),
            policy: PolicyOperations(engine: engine), channels: ChannelOperations(desk: desk, engine: engine))
        let client = ClientInfo.local("test")
        guard
            case .bindingCode(let code) = try await operations.perform(
                .channelBind(channel: "telegram"), client: client)
        else {
            Issue.record("channel.bind answered something else")
            return
        }
        #expect(PairingCode.normalize(code.code) != nil && code.channel == "telegram" && code.purpose == "bind")
        #expect(try await operations.perform(.pairingList, client: client) == .pairings([code]))
        var bytes = Array("ZZZZ-ZZZZ".utf8)
        let wrong = await #expect(throws: AdminFailure.self) {
            try await operations.perform(
                .pairingApprove(code: SecretBytes(wiping: &bytes), ceilings: [:]), client: client)
        }
        #expect(wrong?.kind == .notFound && wrong?.message.contains("ZZZZ") == false)
        var short = Array("abc".utf8)
        let malformed = await #expect(throws: AdminFailure.self) {
            try await operations.perform(.pairingDeny(code: SecretBytes(wiping: &short)), client: client)
        }
        #expect(malformed?.status == 64)
        await #expect(throws: AdminFailure.self) {
            try await operations.perform(.channelBind(channel: "webhook:sms"), client: client)
        }
        #expect(try await operations.perform(.channelList, client: client) == .ownerBindings([]))
        let unbind = await #expect(throws: AdminFailure.self) {
            try await operations.perform(.channelUnbind(channel: "telegram"), client: client)
        }
        #expect(unbind?.kind == .notFound)
    }

    @Test("every operation survives the wire: encoded by the client, decoded by the server, to the same name")
    func wireRoundTrip() async throws {
        var bytes = Array("a password".utf8)
        let secret = SecretBytes(wiping: &bytes)
        let operations: [AdminOperation] = [
            .ownerStatus, .ownerSetup(username: "me", password: secret, reset: true), .ownerSetupLink,
            .ownerPassword(secret), .ownerRevokeAll(tokens: true), .ownerTOTPBegin, .ownerTOTPConfirm(code: secret),
            .tokenCreate(name: "ci", scope: .write, expiry: .never), .tokenList, .tokenRevoke(prefix: "abcd1234"),
            .trustShow, .trustSet(domain: .files, level: .actAndReport, reason: "r", force: true),
            .trustHistory(domain: nil), .trustRollback(id: 3, reason: nil, force: false), .approvalsList(all: true),
            .approvalsShow(id: "a"), .approvalsApprove(id: "a"), .approvalsDeny(id: "a", reason: "no"),
            .vaultAdd(name: "A_B", value: secret, tools: ["http"], hosts: ["example.com"], replace: true),
            .vaultRemove(name: "A_B"), .vaultList, .vaultRekey(current: nil, new: secret, pin: secret),
            .usage(days: 30),
            .contactAdd(channel: "telegram", sender: "42", ceilings: [.web: .inform]), .contactList,
            .contactRemove(id: "c1"), .chat(message: "hello", conversation: nil),
            .chatStream(message: "hello", conversation: "c"), .pairingList,
            .pairingApprove(code: secret, ceilings: [.web: .suggest]), .pairingDeny(code: secret),
            .channelBind(channel: "telegram"), .channelUnbind(channel: "telegram"), .channelList,
        ]
        #expect(Set(operations.map(\.name)) == Set(AdminOperation.Name.allCases))
        for operation in operations {
            let decoded = try JSONDecoder().decode(AdminOperation.self, from: JSONEncoder().encode(operation))
            #expect(decoded.name == operation.name)
        }
        let setup = try JSONDecoder().decode(
            AdminOperation.self,
            from: JSONEncoder().encode(AdminOperation.ownerSetup(username: nil, password: secret, reset: false)))
        guard case .ownerSetup(nil, let password, false) = setup else {
            Issue.record("owner.setup did not round-trip")
            return
        }
        #expect(password == secret)
        // A re-key's three secrets keep their places; an absent current password stays absent.
        var newBytes = Array("a new password".utf8)
        let new = SecretBytes(wiping: &newBytes)
        for current in [nil, secret] {
            let rekey = try JSONDecoder().decode(
                AdminOperation.self,
                from: JSONEncoder().encode(AdminOperation.vaultRekey(current: current, new: new, pin: nil)))
            guard case .vaultRekey(let readCurrent, let readNew, nil) = rekey else {
                Issue.record("vault.rekey did not round-trip")
                return
            }
            #expect(readCurrent == current && readNew == new)
        }
        let missing = #expect(throws: AdminRequestError.self) {
            try JSONDecoder().decode(AdminOperation.self, from: Data(#"{"op":"vault.rekey","params":{}}"#.utf8))
        }
        #expect(missing?.message == "the admin operation vault.rekey: parameter new_password must be given")
    }
}
