import Foundation
import MoatTestSupport
import Testing

/// What the channel tests of the real `moat serve` share: a served home with one channel configured and its
/// credential in the vault, and a server whose owner is about to bind their account.
enum ChannelServeHome {
    /// ChatCommandTests' home (the provider `model`, a workspace holding notes.txt) with `section` appended
    /// to config.yaml and `value` stored as vault secret `secret` (from a file, deleted after).
    static func make(model: ScriptedModelServer, section: String, secret: String, value: String) async throws
        -> TemporaryDirectory
    {
        let home = try await ChatCommandTests.home(model)
        let config = try String(contentsOfFile: home.file("config.yaml"), encoding: .utf8) + section
        try config.write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        chmod(home.file("config.yaml"), 0o600)
        try value.write(toFile: home.file("secret"), atomically: true, encoding: .utf8)
        chmod(home.file("secret"), 0o600)
        let added = try await MoatBinary.run(
            ["vault", "add", secret, "--from-file", home.file("secret")], home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        unlink(home.file("secret"))
        return home
    }

    /// With the files domain at `suggest` (every file call waits for the owner), a running server and the
    /// code `moat channel bind CHANNEL` showed.
    static func servedForApprovals(home: TemporaryDirectory, channel: String) async throws -> (RunningServer, String) {
        #expect(
            try await MoatBinary.run(["trust", "set", "files", "suggest", "--reason", "ask me"], home: home.path).status
                == 0)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let bind = try await MoatBinary.run(["channel", "bind", channel], home: home.path)
        #expect(bind.status == 0, "\(bind.stderr)")
        return (server, try #require(TelegramServeTests.code(in: bind.stdout)))
    }
}
