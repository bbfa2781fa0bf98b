import ArgumentParser
import Foundation
import MoatAdmin
import MoatCore

/// `moat metrics`: the running server's metrics, through the admin socket (owner only, like every
/// admin operation). The counts live in that process, so there is nothing to show without it.
struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Print the running server's metrics in the Prometheus text format.",
        discussion: """
            The same text as GET /api/metrics. Metric names and labels are listed in Docs/Operations.md; \
            no label holds a message, a sender, a secret or a path with an id.
            """
    )

    @OptionGroup var state: StateOptions

    func run() async throws {
        guard let socket = AdminChannel.runningServer(try CommandContext.layout(state)) else {
            throw CommandFailure("no moat serve is running on this home; metrics live in the running server")
        }
        try AdminChannel.print(try AdminChannel.send(.metrics, to: socket))
    }
}
