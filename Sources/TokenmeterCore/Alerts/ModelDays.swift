/// Per model, its current and previous UTC day (`PeriodRing`): the bookkeeping of the alerts raised once
/// per model per day (`unpriced_model`, `unrecognized_usage`).
///
/// A model whose newest day record ends a day or more before the newest day any model was seen on starts
/// over (a late request for one of its old days publishes that day's alert again, under the same
/// `alert_id`), and `forgetIdle` drops such models, so that a stream of unknown model names does not stay
/// in memory for ever; the live rule and the forgetting agree, so forgetting changes no alert.
struct ModelDays {
    var index: [UInt32: Int] = [:]
    var models: [UInt32] = []
    var days: [PeriodRing<UnpricedDay>] = []
    /// The newest day any request fell on.
    var newestDayStart: EpochMillis = .min

    static func isIdle(_ last: UnpricedDay, newestDayStart: EpochMillis) -> Bool {
        last.end <= newestDayStart &- AlertPeriods.dayMillis
    }

    /// The model's day record for `time`, as (model position, slot), created when needed; nil when `time`
    /// is older than the two days the model keeps.
    mutating func slot(model: UInt32, time: EpochMillis) -> (m: Int, i: Int)? {
        let dayStart = floorDiv(time, AlertPeriods.dayMillis) * AlertPeriods.dayMillis
        if dayStart > newestDayStart { newestDayStart = dayStart }
        let m: Int
        if let found = index[model] {
            m = found
            if let last = days[m].slots.last, ModelDays.isIdle(last, newestDayStart: newestDayStart) { days[m] = PeriodRing() }
        } else {
            m = models.count
            index[model] = m
            models.append(model)
            days.append(PeriodRing())
        }
        guard let i = days[m].index(for: time, period: .day, make: UnpricedDay.init) else { return nil }
        return (m, i)
    }

    /// Adds `requests` to the model's day of `time`; returns that day when this is its first count (the
    /// moment to publish the day's alert, marked published now), nil otherwise or for a day too old to keep.
    mutating func count(_ requests: Int64, model: UInt32, time: EpochMillis) -> UnpricedDay? {
        guard let (m, i) = slot(model: model, time: time) else { return nil }
        days[m].slots[i].requests &+= requests
        guard !days[m].slots[i].published else { return nil }
        days[m].slots[i].published = true
        return days[m].slots[i]
    }

    /// Drops the models idle by the rule above.
    mutating func forgetIdle() {
        guard newestDayStart != .min else { return }
        var kept = ModelDays()
        kept.newestDayStart = newestDayStart
        for (m, model) in models.enumerated() {
            guard let last = days[m].slots.last, !ModelDays.isIdle(last, newestDayStart: newestDayStart) else { continue }
            kept.index[model] = kept.models.count
            kept.models.append(model)
            kept.days.append(days[m])
        }
        self = kept
    }

    func encode(into w: inout BinaryWriter, names: StringTable) {
        w.count(models.count)
        for (m, model) in models.enumerated() {
            w.string(AlertText.name(model, names))
            w.count(days[m].slots.count)
            for d in days[m].slots {
                w.i64(d.start); w.i64(d.end); w.i64(d.requests); w.u8(d.published ? 1 : 0)
            }
        }
    }

    /// Usage without a model was saved under the placeholder name: it must come back as the absent id, or
    /// the next such usage would open a second day record and publish its alert again.
    static func decode(from r: inout BinaryReader, names: inout StringTable) throws -> ModelDays {
        var out = ModelDays()
        for _ in 0..<(try r.count()) {
            let modelName = try r.string()
            let model = modelName == AlertText.noneName ? SeriesKey.none : names.intern(modelName)
            var ring = PeriodRing<UnpricedDay>()
            for _ in 0..<(try r.count()) {
                var d = UnpricedDay(start: try r.i64(), end: try r.i64())
                d.requests = try r.i64(); d.published = try r.u8() != 0
                ring.slots.append(d)
            }
            if let last = ring.slots.last { out.newestDayStart = max(out.newestDayStart, last.start) }
            out.index[model] = out.models.count
            out.models.append(model)
            out.days.append(ring)
        }
        return out
    }
}
