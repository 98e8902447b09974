import TokenmeterCore

/// One rollup row with its names interned in a `StringTable` (see `RollupRecordReader`): the report
/// engine's hot path filters and groups by `UInt32` ids, so reading a year of files builds each distinct
/// name once instead of one `String` per field per row.
public struct RollupRecord: Sendable {
    /// The id used for a JSON `null` (outcome rows' model and provider).
    public static let none = UInt32.max

    public struct Tag: Sendable, Equatable {
        public var name: UInt32
        public var value: UInt32
        public init(name: UInt32, value: UInt32) { self.name = name; self.value = value }
    }

    public var window: UInt32 = RollupRecord.none
    public var windowStart: EpochMillis = 0
    public var windowEnd: EpochMillis = 0
    public var workflow: UInt32 = RollupRecord.none
    public var owner: UInt32 = RollupRecord.none
    public var model: UInt32 = RollupRecord.none
    public var provider: UInt32 = RollupRecord.none
    public var tags: [Tag] = []
    /// Counters; `counters.outcomes` names are ids in the same table.
    public var counters = RollupCounters()
    public var late = false

    public init() {}

    /// The value id of tag `name`, or `none` when the row does not carry it.
    @inlinable public func tag(_ name: UInt32) -> UInt32 {
        for t in tags where t.name == name { return t.value }
        return RollupRecord.none
    }

    mutating func reset() {
        window = RollupRecord.none; windowStart = 0; windowEnd = 0
        workflow = RollupRecord.none; owner = RollupRecord.none; model = RollupRecord.none; provider = RollupRecord.none
        tags.removeAll(keepingCapacity: true)
        let outcomes = counters.outcomes
        counters = RollupCounters()
        counters.outcomes = outcomes
        counters.outcomes.removeAll(keepingCapacity: true)
        late = false
    }

    /// The row with names resolved.
    public func row(_ strings: StringTable) -> RollupRow {
        var r = RollupRow()
        func name(_ id: UInt32) -> String? { id == RollupRecord.none ? nil : strings[id] }
        r.window = name(window) ?? ""
        r.windowStart = windowStart
        r.windowEnd = windowEnd
        r.workflow = name(workflow) ?? ""
        r.owner = name(owner) ?? ""
        r.model = name(model)
        r.provider = name(provider)
        for t in tags { r.tags[strings[t.name]] = strings[t.value] }
        r.counters = counters
        r.counters.outcomes = []
        for o in counters.outcomes { r.outcomes[strings[o.name], default: 0] += o.count }
        r.late = late
        return r
    }
}
