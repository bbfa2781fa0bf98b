public import MoatChannels
import MoatCore
public import MoatPolicy

/// The owner's channel commands (`moat pairing …`, `moat channel …`) as admin operations: run by the
/// server for requests on the admin socket, or in the command's own process when no server runs.
public struct ChannelOperations: Sendable {
    let desk: PairingDesk
    let engine: PolicyEngine

    public init(desk: PairingDesk, engine: PolicyEngine) {
        self.desk = desk
        self.engine = engine
    }

    /// Runs one pairing or channel operation; nil for an operation of another table.
    func perform(_ operation: AdminOperation) async throws -> AdminResult? {
        switch operation {
        case .pairingList:
            return .pairings(try await desk.pending().map(PairingView.init))
        case .pairingApprove(let code, let ceilings):
            let typed = code.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            return .pairingApproved(ContactView(try await desk.approve(code: typed, ceilings: ceilings).contact))
        case .pairingDeny(let code):
            let typed = code.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            return .pairingDenied(PairingView(try await desk.deny(code: typed)))
        case .channelBind(let channel):
            return .bindingCode(PairingView(try await desk.beginBinding(channel: channel)))
        case .channelUnbind(let channel):
            try await engine.unbindOwner(channel: channel)
            return .channelUnbound(channel: channel)
        case .channelList:
            return .ownerBindings(try await engine.ownerBindings().map(OwnerBindingView.init))
        default:
            return nil
        }
    }
}
