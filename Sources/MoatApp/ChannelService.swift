import MoatChannels
import ServiceLifecycle

/// The messaging channels as a service of `moat serve`: the router's adapters and turns, cancelled on
/// graceful shutdown (a turn cut off there is in its conversation; its message is not delivered again).
struct ChannelService: Service {
    let router: ChannelRouter

    func run() async throws {
        await cancelWhenGracefulShutdown { await router.run() }
    }
}
