import TokenmeterCore

/// A finished report: the span, the window size it was read at (and why), the main table (`--by`), any
/// extra tables a format asked for (the HTML charts), and what reading cost.
public struct Report: Sendable {
    public var query: ReportQuery
    public var window: String
    public var windowMillis: Int64
    /// Why this window size was used, in one sentence.
    public var windowReason: String
    public var from: EpochMillis
    public var to: EpochMillis
    /// Start of the previous span (`--compare previous`); it ends at `from`.
    public var previousFrom: EpochMillis?
    /// The first window start and last window end of the rows read in the span (nil: no rows): how
    /// complete the span is.
    public var dataStart: EpochMillis?
    public var dataEnd: EpochMillis?
    public var generatedAt: EpochMillis
    public var main: ReportTable
    /// Extra groupings, keyed by their dimensions' description joined by `,`.
    public var extra: [String: ReportTable] = [:]
    /// The rows read (every row of the chosen window in the span and the previous span, after filters),
    /// for the `focus` format. Filled only when asked (`keepRows`).
    public var rows: [RollupRow] = []
    /// The tag names carried by the rows of the span, before filters, sorted.
    public var tagsSeen: [String] = []
    public var filesRead = 0
    public var rowsRead = 0
    public var rowsUsed = 0
    public var readNanos: UInt64 = 0

    public init(query: ReportQuery, window: String, windowMillis: Int64, windowReason: String, from: EpochMillis,
                to: EpochMillis, previousFrom: EpochMillis?, generatedAt: EpochMillis, main: ReportTable) {
        self.query = query; self.window = window; self.windowMillis = windowMillis; self.windowReason = windowReason
        self.from = from; self.to = to; self.previousFrom = previousFrom; self.generatedAt = generatedAt; self.main = main
    }

    public func extra(_ dims: [ReportDimension]) -> ReportTable? {
        extra[Report.key(dims)]
    }

    public static func key(_ dims: [ReportDimension]) -> String { dims.map(\.description).joined(separator: ",") }
}
