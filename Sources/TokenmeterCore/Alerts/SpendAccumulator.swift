/// What one usage partition counted for the alert rules since its last changelog record, in spend mode
/// (issue 9): instead of judging each event locally, the pipeline adds it here, and the sums travel to the
/// alert shards. Aggregated per (kind, workflow, owner, model or outcome, priced, event-time minute):
/// a minute is finer than any period, spike window or forecast bucket, so the shard judges with the same
/// periods; within a minute the sum carries the latest event time.
///
/// Per event: one hash lookup and integer additions; no allocation once a key has been seen in the
/// interval (`removeAll` keeps the capacity).
public struct SpendAccumulator: Sendable {
    public struct Key: Hashable, Sendable {
        public var outcome: Bool
        public var priced: Bool
        public var workflow: UInt32
        public var owner: UInt32
        /// The model (usage) or the outcome name (outcome); `SeriesKey.none` when the event had no model.
        public var item: UInt32
        public var minute: Int64
    }

    public struct Sum: Sendable, Equatable {
        public var cost: Money = .zero
        /// Requests (usage) or outcomes (outcome).
        public var count: Int64 = 0
        public var latest: EpochMillis = .min
    }

    public private(set) var sums: [Key: Sum] = [:]

    public init() {}

    public var isEmpty: Bool { sums.isEmpty }

    @inline(__always)
    public mutating func addUsage(workflow: UInt32, owner: UInt32, model: UInt32, cost: Money?, requests: Int64, time: EpochMillis) {
        let k = Key(outcome: false, priced: cost != nil, workflow: workflow, owner: owner, item: model, minute: Self.minute(time))
        add(k, cost: cost ?? .zero, count: requests, time: time)
    }

    @inline(__always)
    public mutating func addOutcome(workflow: UInt32, owner: UInt32, outcome: UInt32, count: Int64, time: EpochMillis) {
        let k = Key(outcome: true, priced: false, workflow: workflow, owner: owner, item: outcome, minute: Self.minute(time))
        add(k, cost: .zero, count: count, time: time)
    }

    @inline(__always)
    private mutating func add(_ k: Key, cost: Money, count: Int64, time: EpochMillis) {
        sums[k, default: Sum()].cost += cost
        sums[k]!.count &+= count
        if time > sums[k]!.latest { sums[k]!.latest = time }
    }

    public mutating func removeAll() { sums.removeAll(keepingCapacity: true) }

    static func minute(_ t: EpochMillis) -> Int64 {
        let m = t / 60_000
        return t < 0 && t % 60_000 != 0 ? m - 1 : m
    }
}

/// One aggregated contribution as a shard receives it (names interned in the shard's table).
public struct SpendEntry: Sendable, Equatable {
    public var outcome: Bool
    public var priced: Bool
    public var workflow: UInt32
    public var owner: UInt32
    public var item: UInt32
    public var cost: Money
    public var count: Int64
    public var time: EpochMillis
}
