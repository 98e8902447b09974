import TokenmeterCore

/// The lines of one grouping, sorted: by time when there is a time dimension, then by cost, largest first.
public struct ReportTable: Sendable {
    public var dimensions: [ReportDimension]
    public var lines: [ReportLine]
    public var total: ReportFigures
    public var previousTotal: ReportFigures?

    public init(dimensions: [ReportDimension], lines: [ReportLine], total: ReportFigures, previousTotal: ReportFigures?) {
        self.dimensions = dimensions; self.lines = lines; self.total = total; self.previousTotal = previousTotal
    }

    /// Index of the time dimension, if any.
    public var timeIndex: Int? { dimensions.firstIndex { $0.isTime } }

    /// The lines ordered by the size of their cost change, largest absolute change first (movers).
    public var movers: [ReportLine] {
        lines.filter { $0.previous != nil && !$0.isOther }.sorted {
            let a = $0.costChange!.femtos, b = $1.costChange!.femtos
            let aa = a < 0 ? -a : a, bb = b < 0 ? -b : b
            return aa != bb ? aa > bb : $0.label < $1.label
        }
    }
}
