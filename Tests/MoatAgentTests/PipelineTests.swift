import Foundation
import GRDB
import MoatAgent
import MoatCore
import MoatPolicy
import MoatProviders
import MoatStore
import Synchronization
import Testing

@Suite struct PipelineTests {
    @Test("levels 0, 1, 3 and 4: refused, described only, run with the owner told, run")
    func levels() async throws {
        let none = TestTool("pay", domain: .finance)
        let inform = TestTool("mail", domain: .email)
        let act = TestTool("lights", domain: .integrations)
        let full = TestTool("read", domain: .files)
        let fixture = try AgentFixture(
            tools: [none, inform, act, full],
            trust: [.finance: .none, .email: .inform, .integrations: .actAndReport, .files: .fullAutonomy])
        let text = ["pay", "mail", "lights", "read"].map { "CALL \($0) {\"target\":\"t-\($0)\"}" }
            .joined(separator: "\n")
        let outcome = try await fixture.agent.handle(fixture.owner(text))
        #expect(outcome.calls.map(\.decision) == [.refused, .described, .ranAndReported, .ran])
        #expect(outcome.calls.map(\.level) == [TrustLevel.none, .inform, .actAndReport, .fullAutonomy])
        #expect(none.ran.isEmpty && inform.ran.isEmpty)
        #expect(act.ran.count == 1 && full.ran.count == 1)
        #expect(outcome.described == ["mail on t-mail"])
        #expect(outcome.pending.isEmpty)
        #expect(fixture.notices.all.map(\.kind) == [.actionTaken])
        // What the model was told for each call, in order.
        let answers = try #require(fixture.model.requests.last).messages.filter { $0.role == .tool }.map(\.content)
        #expect(answers.count == 4)
        #expect(answers[0].hasPrefix("Refused by the gateway"))
        #expect(answers[1].hasPrefix("Not run") && answers[1].contains("mail on t-mail"))
        #expect(answers[2] == #"ran lights {"target":"t-lights"}"#)
        #expect(answers[3] == #"ran read {"target":"t-read"}"#)
    }

    @Test("bad arguments and unknown tools are explained to the model and nothing runs")
    func badArgumentsExplained() async throws {
        let tool = TestTool("read", domain: .files)
        let fixture = try AgentFixture(tools: [tool], trust: [.files: .fullAutonomy])
        let outcome = try await fixture.agent.handle(fixture.owner("CALL read [1,2]\nCALL rm {}"))
        #expect(outcome.calls.map(\.decision) == [.invalid, .invalid])
        #expect(tool.ran.isEmpty)
        let answers = try #require(fixture.model.requests.last).messages.filter { $0.role == .tool }.map(\.content)
        #expect(answers[0].contains("must be a JSON object"))
        #expect(answers[1].contains("There is no tool named rm"))
    }

    @Test("a call whose audit entry cannot be appended is not run; the model is told why")
    func failingAuditRefusesCall() async throws {
        let tool = TestTool("read", domain: .files)
        let fixture = try AgentFixture(tools: [tool], trust: [.files: .fullAutonomy])
        try fixture.sql(
            """
            CREATE TRIGGER fail_tool_runs BEFORE INSERT ON audit_entries WHEN NEW.action = 'agent.tool.run'
              BEGIN SELECT RAISE(ABORT, 'disk full'); END
            """)
        let outcome = try await fixture.agent.handle(fixture.owner(#"CALL read {"target":"notes.txt"}"#))
        #expect(tool.ran.isEmpty)
        #expect(outcome.calls.map(\.outcome) == ["refused"])
        let told = try #require(fixture.model.requests.last?.messages.last)
        #expect(told.content.contains("audit log could not record this call"))
        let stored = try await fixture.database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT outcome FROM agent_tool_calls")
        }
        #expect(stored == "refused")
    }

    @Test("a model round whose audit entry cannot be appended does not happen")
    func failingAuditRefusesModelRound() async throws {
        let fixture = try AgentFixture(tools: [])
        try fixture.sql(
            """
            CREATE TRIGGER fail_rounds BEFORE INSERT ON audit_entries WHEN NEW.action = 'agent.model'
              BEGIN SELECT RAISE(ABORT, 'disk full'); END
            """)
        let error = await agentError { try await fixture.agent.handle(fixture.owner("hello")) }
        #expect(error?.code == .refused)
        #expect(fixture.model.requests.isEmpty)
    }

    @Test(
        "a message whose audit entry cannot be appended is not kept: no message row, and the same key can be sent again"
    )
    func failingAuditKeepsNoMessage() async throws {
        let fixture = try AgentFixture(tools: [])
        try fixture.sql(
            """
            CREATE TRIGGER fail_messages BEFORE INSERT ON audit_entries WHEN NEW.action = 'agent.message'
              BEGIN SELECT RAISE(ABORT, 'disk full'); END
            """)
        let message = fixture.owner("hello", key: "k1")
        let error = await agentError { try await fixture.agent.handle(message) }
        #expect(error?.code == .refused)
        #expect(fixture.model.requests.isEmpty)
        #expect(try fixture.count("agent_messages") == 0)
        #expect(try fixture.count("agent_inbound") == 0)
        #expect(try fixture.count("agent_conversations") == 0)
        try fixture.sql("DROP TRIGGER fail_messages")
        _ = try await fixture.agent.handle(message)
        #expect(try fixture.count("agent_messages", "role = 'user'") == 1)
    }

    @Test("a reply whose audit entry cannot be appended is not stored with its round's usage")
    func failingAuditKeepsNoReply() async throws {
        let fixture = try AgentFixture(tools: [])
        try fixture.sql(
            """
            CREATE TRIGGER fail_replies BEFORE INSERT ON audit_entries WHEN NEW.action = 'agent.reply'
              BEGIN SELECT RAISE(ABORT, 'disk full'); END
            """)
        let error = await agentError { try await fixture.agent.handle(fixture.owner("hello")) }
        #expect(error?.code == .refused)
        #expect(try fixture.count("agent_messages", "role = 'assistant'") == 0)
        #expect(try fixture.count("agent_token_usage") == 0)
        #expect(try fixture.auditActions().contains("agent.model"))
    }

    @Test("after a turn the conversation, its messages and the tool call with its decision are in moat.db")
    func turnStored() async throws {
        let tool = TestTool("read", domain: .files)
        let fixture = try AgentFixture(tools: [tool], trust: [.files: .fullAutonomy])
        let outcome = try await fixture.agent.handle(fixture.owner(#"CALL read {"target":"notes.txt"}"#))
        #expect(
            try fixture.count("agent_conversations", "id = 'c1' AND principal = 'owner' AND channel = 'owner'") == 1)
        let roles = try await fixture.database.pool.read { db in
            try String.fetchAll(db, sql: "SELECT role FROM agent_messages WHERE conversation = 'c1' ORDER BY id")
        }
        #expect(roles == ["user", "assistant", "tool", "assistant"])
        let call = try #require(
            try await fixture.database.pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM agent_tool_calls") })
        #expect(call["tool"] == "read")
        #expect(call["arguments"] == #"{"target":"notes.txt"}"#)
        #expect(call["destination"] == "notes.txt")
        #expect(call["level"] == 4)
        #expect(call["decision"] == "ran")
        #expect(call["outcome"] == "success")
        #expect(call["result_bytes"] == #"ran read {"target":"notes.txt"}"#.utf8.count)
        #expect(call["id"] == outcome.calls[0].id)
        #expect(try fixture.count("agent_token_usage", "principal = 'owner'") == 1)
        // The next turn sends the stored history.
        _ = try await fixture.agent.handle(fixture.owner("and now?"))
        #expect(fixture.model.requests.last?.messages.count == 1 + 4 + 1)
        // The audit log has each step, and never the message text.
        let actions = try fixture.auditActions()
        for action in ["agent.message", "agent.model", "agent.tool.run", "agent.tool.result", "agent.reply"] {
            #expect(actions.contains(action))
        }
        let metadata = try await fixture.database.pool.read { db in
            try String.fetchAll(db, sql: "SELECT metadata || target FROM audit_entries").joined()
        }
        #expect(!metadata.contains("and now?"))
        // Usage is in the reply's entry as numbers (a key naming tokens would be redacted).
        let reply = try await fixture.database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT metadata FROM audit_entries WHERE action = 'agent.reply'")
        }
        #expect(reply?.contains(#""usage_in":"#) == true)
        #expect(reply?.contains("REDACTED") == false)
    }

    @Test("a tool-call row forged in moat.db (no valid MAC) cannot be approved")
    func forgedCallRowRefused() async throws {
        let tool = TestTool("shell", domain: .shell)
        let fixture = try AgentFixture(tools: [tool], trust: [.shell: .suggest])
        let outcome = try await fixture.agent.handle(fixture.owner(#"CALL shell {"target":"ls"}"#))
        let approval = try #require(outcome.pending.first).approvalID
        // Point the held call at another conversation: its MAC no longer verifies.
        _ = try await fixture.agent.handle(fixture.owner("other", conversation: "c2"))
        try fixture.sql("UPDATE agent_tool_calls SET conversation = 'c2' WHERE approval_id = ?", [approval])
        let error = await agentError { try await fixture.agent.approve(approval) }
        #expect(error?.code == .refused)
        #expect(tool.ran.isEmpty)
        #expect(try fixture.auditActions().contains("agent.approval.refused"))
        // An approval no agent call holds is "not found" (the policy engine may decide it alone).
        let none = await agentError { try await fixture.agent.approve("no-such-approval") }
        #expect(none?.code == .notFound)
    }
}

/// A model that holds each round until the test releases them all.
final class HeldModel: ModelProvider {
    let name = "held"
    private let held = Mutex<(arrived: Int, waiting: [CheckedContinuation<Void, Never>], open: Bool)>((0, [], false))

    var arrived: Int { held.withLock { $0.arrived } }
    /// Yields the count each time a round arrives, so a test waits without spinning.
    private let arrivals = AsyncStream.makeStream(of: Int.self)

    /// Returns once `count` rounds have arrived (a spinning wait would hold one of the two cooperative
    /// threads of a 2-core machine and starve every other test).
    func waitForArrivals(_ count: Int) async {
        if arrived >= count { return }
        for await seen in arrivals.stream where seen >= count { return }
    }

    func releaseAll() {
        let waiting = held.withLock { state in
            state.open = true
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    func complete(
        _ request: ModelRequest, onText: @escaping @Sendable (String) async -> Void
    ) async throws(ProviderError) -> ModelReply {
        await withCheckedContinuation { continuation in
            let (open, count) = held.withLock { state in
                state.arrived += 1
                if !state.open { state.waiting.append(continuation) }
                return (state.open, state.arrived)
            }
            arrivals.continuation.yield(count)
            if open { continuation.resume() }
        }
        return ModelReply(text: "ok")
    }
}

@Suite struct ConcurrencyTests {
    @Test("a second message for a conversation whose turn is running is refused; other conversations go on")
    func busyConversation() async throws {
        let model = HeldModel()
        let fixture = try AgentFixture(tools: [])
        let agent = Agent(
            provider: model, tools: [], policy: fixture.policy, audit: fixture.audit, vault: fixture.vault,
            database: fixture.database, authenticator: try AgentKeyring.authenticator(from: fixture.vault),
            notifier: fixture.notices)
        let first = Task { try await agent.handle(fixture.owner("one", conversation: "a")) }
        await model.waitForArrivals(1)
        let busy = await agentError { try await agent.handle(fixture.owner("two", conversation: "a")) }
        #expect(busy?.code == .busy)
        let other = Task { try await agent.handle(fixture.owner("three", conversation: "b")) }
        await model.waitForArrivals(2)
        model.releaseAll()
        #expect(try await first.value.reply == "ok")
        #expect(try await other.value.reply == "ok")
        #expect(try fixture.count("agent_messages", "role = 'user'") == 2)
    }
}
