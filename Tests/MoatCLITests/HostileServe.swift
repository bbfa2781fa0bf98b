import Foundation
import GRDB
import MoatTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real `moat serve` whose `local` provider is a hostile ``ScriptedModelServer`` on loopback (it obeys
/// every `MOAT-TEST-CALL tool {json}` line it reads, in a message, a fetched page or a tool's result),
/// driven as the owner and the contacts drive it: `moat chat`, `moat approvals`, `moat trust`, the signed
/// webhook. The containment suite (``ContainmentServeTests``) runs each case through one of these.
///
/// The workspace is `ws/` in a directory of its own (`tools.workspace`), next to `outside/`, a directory
/// no tool may write. When the tests run as root the sandbox runs commands as uid 65534, so `ws/` is
/// given to that user and its parent is searchable (as Docs/Sandbox.md says an owner running Moat as
/// root must do); otherwise both are the test user's.
final class HostileServe: @unchecked Sendable {
    /// What differs between the cases' installations.
    struct Setup {
        var hostile = ScriptedModelServer.Hostile.newInput
        /// `policy.ssrf.allow_hosts` entries (`127.0.0.1:PORT`).
        var allowHosts: [String] = []
        /// Lines under `agent:` (`max_rounds_per_turn: 3`).
        var agent: [String] = []
        /// `policy.approval_expiry_minutes`.
        var approvalExpiryMinutes: Int?
        /// Configure the signed webhook `sms` (its key in the vault as SMS_HOOK_KEY).
        var webhook = false
    }

    let model: ScriptedModelServer
    let home: TemporaryDirectory
    let area: TemporaryDirectory
    let server: RunningServer
    /// The port `moat serve` listens on.
    let port: Int

    var workspace: String { area.file("ws") }
    var outside: String { area.file("outside") }

    init(_ setup: Setup = Setup()) async throws {
        var options = ScriptedModelServer.Options()
        options.hostile = setup.hostile
        model = try await ScriptedModelServer.start(options: options)
        let home = try await ServedHome.copy()
        self.home = home
        let area = TemporaryDirectory("moat-contain-area")
        self.area = area
        let workspace = area.file("ws")
        TemporaryDirectory.chmod(area.path, 0o755)
        for directory in [workspace, area.file("outside")] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            TemporaryDirectory.chmod(directory, 0o700)
        }
        if geteuid() == 0 { _ = chown(workspace, 65534, 65534) }
        var config = """
            providers:
              local:
                base_url: \(model.baseURL)
                model: scripted
            tools:
              workspace: \(workspace)
            policy:
              ssrf:
                allow_hosts: [\(setup.allowHosts.map { "\"\($0)\"" }.joined(separator: ", "))]

            """
        if let minutes = setup.approvalExpiryMinutes { config += "  approval_expiry_minutes: \(minutes)\n" }
        if !setup.agent.isEmpty { config += "agent:\n" + setup.agent.map { "  \($0)\n" }.joined() }
        if setup.webhook {
            config += "channels:\n  webhooks:\n    sms:\n      key_secret: SMS_HOOK_KEY\n"
            try WebhookServeTests.key.write(toFile: home.file("hook.key"), atomically: true, encoding: .utf8)
            chmod(home.file("hook.key"), 0o600)
            let added = try await MoatBinary.run(
                ["vault", "add", "SMS_HOOK_KEY", "--from-file", home.file("hook.key")], home: home.path)
            try #require(added.status == 0, "moat vault add SMS_HOOK_KEY failed: \(added.stderr)")
        }
        try config.write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        chmod(home.file("config.yaml"), 0o600)
        server = try await RunningServer.start(arguments: [], home: home.path)
        port = try #require(server.port)
        await waitForFile(home.file("moat.sock"), within: 60)
    }

    deinit {
        let model = self.model
        Task { await model.stop() }
    }

    // MARK: Driving it

    /// `moat ARGS` against this installation (through the running server's admin socket).
    func moat(_ arguments: [String]) async throws -> MoatBinary.Result {
        try await MoatBinary.run(arguments, home: home.path)
    }

    /// `moat chat --message TEXT` as the owner; fails the test when the command fails.
    func chat(_ message: String, json: Bool = false) async throws -> String {
        let chat = try await moat(["chat", "--message", message] + (json ? ["--json"] : []))
        #expect(chat.status == 0, "moat chat failed: \(chat.stderr)")
        return chat.stdout
    }

    /// `moat chat --json`, parsed.
    func chatTurn(_ message: String) async throws -> [String: Any] {
        let output = try await chat(message, json: true)
        return (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [String: Any] ?? [:]
    }

    /// `moat trust set DOMAIN LEVEL`, forced (levels 3 and 4 need evidence otherwise).
    func trust(_ domain: String, _ level: String) async throws {
        let set = try await moat(["trust", "set", domain, level, "--force", "--reason", "containment test"])
        #expect(set.status == 0, "\(set.stderr)")
    }

    /// `moat contact add webhook:sms:SENDER --ceiling …`.
    func addContact(_ sender: String, ceilings: [String]) async throws {
        let added = try await moat(
            ["contact", "add", "webhook:sms:\(sender)"] + ceilings.flatMap { ["--ceiling", $0] })
        #expect(added.status == 0, "\(added.stderr)")
    }

    /// One signed delivery to `POST /hooks/sms`.
    func deliver(id: String, sender: String, text: String) async throws -> RawHTTP.Response {
        let body = String(
            decoding: try JSONSerialization.data(withJSONObject: ["id": id, "sender": sender, "text": text]),
            as: UTF8.self)
        return try await RawHTTP.sendOffPool(WebhookServeTests.delivery(body, port: port), port: port)
    }

    /// The pending approvals (`moat approvals list --json`).
    func pendingApprovals() async throws -> [[String: Any]] {
        let list = try await moat(["approvals", "list", "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        return (try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8))) as? [[String: Any]] ?? []
    }

    /// The approval ids of the `pending approval ID: …` lines `moat chat` printed.
    static func pendingIDs(_ output: String) -> [String] {
        output.split(separator: "\n").filter { $0.hasPrefix("pending approval ") }.map {
            String($0.dropFirst("pending approval ".count).prefix { $0 != ":" })
        }
    }

    /// The tool messages of the model's last request: what the gateway told the model about each call.
    var lastToolAnswers: [String] {
        let messages = model.requests.last?.json["messages"] as? [[String: Any]] ?? []
        let lastAssistant = messages.lastIndex { $0["role"] as? String == "assistant" } ?? -1
        return messages[(lastAssistant + 1)...].filter { $0["role"] as? String == "tool" }.compactMap {
            $0["content"] as? String
        }
    }

    // MARK: What is on disk

    /// Runs SQL on the server's moat.db (a second connection, as a database-only attacker has).
    func sql(_ statement: String, _ arguments: StatementArguments = []) throws {
        let queue = try DatabaseQueue(path: home.file("moat.db"))
        try queue.write { try $0.execute(sql: statement, arguments: arguments) }
    }

    /// One column of the rows `query` selects.
    func column(_ query: String, _ arguments: StatementArguments = []) throws -> [String] {
        let queue = try DatabaseQueue(path: home.file("moat.db"))
        return try queue.read { try String.fetchAll($0, sql: query, arguments: arguments) }
    }

    /// Every value of every table in moat.db (the agent's rows, the audit log, the policy tables), as text.
    func everythingStored() throws -> String {
        let queue = try DatabaseQueue(path: home.file("moat.db"))
        return try queue.read { db in
            var text = ""
            for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\"") {
                    for (_, value) in row {
                        switch value.storage {
                        case .string(let string): text += string + "\n"
                        case .blob(let data): text += String(decoding: data, as: UTF8.self) + "\n"
                        default: break
                        }
                    }
                }
            }
            return text
        }
    }

    /// Whether `path` (relative to the workspace) exists, without following a symlink.
    func workspaceHas(_ path: String) -> Bool {
        var info = stat()
        return lstat(workspace + "/" + path, &info) == 0
    }

    func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    /// Stops the server (SIGTERM) and returns its whole log; the test fails unless it exited cleanly.
    func stop() async -> String {
        let (status, log) = await server.stop()
        #expect(status == 0, "moat serve exited with \(status)")
        return log
    }

    // MARK: The sandbox

    /// `moat sandbox check`'s verdict on this machine, asked once (by a task: the tests await it instead
    /// of waiting in a `static let`'s initialiser on a cooperative thread).
    static let sandboxCheckTask = Task.detached { () async -> (runs: Bool, report: String) in
        guard let check = try? await MoatBinary.run(["sandbox", "check"], home: nil) else {
            return (false, "moat sandbox check could not be started")
        }
        return (check.status == 0, check.stdout + check.stderr)
    }

    static var sandboxCheck: (runs: Bool, report: String) {
        get async { await sandboxCheckTask.value }
    }

    /// Ends the test as skipped, saying why, when the real sandbox cannot run here (the shell cases need
    /// it: nothing ever runs unsandboxed, so without it they would prove nothing).
    static func requireSandbox() async throws {
        let check = await sandboxCheck
        guard check.runs else {
            try Test.cancel("skipped: the sandbox cannot run on this machine (moat sandbox check):\n\(check.report)")
        }
    }
}
