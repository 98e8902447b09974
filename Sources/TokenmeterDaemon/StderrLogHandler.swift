import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Logs one line per record to stderr. Under systemd (`JOURNAL_STREAM` set) each line starts with the
/// `<N>` syslog priority that journald reads, and no timestamp (journald adds its own).
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String
    private let journald: Bool

    public init(label: String) {
        self.label = label
        self.journald = getenv("JOURNAL_STREAM") != nil
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = ""
        if journald {
            line = "<\(priority(event.level))>"
        } else {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            line = RFC3339Clock.format(Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec / 1_000_000)) + " "
        }
        line += "\(event.level) \(event.message)"
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(v)" }
        line += "\n"
        // One write(2) per line: lines from several threads never interleave mid-line.
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    private func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}

import TokenmeterCore
enum RFC3339Clock {
    static func format(_ ms: Int64) -> String { RFC3339.format(ms, fraction: true) }
}
