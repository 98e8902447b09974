import TokenmeterCore

/// One line of a report: its key (one value per `--by` dimension) and its figures in the span (and in the
/// previous span with `--compare previous`).
public struct ReportLine: Sendable {
    /// One value per dimension of the table, in order; nil for a null model/provider or a missing tag.
    /// Time dimensions hold RFC 3339 (`window`, `hour`) or a date (`day`).
    public var values: [String?]
    /// The start of the time bucket when the table has a time dimension.
    public var time: EpochMillis?
    /// True for the `(other)` line that sums the keys beyond `--top`.
    public var isOther = false
    public var current = ReportFigures()
    public var previous: ReportFigures?

    public init(values: [String?], time: EpochMillis? = nil) { self.values = values; self.time = time }

    /// Cost now minus cost in the previous span.
    public var costChange: Money? { previous.map { current.cost - $0.cost } }
    /// Relative change of cost; nil when there is no previous cost to compare with.
    public var costChangeRatio: Double? {
        guard let p = previous, p.cost.femtos != 0 else { return nil }
        return Double((current.cost - p.cost).femtos) / Double(p.cost.femtos)
    }

    /// The key as text for humans (`invoice-extraction / finance-ops`).
    public var label: String {
        values.map { $0 ?? "-" }.joined(separator: " / ")
    }
}
