import TokenmeterCore

/// Budget vs actual for the HTML report: for each `[[budget]]` of the config, its calendar period that
/// contains the end of the report's span, the spend in its scope from the period's start to that point
/// (read from the rollups, so it is the same money the report shows), the cumulative spend over the
/// period (burn-down), a straight-line forecast for the whole period, and the thresholds crossed.
///
/// The forecast is the average rate so far (spend / elapsed, elapsed measured to the end of the last
/// window with data) carried to the end of the period. The daemon's `budget_forecast` alert blends in the
/// recent rate as well; the report keeps the simplest projection a reader can check by hand.
public struct BudgetStatus: Sendable {
    public var rule: BudgetRule
    public var periodStart: EpochMillis
    public var periodEnd: EpochMillis
    /// End of the last window with data in the period (or the period start when none).
    public var dataEnd: EpochMillis
    public var spent: Money
    /// Cumulative spend at the end of each window with data, in time order.
    public var cumulative: [(time: EpochMillis, spent: Money)]
    /// Projected spend at the period's end; nil before any spend.
    public var projected: Money?
    /// The thresholds (percent) already crossed.
    public var crossed: [Int]
    /// Why the status could not be read, when it could not.
    public var problem: String?

    public var usedShare: Double? {
        rule.amount.femtos == 0 ? nil : Double(spent.femtos) / Double(rule.amount.femtos)
    }
}

public enum ReportBudgets {
    /// The status of every budget at `asOf` (the report's end), reading `dir`.
    public static func compute(_ budgets: [BudgetRule], dir: String, asOf: EpochMillis, now: EpochMillis) -> [BudgetStatus] {
        budgets.map { b in
            let period = AlertPeriods.bounds(b.period, containing: asOf - 1)
            var s = BudgetStatus(rule: b, periodStart: period.start, periodEnd: period.end, dataEnd: period.start, spent: .zero,
                                 cumulative: [], projected: nil, crossed: [], problem: nil)
            var q = ReportQuery(dir: dir)
            q.from = period.start
            q.to = min(asOf, period.end)
            q.by = [.window]
            q.minBuckets = 24   // windows fine enough to see where the spend stops, for the forecast
            if let o = b.owner { q.filter.owners = ReportFilter.globs([o]) }
            if let w = b.workflow { q.filter.workflows = ReportFilter.globs([w]) }
            let r: Report
            do {
                r = try ReportEngine.run(q, now: now)
            } catch {
                s.problem = "\(error)"
                return s
            }
            var running = Money.zero
            for l in r.main.lines.sorted(by: { ($0.time ?? 0) < ($1.time ?? 0) }) {
                guard let t = l.time else { continue }
                running += l.current.cost
                s.cumulative.append((t + r.windowMillis, running))
            }
            s.spent = running
            s.dataEnd = r.dataEnd ?? period.start
            let elapsed = s.dataEnd - period.start
            if running.femtos > 0, elapsed > 0 {
                let rate = Double(running.femtos) / Double(elapsed)
                s.projected = Money(femtos: Int128((Double(running.femtos) + rate * Double(period.end - s.dataEnd)).rounded()))
            }
            s.crossed = b.thresholds.filter { running.femtos * 100 >= b.amount.femtos * Int128($0) }
            return s
        }
    }
}
