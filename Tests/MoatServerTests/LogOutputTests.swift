import Foundation
import Logging
import MoatAdmin
import MoatApp
import MoatConfig
import MoatConsole
import MoatHTTP
import MoatNet
import Synchronization
import Testing

@Suite struct LogOutputTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    @Test("JSON log lines are one valid JSON object each, with escaped control characters")
    func jsonLines() throws {
        let sink = Lines()
        var handler = JSONLinesLogHandler(label: "moat") { sink.append($0) }
        handler.logLevel = .info
        let logger = Logger(label: "moat") { _ in handler }
        logger.info("hello \"world\"\nsecond line", metadata: ["path": "/a\u{1b}[31m", "status": "200"])
        logger.debug("not logged at info")
        let lines = sink.all
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(line.hasSuffix("}\n"))
        #expect(line.dropLast().contains("\n") == false)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
        )
        #expect(object["message"] == "hello \"world\"\nsecond line")
        #expect(object["level"] == "info")
        #expect(object["path"] == "/a\u{1b}[31m")
        #expect(object["time"]?.hasSuffix("Z") == true)
    }

    @Test("for journald each JSON line starts with its level's syslog priority, and the rest is the same JSON object")
    func journalPriorityPrefix() throws {
        let sink = Lines()
        var handler = JSONLinesLogHandler(label: "moat") { sink.append($0) }
        handler.logLevel = .debug
        handler.syslogPrefix = true
        let logger = Logger(label: "moat") { _ in handler }
        logger.debug("d")
        logger.info("i")
        logger.notice("n")
        logger.warning("w")
        logger.error("e")
        logger.critical("c")
        let lines = sink.all
        #expect(lines.map { String($0.prefix(3)) } == ["<7>", "<6>", "<5>", "<4>", "<3>", "<2>"])
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(lines[3].dropFirst(3).utf8)) as? [String: String])
        #expect(object["level"] == "warning" && object["message"] == "w")
    }
}
