// moat-vault-crash-helper: changes a vault in a loop until it is killed, so the crash-safety tests can
// SIGKILL it at random points of a write or a re-key. Not installed; built because MoatVaultTests
// depends on it. Passwords come from files, as the real CLI takes them.
//
//   moat-vault-crash-helper write STATE_DIR PASSWORD_FILE
//       opens the vault, prints "ready", then replaces the secret VALUE with a new random value forever
//   moat-vault-crash-helper rekey STATE_DIR PASSWORD_A_FILE PASSWORD_B_FILE
//       opens the vault with A or B, prints "ready", then re-keys A -> B -> A ... forever
//       (m = 19 MiB, t = 2: the weakest parameters the vault accepts, to keep the test fast)

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

func ready() {
    FileHandle.standardOutput.write(Data("ready\n".utf8))
}

let arguments = CommandLine.arguments
guard arguments.count >= 4 else { fail("usage: moat-vault-crash-helper write|rekey STATE_DIR PASSWORD_FILE...") }
let paths = VaultPaths(stateDirectory: arguments[2])
do {
    switch arguments[1] {
    case "write":
        let vault = try UnlockedVault.open(paths: paths, password: password(arguments[3]))
        ready()
        var counter = 0
        while true {
            counter += 1
            var text = Array("value-\(counter)-\(UUID().uuidString)".utf8)
            try vault.add("VALUE", value: SecretBytes(wiping: &text), policy: .none, replace: true)
        }
    case "rekey":
        guard arguments.count >= 5 else { fail("rekey needs two password files") }
        var current = password(arguments[3])
        var next = password(arguments[4])
        let vault: UnlockedVault
        do {
            vault = try UnlockedVault.open(paths: paths, password: current)
        } catch {
            swap(&current, &next)
            vault = try UnlockedVault.open(paths: paths, password: current)
        }
        ready()
        let weakest = try Argon2Parameters(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1)
        while true {
            try vault.rekey(
                currentPassword: current,
                newPassword: next,
                parameters: weakest,
                machine: SealMachine(fingerprint: .current(), hostKey: nil)
            )
            swap(&current, &next)
        }
    default:
        fail("unknown mode \(arguments[1])")
    }
} catch {
    fail("\(error)")
}
