import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

/// A child process changes the vault in a loop and is killed with SIGKILL at a random moment, many
/// times: afterwards the vault must always open, with the old or the new password.
@Suite(.serialized) struct CrashSafetyTests {
    static var helperPath: String {
        URL(fileURLWithPath: MoatBinary.path).deletingLastPathComponent().appendingPathComponent(
            "moat-vault-crash-helper"
        ).path
    }

    /// Starts the helper, waits until it has opened the vault, lets it run for a random time, kills it.
    func runAndKill(_ arguments: [String], maximumMilliseconds: UInt32) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.helperPath)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("ready") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen.append(chunk)
        }
        #expect(String(decoding: seen, as: UTF8.self).contains("ready"), "helper did not start")
        usleep(UInt32.random(in: 0...maximumMilliseconds) * 1000)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationReason == .uncaughtSignal, "the helper stopped by itself: \(stderr)")
    }

    @Test("killed at random points of a write, the vault always opens and holds the old or the new value")
    func killDuringWrites() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create()
        try vault.add("VALUE", value: secret("value-0-initial"), policy: .none)
        let passwordFile = try fixture.directory.write("password", "correct horse battery\n")
        var values: Set<String> = []
        for _ in 0..<25 {
            try runAndKill(["write", fixture.paths.directory, passwordFile], maximumMilliseconds: 150)
            let reopened = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
            let value = try #require(try reopened.value(named: "VALUE"))
            let text = value.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            #expect(text.hasPrefix("value-"))
            values.insert(text)
        }
        #expect(values.count > 1, "the helper never completed a write")
    }

    @Test(
        "killed at random points of a re-key of a sealed vault, it opens with the old or new password and by the seal")
    func killDuringRekey() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create(password: "password number one")
        try vault.add("KEEP", value: secret("kept across re-keys"), policy: .none)
        // The helper re-seals with this machine's fingerprint and no host key: the same binding here.
        let machine = SealMachine(fingerprint: .current(), hostKey: nil)
        try vault.seal(password: secret("password number one"), pin: nil, machine: machine)
        let first = try fixture.directory.write("a", "password number one\n")
        let second = try fixture.directory.write("b", "password number two\n")
        var opened: [String: Int] = [:]
        for _ in 0..<15 {
            try runAndKill(["rekey", fixture.paths.directory, first, second], maximumMilliseconds: 600)
            var reopened: UnlockedVault?
            for (name, password) in [("one", "password number one"), ("two", "password number two")] {
                if let vault = try? UnlockedVault.open(paths: fixture.paths, password: secret(password)) {
                    reopened = vault
                    opened[name, default: 0] += 1
                }
            }
            let vault = try #require(reopened, "the vault opened with neither password")
            #expect(try vault.value(named: "KEEP") == secret("kept across re-keys"))
            let unsealed = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: machine)
            #expect(try unsealed.secrets().map(\.name) == ["KEEP"])
        }
        #expect(opened.count == 2, "the helper never completed a re-key: \(opened)")
    }
}
