/// The spend projection of a budget period, used for `budget_forecast` and for `projected_usd`.
///
/// Method: the rate used to project the rest of the period blends the period's average rate with its
/// recent rate, half and half: `projected = spent + remaining x (avg_rate + recent_rate) / 2`.
/// - The average rate alone (LiteLLM's linear projection) reacts slowly to a workload that started or
///   grew mid-period, and keeps projecting a one-off burst forever.
/// - The recent rate alone follows the last hours' noise (the day/night cycle, one batch job).
/// - "Recent" is the last 8 of the period's 96 equal buckets (1/12 of the period: 5 minutes of an hour,
///   2 hours of a day, 14 hours of a week, about 2.5 days of a month), up to the latest event time.
/// Everything is measured in EVENT time: elapsed = latest event time seen in the period - period start,
/// so a replay of the same events projects the same numbers (no wall clock involved).
///
/// Noise guard: no projection until at least 10% of the period has elapsed AND at least 5% of the budget
/// has been spent. One expensive first event therefore never projects a crossing on its own, and a
/// handful of cents cannot project a crossing of a large budget.
///
/// The arithmetic is done in `Double` (a projection, not a sum) and rounded to cents.
enum BudgetForecast {
    static let bucketCount = 96
    static let recentBuckets = 8
    /// Minimum elapsed share of the period, in percent.
    static let minElapsedPct: Int64 = 10
    /// Minimum spend, in percent of the budget.
    static let minSpentPct: Int128 = 5

    struct Projection: Equatable {
        var projected: Money
        /// When the budget runs out at the blended rate; nil when it does not within the period.
        var exhaustion: EpochMillis?
    }

    static func bucketSize(start: EpochMillis, end: EpochMillis) -> Int64 {
        max(1, (end - start + Int64(bucketCount) - 1) / Int64(bucketCount))
    }

    static func bucketIndex(_ t: EpochMillis, start: EpochMillis, end: EpochMillis) -> Int {
        min(bucketCount - 1, max(0, Int((t - start) / bucketSize(start: start, end: end))))
    }

    /// Is the noise guard passed? Integer checks only: cheap enough for every event.
    @inline(__always)
    static func guardPassed(_ p: BudgetPeriodState, amount: Money) -> Bool {
        (p.latest - p.start) * 100 >= (p.end - p.start) * minElapsedPct && p.total.femtos * 100 >= amount.femtos * minSpentPct
    }

    static func project(_ p: BudgetPeriodState, amount: Money) -> Projection? {
        guard guardPassed(p, amount: amount) else { return nil }
        let elapsed = p.latest - p.start
        guard elapsed > 0 else { return nil }
        let size = bucketSize(start: p.start, end: p.end)
        let last = bucketIndex(p.latest, start: p.start, end: p.end)
        let first = max(0, last - recentBuckets + 1)
        var recentSpend: Int128 = 0
        for i in first...last { recentSpend += p.buckets[i] }
        let recentMs = max(1, p.latest - (p.start + Int64(first) * size))
        let total = Double(p.total.femtos)
        let rate = (total / Double(elapsed) + Double(recentSpend) / Double(recentMs)) / 2  // femtos per ms
        let remaining = Double(max(0, p.end - p.latest))
        let projectedFemtos = total + rate * remaining
        guard projectedFemtos.isFinite else { return nil }
        let centFemtos: Double = 1e13
        let cents = (projectedFemtos / centFemtos).rounded()
        let projected = Money(femtos: Int128(cents) * 10_000_000_000_000)
        var exhaustion: EpochMillis?
        if p.total >= amount {
            exhaustion = p.latest
        } else if rate > 0 {
            let ms = Double(amount.femtos - p.total.femtos) / rate
            if ms.isFinite && ms < remaining { exhaustion = p.latest + Int64(ms.rounded(.up)) }
        }
        return Projection(projected: projected, exhaustion: exhaustion)
    }
}
