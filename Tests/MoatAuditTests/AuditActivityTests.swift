import Foundation
import MoatAudit
import MoatStore
import MoatTestSupport
import Synchronization
import Testing

/// The console overview's counts, read from a real audit log whose clock the test sets.
@Suite struct AuditActivityTests {
    final class Clock: Sendable {
        let time: Mutex<Date>
        init(_ time: Date) { self.time = Mutex(time) }
    }

    /// An audit log in a fresh `moat.db` whose entries are stamped with `clock`'s time.
    static func log(_ fixture: AuditFixture, clock: Clock) throws -> AuditLog {
        AuditLog(
            database: fixture.database, keys: fixture.keys, origin: try AuditLog.origin(for: fixture.database),
            now: { clock.time.withLock { $0 } })
    }

    static func date(_ text: String) throws -> Date {
        try #require(ISO8601DateFormatter().date(from: text))
    }

    @Test("messages and tool calls land in their UTC hour; today counts from midnight; older hours fall out")
    func hourlyCounts() async throws {
        let fixture = try AuditFixture()
        let clock = Clock(try Self.date("2026-12-05T09:10:00Z"))
        let log = try Self.log(fixture, clock: clock)
        func at(_ time: String, _ action: String, outcome: String = "success") async throws {
            let date = try Self.date(time)
            clock.time.withLock { $0 = date }
            try await log.append(AuditEvent(actor: "owner", action: action, outcome: outcome))
        }
        try await at("2026-12-05T09:10:00Z", "agent.message")  // more than 24 hours before: not shown
        try await at("2026-12-05T23:30:00Z", "agent.message")  // yesterday, within 24 hours
        try await at("2026-12-06T08:05:00Z", "agent.message")
        try await at("2026-12-06T08:06:00Z", "agent.tool.run")
        try await at("2026-12-06T08:07:00Z", "agent.tool.run")
        try await at("2026-12-06T08:08:00Z", "agent.model")  // neither a message nor a tool call
        try await at("2026-12-06T10:59:59Z", "agent.message")
        try await at("2026-12-06T11:00:00Z", "audit.verify", outcome: "broken")
        try await at("2026-12-06T11:01:00Z", "audit.verify", outcome: "intact")

        let activity = try await AuditActivity.read(fixture.database, now: try Self.date("2026-12-06T11:15:00Z"))
        #expect(activity.hours.count == 24)
        #expect(activity.hours.first?.hour == "2026-12-05T12" && activity.hours.last?.hour == "2026-12-06T11")
        let byHour = Dictionary(uniqueKeysWithValues: activity.hours.map { ($0.hour, $0) })
        #expect(byHour["2026-12-05T23"]?.messages == 1)
        #expect(byHour["2026-12-06T08"]?.messages == 1 && byHour["2026-12-06T08"]?.toolCalls == 2)
        #expect(byHour["2026-12-06T10"]?.messages == 1)
        #expect(activity.hours.reduce(0) { $0 + $1.messages } == 3, "the entry from 26 hours ago is outside the chart")
        #expect(activity.messagesToday == 2 && activity.toolCallsToday == 2)
        #expect(activity.lastVerify?.outcome == "intact")
        #expect(activity.lastVerify?.time.hasPrefix("2026-12-06T11:01") == true)
    }

    @Test("an empty log: 24 empty hours, nothing today, never verified")
    func emptyLog() async throws {
        let fixture = try AuditFixture()
        let activity = try await AuditActivity.read(fixture.database)
        #expect(activity.hours.count == 24 && activity.hours.allSatisfy { $0.messages == 0 && $0.toolCalls == 0 })
        #expect(activity.messagesToday == 0 && activity.toolCallsToday == 0)
        #expect(activity.lastVerify == nil)
    }
}
