/// Cuts a usage partition's `SpendAccumulator` into one payload per alert shard that needs any of it
/// (see `SpendShard` for who owns what), and reads such a payload back. Payloads carry names, not ids
/// (ids are per process), and entries in a fixed order, so the same sums always give the same bytes.
public struct SpendRouter {
    static let magic: UInt32 = 0x4552_4D54  // "TMRE"
    /// 2 added `unrecognized_usage` entries (flag 8, followed by the block's key names); a version 1
    /// payload is still read.
    static let version: UInt8 = 2

    let budgets: [BudgetTracker]
    let spikes: [SpikeTracker]
    let limits: [UnitCostTracker]
    public let shardCount: Int

    public init(budgets: [BudgetRule], spikes: [SpikeRule], outcomeLimits: [OutcomeLimitRule], shardCount: Int) {
        self.budgets = budgets.map(BudgetTracker.init)
        self.spikes = spikes.map(SpikeTracker.init)
        self.limits = outcomeLimits.map(UnitCostTracker.init)
        self.shardCount = max(shardCount, 1)
    }

    /// The shards that judge a contribution of `workflow`/`owner` (names) of this kind.
    func shards(outcome: Bool, priced: Bool, unrecognized: Bool = false, workflow w: String, owner o: String,
                item: String) -> Set<Int> {
        var out = Set<Int>()
        if unrecognized {
            out.insert(SpendShard.unrecognized(model: item, count: shardCount))
            return out
        }
        if outcome {
            for l in limits where l.matches(workflow: w, owner: o) && l.rule.outcome == item {
                out.insert(SpendShard.outcomeLimit(l.identity, count: shardCount))
            }
            return out
        }
        guard priced else {
            out.insert(SpendShard.unpriced(model: item, count: shardCount))
            return out
        }
        for b in budgets where b.matches(workflow: w, owner: o) { out.insert(SpendShard.budget(b.identity, count: shardCount)) }
        for l in limits where l.matches(workflow: w, owner: o) { out.insert(SpendShard.outcomeLimit(l.identity, count: shardCount)) }
        for s in spikes { out.insert(SpendShard.spike(s.identity, key: s.rule.by == .workflow ? w : o, count: shardCount)) }
        return out
    }

    /// Shard index -> payload, for every shard that needs at least one entry.
    public func route(_ acc: SpendAccumulator, names: StringTable) -> [Int: [UInt8]] {
        func name(_ id: UInt32) -> String { AlertText.name(id, names) }
        func flags(_ k: SpendAccumulator.Key) -> UInt8 {
            (k.outcome ? 1 : 0) | (k.priced ? 2 : 0) | (k.item == SeriesKey.none ? 4 : 0) | (k.unrecognized ? 8 : 0)
        }
        // Who needs a sum does not depend on its minute: match globs and hash once per (kind, workflow,
        // owner, item), not once per minute of it.
        var shardsOf: [SpendAccumulator.Key: [Int]] = [:]
        var perShard: [Int: [(SpendAccumulator.Key, SpendAccumulator.Sum)]] = [:]
        for (k, v) in zip(acc.keys, acc.sums) {
            var anyMinute = k
            anyMinute.minute = 0
            let targets: [Int]
            if let t = shardsOf[anyMinute] {
                targets = t
            } else {
                targets = Array(shards(outcome: k.outcome, priced: k.priced, unrecognized: k.unrecognized,
                                       workflow: name(k.workflow), owner: name(k.owner), item: name(k.item)))
                shardsOf[anyMinute] = targets
            }
            for s in targets { perShard[s, default: []].append((k, v)) }
        }
        var out: [Int: [UInt8]] = [:]
        for (shard, entries) in perShard {
            // By names (ids are per process) and flags (a missing model and one literally named "(none)"
            // print alike): no two keys tie, so equal sums always give equal bytes.
            let sorted = entries.map { e in
                ((e.0.minute, flags(e.0), name(e.0.workflow), name(e.0.owner), name(e.0.item),
                  e.0.unrecognized ? name(e.0.note) : ""), e)
            }.sorted { $0.0 < $1.0 }.map(\.1)
            var w = BinaryWriter()
            w.header(magic: SpendRouter.magic, version: SpendRouter.version)
            w.count(sorted.count)
            for (k, v) in sorted {
                w.u8(flags(k))
                w.string(name(k.workflow)); w.string(name(k.owner))
                if k.item != SeriesKey.none { w.string(name(k.item)) }
                if k.unrecognized { w.string(k.note == SeriesKey.none ? "" : name(k.note)) }
                w.i128(v.cost.femtos); w.i64(v.count); w.i64(v.latest)
            }
            out[shard] = w.bytes
        }
        return out
    }

    public static func decode(_ bytes: [UInt8], names: inout StringTable) throws(CheckpointFormatError) -> [SpendEntry] {
        var r = BinaryReader(bytes)
        guard try r.u32() == magic else { throw CheckpointFormatError(reason: "not a tokenmeter spend payload") }
        let v = try r.u8()
        guard v == 1 || v == version else { throw CheckpointFormatError(reason: "spend payload version \(v), expected \(version)") }
        var out: [SpendEntry] = []
        for _ in 0..<(try r.count()) {
            let flags = try r.u8()
            let workflow = names.intern(try r.string()), owner = names.intern(try r.string())
            let item = flags & 4 != 0 ? SeriesKey.none : names.intern(try r.string())
            let unrecognized = flags & 8 != 0
            var note = SeriesKey.none
            if unrecognized {
                let keys = try r.string()
                if !keys.isEmpty { note = names.intern(keys) }
            }
            out.append(SpendEntry(outcome: flags & 1 != 0, priced: flags & 2 != 0, workflow: workflow, owner: owner, item: item,
                                  cost: Money(femtos: try r.i128()), count: try r.i64(), time: try r.i64(),
                                  unrecognized: unrecognized, note: note))
        }
        guard r.remaining == 0 else { throw CheckpointFormatError(reason: "\(r.remaining) trailing bytes in a spend payload") }
        return out
    }
}
