/// One period of one `[[outcome_limit]]` rule.
struct UnitCostPeriod: PeriodSlot, Equatable {
    var start: EpochMillis
    var end: EpochMillis
    var spend: Money = .zero
    var outcomes: Int64 = 0
    var byWorkflow: [UInt32: Money] = [:]
    var published = false

    init(start: EpochMillis, end: EpochMillis) { self.start = start; self.end = end }
}
