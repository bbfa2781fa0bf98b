import MoatChannels
import MoatConfig
import MoatConsole
import MoatCore
import MoatVault

extension InstallationState {
    /// The Matrix adapter `channels.matrix` configures, or nil (Docs/Channels.md, "Matrix"). Nothing is
    /// contacted here: the homeserver is reached once the channel service runs, and its credential is read
    /// from the vault at each request.
    static func matrixAdapter(
        _ settings: MatrixSettings?, vault: UnlockedVault, report: @escaping @Sendable (String) -> Void
    ) throws(GatewayError) -> MatrixAdapter? {
        guard let settings else { return nil }
        do {
            return MatrixAdapter(
                client: try MatrixClient(settings: settings, vault: vault), pollTimeout: settings.pollTimeout,
                report: report)
        } catch {
            throw GatewayError(.configuration, error.message)
        }
    }
}
