/// One period of one `[[budget]]` rule: the running total, where it came from, and what was published.
struct BudgetPeriodState: PeriodSlot, Equatable {
    var start: EpochMillis
    var end: EpochMillis
    var total: Money = .zero
    /// The latest event time counted in the period ("elapsed" for the forecast is measured to here).
    var latest: EpochMillis
    /// Spend per workflow id, for `top_workflows`.
    var byWorkflow: [UInt32: Money] = [:]
    /// Spend per 1/96 of the period (femtos), for the forecast's recent rate.
    var buckets: [Int128]
    /// Threshold percentages already published this period.
    var published: [Int] = []
    var forecastPublished = false
    /// The total (femtos) at which the lowest unpublished threshold is crossed; `Int128.max` when none:
    /// the per-event check is one comparison.
    var nextCrossing: Int128 = .max

    init(start: EpochMillis, end: EpochMillis) {
        self.start = start; self.end = end; self.latest = start
        self.buckets = Array(repeating: 0, count: BudgetForecast.bucketCount)
    }

    /// Total needed for `pct`% of `amount`: the smallest total with total x 100 >= amount x pct.
    static func crossingTotal(_ amount: Money, pct: Int) -> Int128 {
        let need = amount.femtos * Int128(pct)
        return need <= 0 ? 0 : (need + 99) / 100
    }

    mutating func updateNextCrossing(_ rule: BudgetRule) {
        nextCrossing = .max
        for pct in rule.thresholds where !published.contains(pct) {
            nextCrossing = BudgetPeriodState.crossingTotal(rule.amount, pct: pct)
            return
        }
    }
}
