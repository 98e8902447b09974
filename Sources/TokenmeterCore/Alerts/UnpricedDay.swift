/// One UTC day of one unpriced model.
struct UnpricedDay: PeriodSlot, Equatable {
    var start: EpochMillis
    var end: EpochMillis
    var requests: Int64 = 0
    var published = false

    init(start: EpochMillis, end: EpochMillis) { self.start = start; self.end = end }
}
