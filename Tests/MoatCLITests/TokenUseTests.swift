import Foundation
import GRDB
import MoatTestSupport
import Testing

/// The last use of an API token is kept in memory between writes (at most one a minute per token):
/// `moat serve` writes what it kept when it stops, so `moat token list` after a restart shows it.
@Suite(.serialized) struct TokenUseTests {
    /// `last_used_at` of the only token, as stored in `moat.db`.
    static func storedLastUse(_ home: String) throws -> Int64? {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: home + "/moat.db", configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in try Int64.fetchOne(db, sql: "SELECT max(last_used_at) FROM auth_api_tokens") }
    }

    static var nowMillis: Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    @Test("moat serve writes a token's last use kept in memory when it stops on SIGTERM")
    func lastUseWrittenAtShutdown() async throws {
        let temp = TemporaryDirectory()
        let (home, token) = try await ServeProcessTests.installation(temp)
        let server = try await RunningServer.start(arguments: [], home: home)
        let port = try #require(server.port)
        let bearer = [("Authorization", "Bearer \(token)")]
        #expect(try await OwnerCommandTests.send("GET", "/api/auth/session", port: port, headers: bearer).status == 200)
        // The first use is written at once.
        let first = try #require(try Self.storedLastUse(home))
        // Strictly later than the first use, so only the second use can account for a stored time from here on.
        while Self.nowMillis <= first { try await Task.sleep(for: .milliseconds(1)) }
        let secondSent = Self.nowMillis
        #expect(try await OwnerCommandTests.send("GET", "/api/auth/session", port: port, headers: bearer).status == 200)
        let stopped = await server.stop()
        #expect(stopped.status == 0, "\(stopped.log)")
        #expect(try #require(try Self.storedLastUse(home)) >= secondSent)
    }
}
