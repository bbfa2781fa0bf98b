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

    /// Installs the process-wide log handler. Call once, before the first logger is made.
    public static func bootstrap(format: GatewayConfiguration.LogFormat, level: GatewayConfiguration.LogLevel) {
        let resolved = resolve(format)
        let logLevel = Logger.Level(rawValue: level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                resolved == .json ? JSONLinesLogHandler(label: label) : StreamLogHandler.standardError(label: label)
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
        var line = "{\"time\":\(Self.quote(Self.timestamp())),\"level\":\(Self.quote(event.level.rawValue))"
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

    static func timestamp() -> String {
        UTCTimestamp.format(secondsSince1970: Date().timeIntervalSince1970)
    }
}
