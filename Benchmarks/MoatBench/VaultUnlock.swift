import Foundation
import MoatCore
import MoatVault

/// How long unlocking a vault with the default Argon2id parameters (m = 64 MiB, t = 3, p = 4) takes, in
/// milliseconds: with the master password (`moat vault` commands) and from a seal without a PIN
/// (`moat serve`'s unattended start: the seal's own Argon2id, m = 8 MiB, t = 1, systemd-creds when
/// installed, then the vault's key).
struct VaultFigures {
    var password: Double
    var seal: Double
    var runs: Int
}

func vaultBenchmark(work: String, runs: Int) throws -> VaultFigures {
    try FileManager.default.createDirectory(
        atPath: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let paths = VaultPaths(stateDirectory: work)
    let passphrase = "benchmark vault password"
    func password() -> SecretBytes {
        var bytes = Array(passphrase.utf8)
        return SecretBytes(wiping: &bytes)
    }
    // The seal is bound to a host key file of the benchmark's own, never this machine's real one.
    let machine = SealMachine(
        fingerprint: .current(),
        hostKey: SystemdCredentials.installed().map {
            SystemdCredentials(tool: $0.tool, hostKeyFile: work + "/host-key.secret", useTPM: false)
        })
    let vault = try UnlockedVault.create(paths: paths, password: password(), parameters: .recommended)
    try vault.seal(password: password(), pin: nil, machine: machine)
    let clock = ContinuousClock()
    var byPassword: [Double] = []
    var bySeal: [Double] = []
    for _ in 0..<runs {
        let secret = password()
        byPassword.append(
            seconds(try clock.measure { _ = try UnlockedVault.open(paths: paths, password: secret) }) * 1000)
        bySeal.append(
            seconds(try clock.measure { _ = try UnlockedVault.unseal(paths: paths, pin: nil, machine: machine) }) * 1000
        )
    }
    let figures = VaultFigures(password: median(byPassword), seal: median(bySeal), runs: runs)
    print(
        String(
            format: "vault: unlock with the password %.0f ms, from the seal%@ %.0f ms (median of %d)",
            figures.password, machine.hostKey == nil ? "" : " (systemd-creds)", figures.seal, runs))
    return figures
}
