/// What one usage partition counted for the alert rules since its last changelog record, in spend mode
/// (`kafka.spend_topic`): instead of judging each event locally, the pipeline adds it here, and the sums travel to the
/// alert shards. Aggregated per (kind, workflow, owner, model or outcome, priced, event-time minute):
/// a minute is finer than any period, spike window or forecast bucket, so the shard judges with the same
/// periods; within a minute the sum carries the latest event time.
///
/// Why not a `Dictionary`: this runs for every counted event. `sums[k, default:]` plus in-place updates
/// hash the key with SipHash several times per event; here the key's integer fields are mixed once and
/// probed in an open-addressing table of indices into dense `keys`/`sums` arrays. No allocation once a
/// key has been seen in the interval; `removeAll` keeps the capacity.
public struct SpendAccumulator: Sendable {
    public struct Key: Hashable, Sendable {
        public var outcome: Bool
        public var priced: Bool
        public var workflow: UInt32
        public var owner: UInt32
        /// The model (usage) or the outcome name (outcome); `SeriesKey.none` when the event had no model.
        public var item: UInt32
        public var minute: Int64
        /// A request whose usage block no row reads (`unrecognized_usage`); `note` is then the interned
        /// text of the block's key names (`SeriesKey.none` otherwise).
        public var unrecognized: Bool = false
        public var note: UInt32 = SeriesKey.none
    }

    public struct Sum: Sendable, Equatable {
        public var cost: Money = .zero
        /// Requests (usage) or outcomes (outcome).
        public var count: Int64 = 0
        public var latest: EpochMillis = .min
    }

    /// The entries in first-seen order (`keys[i]` sums to `sums[i]`).
    public private(set) var keys: [Key] = []
    public private(set) var sums: [Sum] = []
    /// Power-of-two open-addressing table of indices into `keys`; -1 is empty. Empty until the first add,
    /// so the many partition states that never see spend mode cost nothing.
    private var slots: [Int32] = []

    public init() {}

    public var isEmpty: Bool { keys.isEmpty }
    public var count: Int { keys.count }

    @inline(__always)
    public mutating func addUsage(workflow: UInt32, owner: UInt32, model: UInt32, cost: Money?, requests: Int64, time: EpochMillis) {
        let k = Key(outcome: false, priced: cost != nil, workflow: workflow, owner: owner, item: model, minute: Self.minute(time))
        add(k, cost: cost ?? .zero, count: requests, time: time)
    }

    /// One request with a usage block no row reads; `keys` is the interned text of the block's key names.
    public mutating func addUnrecognized(workflow: UInt32, owner: UInt32, model: UInt32, keys: UInt32, time: EpochMillis) {
        let k = Key(outcome: false, priced: false, workflow: workflow, owner: owner, item: model, minute: Self.minute(time),
                    unrecognized: true, note: keys)
        add(k, cost: .zero, count: 1, time: time)
    }

    @inline(__always)
    public mutating func addOutcome(workflow: UInt32, owner: UInt32, outcome: UInt32, count: Int64, time: EpochMillis) {
        let k = Key(outcome: true, priced: false, workflow: workflow, owner: owner, item: outcome, minute: Self.minute(time))
        add(k, cost: .zero, count: count, time: time)
    }

    @inline(__always)
    private mutating func add(_ k: Key, cost: Money, count: Int64, time: EpochMillis) {
        if slots.isEmpty { slots = [Int32](repeating: -1, count: 64) }
        let mask = slots.count - 1
        var i = Self.slot(k, mask)
        while true {
            let s = Int(slots[i])
            if s < 0 { break }
            if keys[s] == k {
                sums[s].cost += cost
                sums[s].count &+= count
                if time > sums[s].latest { sums[s].latest = time }
                return
            }
            i = (i + 1) & mask
        }
        slots[i] = Int32(keys.count)
        keys.append(k)
        sums.append(Sum(cost: cost, count: count, latest: time))
        if keys.count * 10 > slots.count * 7 { grow() }
    }

    /// Doubles the table; the dense arrays stay as they are, only their indices are placed again.
    private mutating func grow() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        let mask = slots.count - 1
        for (n, k) in keys.enumerated() {
            var i = Self.slot(k, mask)
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(n)
        }
    }

    public mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        sums.removeAll(keepingCapacity: true)
        for i in slots.indices { slots[i] = -1 }
    }

    /// Multiply-xorshift of the key's integers: ids are small dense integers, so they need spreading, but
    /// nothing persisted depends on this (the payload order is sorted by name), so it only has to be fast.
    @inline(__always)
    private static func slot(_ k: Key, _ mask: Int) -> Int {
        var h = (UInt64(k.workflow) | UInt64(k.owner) << 32) &* 0x9E37_79B9_7F4A_7C15
        h ^= (UInt64(k.item) | UInt64(k.outcome ? 1 : 0) << 32 | UInt64(k.priced ? 2 : 0) << 32) &* 0xBF58_476D_1CE4_E5B9
        h ^= UInt64(bitPattern: k.minute) &* 0x94D0_49BB_1331_11EB
        if k.unrecognized { h ^= UInt64(k.note) &* 0xD6E8_FEB8_6659_FD93 }
        h ^= h >> 31
        return Int(truncatingIfNeeded: h) & mask
    }

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
    /// `unrecognized_usage` requests (see `SpendAccumulator.Key`); `note` is the block's key names.
    public var unrecognized: Bool
    public var note: UInt32

    public init(outcome: Bool, priced: Bool, workflow: UInt32, owner: UInt32, item: UInt32, cost: Money, count: Int64,
                time: EpochMillis, unrecognized: Bool = false, note: UInt32 = SeriesKey.none) {
        self.outcome = outcome; self.priced = priced; self.workflow = workflow; self.owner = owner; self.item = item
        self.cost = cost; self.count = count; self.time = time; self.unrecognized = unrecognized; self.note = note
    }
}
