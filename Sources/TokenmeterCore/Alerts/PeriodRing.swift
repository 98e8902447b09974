/// State kept per calendar period.
protocol PeriodSlot {
    var start: EpochMillis { get }
    var end: EpochMillis { get }
}

/// The current and the previous period of one rule, oldest first (at most two slots). An event finds its
/// own period by its event time: the current one, a newer one (which becomes current; the oldest slot is
/// expired), or the period just before the current one (late events). Anything older is not counted by
/// the rule (the rollups still count it): its crossings would have to be re-judged without their state.
struct PeriodRing<Slot: PeriodSlot> {
    var slots: [Slot] = []

    /// The slot of `t`, created with `make(start, end)` when needed; nil when `t` is older than both kept.
    @inline(__always)
    mutating func index(for t: EpochMillis, period: BudgetPeriod, make: (EpochMillis, EpochMillis) -> Slot) -> Int? {
        if let last = slots.last {
            if t >= last.start && t < last.end { return slots.count - 1 }
            if t >= last.end {
                let b = AlertPeriods.bounds(period, containing: t)
                if slots.count == 2 { slots.removeFirst() }
                slots.append(make(b.start, b.end))
                return slots.count - 1
            }
            if slots.count == 2 {
                return t >= slots[0].start && t < slots[0].end ? 0 : nil
            }
            // One slot and an older event: only the period right before it may be created.
            let previous = AlertPeriods.bounds(period, containing: last.start - 1)
            guard t >= previous.start && t < previous.end else { return nil }
            slots.insert(make(previous.start, previous.end), at: 0)
            return 0
        }
        let b = AlertPeriods.bounds(period, containing: t)
        slots.append(make(b.start, b.end))
        return 0
    }
}
