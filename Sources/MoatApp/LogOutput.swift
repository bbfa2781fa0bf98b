import Foundation
public import Logging
public import MoatConfig
import MoatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Sets up swift-log for the process: readable text on a terminal, one JSON object per line otherwise.
public enum LogOutput {
    /// Resolves `auto` by asking whether stderr is a terminal.
    public static func resolve(_ format: GatewayConfiguration.LogFormat) -> GatewayConfiguration.LogFormat {
        guard format == .auto else { return format }
        return isatty(STDERR_FILENO) == 1 ? .text : .json
    }

    /// True when stderr is the journal's stream socket (systemd sets `JOURNAL_STREAM` to its
    /// `device:inode`): each JSON line then starts with its syslog priority (`<4>` for a warning), which
    /// journald turns into the entry's priority (`journalctl -p warning`) and strips from the message.
    static func stderrIsJournal() -> Bool {
        guard let stream = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return stream == "\(info.st_dev):\(info.st_ino)"
    }

    /// Installs the process-wide log handler. Call once, before the first logger is made.
    public static func bootstrap(format: GatewayConfiguration.LogFormat, level: GatewayConfiguration.LogLevel) {
        let resolved = resolve(format)
        let logLevel = Logger.Level(rawValue: level.rawValue) ?? .info
        let journal = stderrIsJournal()
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            if resolved == .json {
                var lines = JSONLinesLogHandler(label: label)
                lines.syslogPrefix = journal
                handler = lines
            } else {
                handler = StreamLogHandler.standardError(label: label)
            }
            handler.logLevel = logLevel
            return handler
        }
    }
}

/// A log handler writing one JSON object per line to stderr, for journald and log shippers.
///
/// Fields: `time` (RFC 3339, UTC, milliseconds), `level`, `label`, `message`, then the metadata.
/// Each line is written with a single `write(2)` so concurrent lines never interleave.
public struct JSONLinesLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    /// Start each line with the syslog priority of its level (`<6>` for info), for journald.
    public var syslogPrefix = false
    let label: String
    let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLinesLogHandler.writeToStandardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var line = syslogPrefix ? "<\(Self.syslogPriority(event.level))>" : ""
        line += "{\"time\":\(Self.quote(Self.timestamp())),\"level\":\(Self.quote(event.level.rawValue))"
        line += ",\"label\":\(Self.quote(label)),\"message\":\(Self.quote(event.message.description))"
        for key in merged.keys.sorted() where !["time", "level", "label", "message"].contains(key) {
            line += ",\(Self.quote(key)):\(Self.quote("\(merged[key]!)"))"
        }
        line += "}\n"
        write(line)
    }

    public static let writeToStandardError: @Sendable (String) -> Void = { line in
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { if errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }

    static func quote(_ text: String) -> String {
        JSONText.quote(text)
    }

    /// syslog(3)'s priority for a level: debug 7, info 6, notice 5, warning 4, error 3, critical 2.
    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func timestamp() -> String {
        UTCTimestamp.format(secondsSince1970: Date().timeIntervalSince1970)
    }
}
