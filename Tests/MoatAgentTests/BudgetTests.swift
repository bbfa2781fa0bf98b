import Foundation
import MoatAgent
import MoatCore
import MoatProviders
import Synchronization
import Testing

@Suite struct BudgetTests {
    @Test("a model that calls tools forever is stopped at the tool-call budget with a message")
    func toolCallBudget() async throws {
        let tool = TestTool("read", domain: .files)
        var settings = AgentSettings()
        settings.maxToolCallsPerTurn = 3
        settings.maxRoundsPerTurn = 50
        let fixture = try AgentFixture(
            model: ScriptedModel(loop: "read"), tools: [tool], trust: [.files: .fullAutonomy], settings: settings)
        let outcome = try await fixture.agent.handle(fixture.owner("go"))
        #expect(outcome.stoppedBy?.limit == .toolCalls)
        #expect(outcome.reply.contains("agent.max_tool_calls_per_turn"))
        #expect(tool.ran.count == 3)
        #expect(outcome.calls.last?.decision == .skipped)
        #expect(try fixture.auditActions().contains("agent.budget"))
        // The owner is told, with the stop's message.
        let notice = try #require(fixture.notices.all.first { $0.kind == .budgetReached })
        #expect(notice.text.contains("agent.max_tool_calls_per_turn"))
    }

    @Test("a model that keeps asking is stopped at the round budget")
    func roundBudget() async throws {
        let tool = TestTool("read", domain: .files)
        var settings = AgentSettings()
        settings.maxRoundsPerTurn = 4
        let fixture = try AgentFixture(
            model: ScriptedModel(loop: "read"), tools: [tool], trust: [.files: .fullAutonomy], settings: settings)
        let outcome = try await fixture.agent.handle(fixture.owner("go"))
        #expect(outcome.stoppedBy?.limit == .rounds)
        #expect(fixture.model.requests.count == 4)
        #expect(outcome.rounds == 4)
    }

    @Test("a turn that runs past its wall time stops before the next step")
    func wallTimeBudget() async throws {
        var settings = AgentSettings()
        settings.turnTimeLimit = 30
        let clock = AgentClock()
        let tool = TestTool("read", domain: .files, onRun: { clock.value.withLock { $0 += 20 } })
        let fixture = try AgentFixture(
            model: ScriptedModel(loop: "read"), tools: [tool], trust: [.files: .fullAutonomy], settings: settings,
            clock: clock)
        let outcome = try await fixture.agent.handle(fixture.owner("go"))
        #expect(outcome.stoppedBy?.limit == .wallTime)
        #expect(tool.ran.count == 2)
    }

    @Test("a principal's daily tokens stop its next turn, and the next UTC day it may go on")
    func dailyTokenBudget() async throws {
        var settings = AgentSettings()
        settings.tokensPerDay = 1000
        let fixture = try AgentFixture(
            model: ScriptedModel(usage: TokenUsage(input: 600, output: 500)), tools: [], settings: settings)
        let first = try await fixture.agent.handle(fixture.owner("one"))
        #expect(first.stoppedBy == nil)
        let second = try await fixture.agent.handle(fixture.owner("two"))
        #expect(second.stoppedBy?.limit == .dailyTokens)
        #expect(second.reply.contains("agent.tokens_per_day"))
        #expect(fixture.model.requests.count == 1)
        fixture.advance(86400)
        let third = try await fixture.agent.handle(fixture.owner("three"))
        #expect(third.stoppedBy == nil)
        #expect(fixture.model.requests.count == 2)
    }

    @Test("messages beyond the per-minute limit of a principal on a channel are refused before the model")
    func rateLimited() async throws {
        var settings = AgentSettings()
        settings.messagesPerMinute = 2
        let fixture = try AgentFixture(tools: [], settings: settings)
        _ = try await fixture.agent.handle(fixture.owner("1"))
        _ = try await fixture.agent.handle(fixture.owner("2"))
        let error = await agentError { try await fixture.agent.handle(fixture.owner("3")) }
        #expect(error?.code == .rateLimited)
        #expect(fixture.model.requests.count == 2)
        fixture.advance(61)
        _ = try await fixture.agent.handle(fixture.owner("4"))
        #expect(fixture.model.requests.count == 3)
    }

    @Test("the pure budget check names the first limit reached")
    func pureBudget() {
        let settings = AgentSettings()
        #expect(TurnBudget.beforeRound(.init(), settings: settings) == nil)
        #expect(TurnBudget.beforeRound(.init(rounds: 8), settings: settings)?.limit == .rounds)
        #expect(TurnBudget.beforeRound(.init(elapsed: 120), settings: settings)?.limit == .wallTime)
        #expect(
            TurnBudget.beforeRound(.init(rounds: 8, tokensToday: 1_000_000), settings: settings)?.limit == .dailyTokens)
        #expect(TurnBudget.beforeToolCall(.init(toolCalls: 15), settings: settings) == nil)
        #expect(TurnBudget.beforeToolCall(.init(toolCalls: 16), settings: settings)?.limit == .toolCalls)
    }
}
