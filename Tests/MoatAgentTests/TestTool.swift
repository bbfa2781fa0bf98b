import Foundation
import MoatCore
import MoatTools
import Synchronization

/// A tool whose output a test chooses; it counts its runs.
///
/// Arguments must be a JSON object; its `target` (a string, if present) is the destination. The canonical
/// form is the object re-serialised with sorted keys.
final class TestTool: Tool {
    let name: String
    let domain: TrustDomain
    let description: String
    let parameters = #"{"type":"object","properties":{"target":{"type":"string"}}}"#
    let external: Bool
    let output: @Sendable (PreparedCall) -> String
    let onRun: @Sendable () -> Void
    private let runs = Mutex<[PreparedCall]>([])

    init(
        _ name: String, domain: TrustDomain, external: Bool = false,
        onRun: @escaping @Sendable () -> Void = {},
        output: @escaping @Sendable (PreparedCall) -> String = { "ran \($0.tool) \($0.arguments)" }
    ) {
        self.name = name
        self.domain = domain
        self.description = "a test tool in \(domain)"
        self.external = external
        self.onRun = onRun
        self.output = output
    }

    var ran: [PreparedCall] { runs.withLock { $0 } }

    func prepare(_ arguments: String) throws(ToolError) -> PreparedCall {
        guard let object = try? JSONSerialization.jsonObject(with: Data(arguments.utf8)) as? [String: Any] else {
            throw ToolError(.invalidArguments, "the arguments must be a JSON object, e.g. {\"target\":\"x\"}.")
        }
        let target = object["target"]
        if target != nil, !(target is String) {
            throw ToolError(.invalidArguments, "target must be a string.")
        }
        guard
            let canonical = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { throw ToolError(.invalidArguments, "the arguments cannot be re-serialised.") }
        let destination = target as? String ?? ""
        return PreparedCall(
            tool: name, arguments: String(decoding: canonical, as: UTF8.self), destination: destination,
            summary: "\(name) on \(destination.isEmpty ? "nothing in particular" : destination)")
    }

    func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        runs.withLock { $0.append(call) }
        onRun()
        return ToolOutput(text: output(call), external: external)
    }
}
