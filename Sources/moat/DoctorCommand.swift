import ArgumentParser
import Foundation
import MoatAdmin
import MoatApp
import MoatConfig
import MoatCore
import MoatHTTP

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the security posture: bind and TLS, auth, file modes, config, database, vault.",
        discussion: "Prints one line per check (pass, warn or fail) with the fix. Exits 1 when a check fails."
    )

    @OptionGroup var state: StateOptions

    @Flag(help: "Print the findings as a JSON array.")
    var json = false

    func run() throws {
        let findings = PostureCheck.run(state.installationOptions)
        print(json ? PostureCheck.json(findings) : PostureCheck.text(findings))
        if findings.contains(where: { $0.status == .fail }) {
            throw ExitCode(ExitStatus.failure)
        }
    }
}
