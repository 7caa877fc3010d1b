import Foundation
public import Logging
import ServiceContextModule
import Storage

/// How the server writes its log: text lines (swift-log's stream handler) or one JSON object
/// per line for log shippers (`LOG_FORMAT=json`). Either way every line written inside a call
/// or a job carries its trace (`trace_id`, `span_id`) from the task's `ServiceContext`.
public enum LogOutput: String, Sendable, CaseIterable {
    case text
    case json

    /// Installs the handler for every logger made from now on; call once, first thing.
    public func bootstrap() {
        switch self {
        case .text:
            LoggingSystem.bootstrap({ label, provider in StreamLogHandler.standardError(label: label, metadataProvider: provider) },
                                    metadataProvider: Self.traceMetadata)
        case .json:
            LoggingSystem.bootstrap({ label, provider in JSONLogHandler(label: label, metadataProvider: provider) },
                                    metadataProvider: Self.traceMetadata)
        }
    }

    /// The current task's trace, as log metadata.
    public static let traceMetadata = Logger.MetadataProvider {
        guard let trace = ServiceContext.current?.traceContext else { return [:] }
        return ["trace_id": "\(trace.traceID)", "span_id": "\(trace.spanID)"]
    }
}

/// One JSON object per line on standard error: time, level, logger label, message, source
/// location and every metadata key (the handler's, the provider's, the call's).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String, metadataProvider: Logger.MetadataProvider?) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: Any] = [
            "time": Self.timestamp(), "level": event.level.rawValue, "logger": label, "message": event.message.description,
            "source": "\(event.file.split(separator: "/").last ?? ""):\(event.line)",
        ]
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for (key, value) in merged { fields[key] = Self.json(value) }
        guard var line = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line.append(UInt8(ascii: "\n"))
        // One write per line: lines of concurrent loggers never interleave.
        line.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    private static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(json)
        case .dictionary(let values): values.mapValues(json)
        }
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, now.tv_nsec / 1_000_000)
    }
}
