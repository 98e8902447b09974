import TokenmeterCore

/// The columns people read (terminal table, markdown, HTML table): money to cents, shares as percentages,
/// token counts compacted.
enum ReportHumanColumns {
    static func header(_ t: ReportTable) -> [String] {
        var h = t.dimensions.map(\.description)
        h += ["requests", "err%", "in tok", "cache%", "out tok", "reas%", "cost", "share", "$/1k req", "outcomes", "$/outcome",
              "value/$", "unpriced"]
        if t.previousTotal != nil { h += ["prev cost", "change", "change%"] }
        return h
    }

    /// How many leading columns are keys (left-aligned).
    static func keyCount(_ t: ReportTable) -> Int { t.dimensions.count }

    static func cells(_ l: ReportLine, _ t: ReportTable) -> [String] {
        let f = l.current
        var c = l.values.map { $0 ?? "-" }
        c += [
            ReportText.grouped(f.requests),
            ReportText.percent(f.errorShare),
            ReportText.compact(f.inputTokens),
            ReportText.percent(f.cacheReadShare),
            ReportText.compact(f.outputTokens),
            ReportText.percent(f.reasoningShare),
            ReportText.dollars(f.cost),
            ReportText.percent(f.share(of: t.total.cost)),
            f.costPer1kRequests.map { ReportText.dollars($0) } ?? "-",
            f.outcomeCount == 0 ? "-" : ReportText.grouped(f.outcomeCount),
            f.costPerOutcome.map { ReportText.dollars($0, decimals: $0.femtos < Money.femtosPerDollar ? 4 : 2) } ?? "-",
            f.valuePerCost.map { ReportText.fixed($0, 2) } ?? "-",
            f.unpricedRequests == 0 ? "-" : ReportText.grouped(f.unpricedRequests),
        ]
        if t.previousTotal != nil {
            let p = l.previous ?? ReportFigures()
            let change = l.costChange ?? .zero
            c += [ReportText.dollars(p.cost), (change.femtos > 0 ? "+" : "") + ReportText.dollars(change),
                  ReportText.signedPercent(l.costChangeRatio)]
        }
        return c
    }

    static func totalLine(_ t: ReportTable) -> ReportLine {
        var l = ReportLine(values: t.dimensions.enumerated().map { $0.offset == 0 ? "total" : "" })
        l.current = t.total
        l.previous = t.previousTotal
        return l
    }

    /// Index of the change column (for colouring), when comparing.
    static func changeColumns(_ t: ReportTable) -> Range<Int>? {
        t.previousTotal == nil ? nil : (header(t).count - 2)..<header(t).count
    }
}
