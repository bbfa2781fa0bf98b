// moat-vault-crash-helper: changes a vault in a loop until it is killed, so the crash-safety tests can
// SIGKILL it at random points of a write or a re-key. Not installed; built because MoatVaultTests
// depends on it. Passwords come from files, as the real CLI takes them.
//
//   moat-vault-crash-helper write STATE_DIR PASSWORD_FILE
//       opens the vault, prints "ready RUN" (RUN: a fresh UUID), then replaces the secret VALUE with
//       "value-RUN-N" for N = 1, 2, ... forever, printing "done N" after each write returned
//   moat-vault-crash-helper rekey STATE_DIR PASSWORD_FILE PASSWORD_FILE...
//       opens the vault with whichever password works, prints "ready", then re-keys to the next password
//       of the list (after the last, the first) forever, printing "done I" (I: the index of the password
//       now in force) after each re-key returned
//       (m = 19 MiB, t = 2: the weakest parameters the vault accepts, to keep the test fast)
//
// Each line is one write(2) of a few bytes to a pipe: the test never reads half a line, and a "done"
// it reads was printed only after the change was complete.

import Foundation
import MoatCore
import MoatVault

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(1)
}

func password(_ path: String) -> SecretBytes {
    do {
        return try SecretInput.password(from: .file(path), confirm: false)
    } catch {
        fail("\(error)")
    }
}

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

let arguments = CommandLine.arguments
guard arguments.count >= 4 else { fail("usage: moat-vault-crash-helper write|rekey STATE_DIR PASSWORD_FILE...") }
let paths = VaultPaths(stateDirectory: arguments[2])
do {
    switch arguments[1] {
    case "write":
        let vault = try UnlockedVault.open(paths: paths, password: password(arguments[3]))
        let run = UUID().uuidString
        say("ready \(run)")
        var counter = 0
        while true {
            counter += 1
            var text = Array("value-\(run)-\(counter)".utf8)
            try vault.add("VALUE", value: SecretBytes(wiping: &text), policy: .none, replace: true)
            say("done \(counter)")
        }
    case "rekey":
        guard arguments.count >= 5 else { fail("rekey needs two or more password files") }
        let passwords = arguments[3...].map(password)
        var opened: (vault: UnlockedVault, index: Int)?
        for (index, candidate) in passwords.enumerated() where opened == nil {
            if let vault = try? UnlockedVault.open(paths: paths, password: candidate) { opened = (vault, index) }
        }
        guard let opened else { fail("the vault opened with none of the passwords") }
        let vault = opened.vault
        var current = opened.index
        say("ready")
        let weakest = try Argon2Parameters(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1)
        while true {
            let next = (current + 1) % passwords.count
            try vault.rekey(
                currentPassword: passwords[current],
                newPassword: passwords[next],
                parameters: weakest,
                machine: SealMachine(fingerprint: .current(), hostKey: nil)
            )
            current = next
            say("done \(current)")
        }
    default:
        fail("unknown mode \(arguments[1])")
    }
} catch {
    fail("\(error)")
}
