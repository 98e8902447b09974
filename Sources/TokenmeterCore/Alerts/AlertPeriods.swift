/// Calendar periods in UTC for budgets and unit-cost limits: `[start, end)` in epoch milliseconds.
/// hour and day are fixed lengths; a week starts on Monday 00:00 UTC (ISO 8601); a month starts on the
/// 1st at 00:00 UTC and has its real length (28 to 31 days).
public enum AlertPeriods {
    public static let hourMillis: Int64 = 3_600_000
    public static let dayMillis: Int64 = 86_400_000

    public static func bounds(_ period: BudgetPeriod, containing t: EpochMillis) -> (start: EpochMillis, end: EpochMillis) {
        switch period {
        case .hour:
            let s = floorDiv(t, hourMillis) * hourMillis
            return (s, s + hourMillis)
        case .day:
            let s = floorDiv(t, dayMillis) * dayMillis
            return (s, s + dayMillis)
        case .week:
            let days = floorDiv(t, dayMillis)
            // 1970-01-01 was a Thursday: days + 3 counts from a Monday.
            var sinceMonday = (days + 3) % 7
            if sinceMonday < 0 { sinceMonday += 7 }
            let s = (days - sinceMonday) * dayMillis
            return (s, s + 7 * dayMillis)
        case .month:
            let days = Int(floorDiv(t, dayMillis))
            let (y, m, _) = RFC3339.civilFromDays(days)
            let first = RFC3339.daysFromCivil(year: y, month: m, day: 1)
            let next = m == 12 ? RFC3339.daysFromCivil(year: y + 1, month: 1, day: 1)
                               : RFC3339.daysFromCivil(year: y, month: m + 1, day: 1)
            return (Int64(first) * dayMillis, Int64(next) * dayMillis)
        }
    }
}
