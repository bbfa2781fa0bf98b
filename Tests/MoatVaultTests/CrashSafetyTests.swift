import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

/// A child process changes the vault in a loop and is killed with SIGKILL at a random moment, many
/// times: afterwards the vault must always open, with the old or the new password.
@Suite(.serialized, .tags(.slow)) struct CrashSafetyTests {
    static var helperPath: String {
        URL(fileURLWithPath: MoatBinary.path).deletingLastPathComponent().appendingPathComponent(
            "moat-vault-crash-helper"
        ).path
    }

    /// What the helper printed before it was killed.
    struct Run {
        /// The word after "ready" (the write loop's run label; empty for the re-key loop).
        var label = ""
        /// The number after each "done": the changes it completed, in order.
        var done: [Int] = []
    }

    /// Starts the helper, waits until it has opened the vault and acknowledged `changes` completed
    /// changes (its "done" lines: an event, not a guessed time, so a loaded machine only makes the wait
    /// longer), lets it run a random while longer, kills it with SIGKILL, and returns what it printed.
    func runAndKill(_ arguments: [String], afterChanges changes: Int, maximumMilliseconds: UInt32) async throws -> Run {
        let helper = try WatchedProcess(Self.helperPath, arguments)
        let progressed = await helper.waitForLines { lines in
            lines.first?.hasPrefix("ready") == true && lines.count > changes
        }
        if progressed { try await Task.sleep(for: .milliseconds(UInt32.random(in: 0...maximumMilliseconds))) }
        let (lines, stderr) = await helper.kill()
        #expect(progressed, "the helper did not start and complete \(changes) changes: \(lines) \(stderr)")
        #expect(helper.process.terminatedBySignal, "the helper stopped by itself: \(stderr)")
        return Run(
            label: lines.first.map { String($0.dropFirst("ready".count)).trimmingCharacters(in: .whitespaces) } ?? "",
            done: lines.dropFirst().compactMap { Int($0.dropFirst("done ".count)) })
    }

    @Test(
        "killed at random points of a write, the vault always opens and holds the last acknowledged value or the next")
    func killDuringWrites() async throws {
        let fixture = VaultFixture()
        let vault = try fixture.create()
        try vault.add("VALUE", value: secret("value-0-initial"), policy: .none)
        let passwordFile = try fixture.directory.write("password", "correct horse battery\n")
        var previous = "value-0-initial"
        var values: Set<String> = [previous]
        for round in 0..<25 {
            // A third of the rounds are killed before their first write completes, the others after one or two.
            let run = try await runAndKill(
                ["write", fixture.paths.directory, passwordFile], afterChanges: round % 3, maximumMilliseconds: 150)
            // Argon2 with the real parameters: on a thread of its own, not a cooperative one.
            let read = try await atLowestPriority {
                let reopened = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
                return try reopened.value(named: "VALUE")?.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            }
            let text = try #require(read)
            // Every acknowledged write survives the kill; at most the one in flight got in after it.
            let last = run.done.last ?? 0
            let expected = [last == 0 ? previous : "value-\(run.label)-\(last)", "value-\(run.label)-\(last + 1)"]
            #expect(expected.contains(text), "round \(round): acknowledged \(run.done), found \(text)")
            previous = text
            values.insert(text)
        }
        // Rounds that waited for a write saw a new value, so this holds whatever the machine's load.
        #expect(values.count > 1, "the helper never completed a write")
    }

    @Test(
        "killed at random points of a re-key of a sealed vault, it opens with the old or new password and by the seal")
    func killDuringRekey() async throws {
        let fixture = VaultFixture()
        let passwords = ["password number one", "password number two", "password number three"]
        let vault = try fixture.create(password: passwords[0])
        try vault.add("KEEP", value: secret("kept across re-keys"), policy: .none)
        // The helper re-seals with this machine's fingerprint and no host key: the same binding here.
        let machine = SealMachine(fingerprint: .current(), hostKey: nil)
        try vault.seal(password: secret(passwords[0]), pin: nil, machine: machine)
        let files = try passwords.enumerated().map { try fixture.directory.write("password-\($0)", $1 + "\n") }
        // Three passwords in a cycle: "the old or the new one" rules the third out, so the check has teeth.
        var current = 0
        var opened: Set<Int> = [current]
        for round in 0..<15 {
            let run = try await runAndKill(
                ["rekey", fixture.paths.directory] + files, afterChanges: round % 3, maximumMilliseconds: 600)
            let from = run.done.last ?? current
            // The password of the last acknowledged re-key, or the one after it (the re-key in flight).
            let candidates = [from, (from + 1) % passwords.count]
            // Argon2 with the real parameters: on a thread of its own, not a cooperative one.
            let (found, kept, sealedNames) = try await atLowestPriority {
                let found = candidates.lazy.compactMap { index in
                    (try? UnlockedVault.open(paths: fixture.paths, password: secret(passwords[index]))).map {
                        (index, $0)
                    }
                }.first
                let kept = try found?.1.value(named: "KEEP") == secret("kept across re-keys")
                let unsealed = try UnlockedVault.unseal(paths: fixture.paths, pin: nil, machine: machine)
                return (found?.0, kept, try unsealed.secrets().map(\.name))
            }
            let index = try #require(
                found, "round \(round): acknowledged \(run.done) from \(current); opens with neither of \(candidates)")
            #expect(kept)
            #expect(sealedNames == ["KEEP"])
            current = index
            opened.insert(index)
        }
        // Rounds that waited for a re-key moved to another password, so this holds whatever the load.
        #expect(opened.count >= 2, "the helper never completed a re-key: \(opened)")
    }
}
