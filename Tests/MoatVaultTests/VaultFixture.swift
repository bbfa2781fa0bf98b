import Foundation
import MoatCore
import MoatTestSupport

@testable import MoatVault

/// A vault in a private temporary directory, with the weakest parameters the vault accepts so that
/// each key derivation takes tens of milliseconds, not hundreds.
struct VaultFixture {
    let directory = TemporaryDirectory("moat-vault")
    var paths: VaultPaths { VaultPaths(stateDirectory: directory.path) }

    static let weak = try! Argon2Parameters(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1)
    static let fingerprint = MachineFingerprint(
        hostname: "workstation",
        operatingSystem: "Linux",
        architecture: "x86_64",
        machineID: "0123456789abcdef0123456789abcdef"
    )
    /// A machine with no secret Moat can use: the seal is bound to `fingerprint` alone.
    static let here = SealMachine(fingerprint: fingerprint, hostKey: nil)

    /// The same machine with systemd-creds and a host key file of this fixture's own (never the
    /// machine's real one); nil where systemd-creds is not installed.
    var withHostKey: SealMachine? {
        SystemdCredentials.installed().map { installed in
            SealMachine(
                fingerprint: Self.fingerprint,
                hostKey: SystemdCredentials(tool: installed.tool, hostKeyFile: directory.path + "/host-key.secret")
            )
        }
    }

    func create(password: String = "correct horse battery") throws -> UnlockedVault {
        try UnlockedVault.create(paths: paths, password: secret(password), parameters: Self.weak)
    }

    var fileBytes: [UInt8] {
        (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: paths.vault)))) ?? []
    }

    func writeFile(_ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: paths.vault))
    }
}

/// Secret bytes from a string literal, for tests.
func secret(_ text: String) -> SecretBytes {
    var bytes = Array(text.utf8)
    return SecretBytes(wiping: &bytes)
}

/// Runs `body`, expecting a `VaultError`, and returns it (nil when nothing was thrown).
func vaultError(_ body: () throws -> Void) -> VaultError? {
    do {
        try body()
        return nil
    } catch let error as VaultError {
        return error
    } catch {
        return VaultError(.io, "unexpected error type: \(error)")
    }
}
