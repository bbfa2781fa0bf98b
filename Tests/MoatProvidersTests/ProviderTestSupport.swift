import Foundation
import MoatCore
import MoatNet
import MoatTestSupport
import MoatVault
import Synchronization
import Testing

@testable import MoatProviders

/// The pieces of text a streamed round handed to `onText`, in order.
final class TextPieces: Sendable {
    private let pieces = Mutex<[String]>([])
    var all: [String] { pieces.withLock { $0 } }
    var onText: @Sendable (String) async -> Void { { piece in self.pieces.withLock { $0.append(piece) } } }
}

/// A provider aimed at `server`.
func provider(
    _ server: ScriptedModelServer, stream: Bool = true, keySecret: String? = nil, vault: UnlockedVault? = nil,
    timeouts: ProviderTimeouts = ProviderTimeouts(), model: String = "scripted-model"
) throws -> OpenAICompatibleProvider {
    let settings = ProviderSettings(
        name: "test", baseURL: server.baseURL, model: model, apiKeySecret: keySecret, stream: stream,
        timeouts: timeouts)
    return try OpenAICompatibleProvider(settings: settings, vault: vault)
}

/// Runs one round and returns its error, failing the test when it succeeds.
func roundError(
    _ provider: OpenAICompatibleProvider,
    _ request: ModelRequest = ModelRequest(messages: [ChatMessage(role: .user, content: "hi")])
) async -> ProviderError? {
    await failure(of: provider, request)
}

/// A vault in a temporary directory holding `secrets`, with the weakest parameters the vault accepts.
struct KeyVault {
    let directory = TemporaryDirectory("moat-provider-vault")
    let vault: UnlockedVault

    init(_ secrets: [String: String]) throws {
        var seed: [String: SecretBytes] = [:]
        for (name, value) in secrets {
            var bytes = Array(value.utf8)
            seed[name] = SecretBytes(wiping: &bytes)
        }
        var password = Array("correct horse battery staple".utf8)
        vault = try UnlockedVault.create(
            paths: VaultPaths(stateDirectory: directory.path), password: SecretBytes(wiping: &password),
            parameters: try Argon2Parameters(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1), seed: seed)
    }
}

/// A port on 127.0.0.1 where nothing listens: a socket bound to it, never listening, kept open.
func closedPort() async throws -> Int {
    // Never closed: a port freed by closing a server could be handed to another test's server at once.
    try LoopbackPort.bound().port
}

/// An Anthropic provider aimed at `server`.
func anthropic(
    _ server: ScriptedAnthropicServer, stream: Bool = true, keySecret: String? = nil, vault: UnlockedVault? = nil,
    model: String = "scripted-model"
) throws -> AnthropicProvider {
    let settings = ProviderSettings(
        name: "claude", kind: .anthropic, baseURL: server.baseURL, model: model, apiKeySecret: keySecret,
        stream: stream)
    return try AnthropicProvider(settings: settings, vault: vault)
}

/// Runs one round of any provider and returns its error, failing the test when it succeeds.
func failure(
    of provider: any ModelProvider,
    _ request: ModelRequest = ModelRequest(messages: [ChatMessage(role: .user, content: "hi")])
) async -> ProviderError? {
    do {
        _ = try await provider.complete(request) { _ in }
        Issue.record("the round succeeded; an error was expected")
        return nil
    } catch {
        return error
    }
}

/// A clock for the retry loop and the breaker: time moves only when the loop sleeps or the test
/// advances it; every sleep is recorded; the jitter's random fraction is fixed.
final class FakeClock: Sendable {
    private let state = Mutex<(now: Date, sleeps: [Duration])>((Date(timeIntervalSince1970: 1_796_000_000), []))
    let fraction: Double

    init(fraction: Double = 0.5) { self.fraction = fraction }

    var now: Date { state.withLock { $0.now } }
    var sleeps: [Duration] { state.withLock { $0.sleeps } }

    func advance(_ duration: Duration) {
        state.withLock { $0.now = $0.now.addingTimeInterval(duration.inSeconds) }
    }

    var environment: RetryEnvironment {
        RetryEnvironment(
            now: { self.now },
            sleep: { duration in
                self.state.withLock { state in
                    state.sleeps.append(duration)
                    state.now = state.now.addingTimeInterval(duration.inSeconds)
                }
            }, random: { self.fraction })
    }
}
