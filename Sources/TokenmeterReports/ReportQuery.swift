import TokenmeterCore

/// What `tokenmeter report` was asked.
public struct ReportQuery: Sendable {
    public var dir: String
    /// Inclusive start; a row counts when its whole window lies in [from, to).
    public var from: EpochMillis?
    /// Exclusive end.
    public var to: EpochMillis?
    /// A window label (`1h`); nil chooses one (see `WindowChoice`).
    public var window: String?
    public var by: [ReportDimension] = [.workflow]
    public var filter = ReportFilter()
    /// Keep the N costliest keys; the rest are summed into one `(other)` line.
    public var top: Int?
    /// Add the previous span of equal length, and the changes against it.
    public var comparePrevious = false
    /// Without `window`: prefer the largest covering window size that still gives at least this many
    /// windows in the span (the HTML charts need points to show a shape).
    public var minBuckets: Int?

    public init(dir: String) { self.dir = dir }

    /// RFC 3339 (`2026-11-29T10:00:00Z`) or a date (`2026-11-29`, midnight UTC).
    public static func parseTime(_ text: String) -> EpochMillis? {
        RFC3339.parse(text.trimmingSpaces, allowDateOnly: true)
    }
}
