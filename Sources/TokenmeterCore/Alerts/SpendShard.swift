/// Which alert shard (spend-topic partition) judges what, in spend mode (`kafka.spend_topic`). Every instance must
/// agree, so it is a stable hash of the rule's identity (plus the key for spike rules, the model for
/// unpriced models), never Swift's per-process `Hasher`.
public struct SpendShard: Sendable, Equatable {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) { self.index = index; self.count = max(count, 1) }

    public static func of(_ fields: [String], count: Int) -> Int {
        var h = StableHash()
        for f in fields { h.add(f) }
        return Int(h.finalized % UInt64(max(count, 1)))
    }

    static func budget(_ identity: String, count: Int) -> Int { of(["budget", identity], count: count) }
    static func outcomeLimit(_ identity: String, count: Int) -> Int { of(["outcome_limit", identity], count: count) }
    static func spike(_ identity: String, key: String, count: Int) -> Int { of(["spike", identity, key], count: count) }
    static func unpriced(model: String, count: Int) -> Int { of(["unpriced", model], count: count) }
    static func unrecognized(model: String, count: Int) -> Int { of(["unrecognized_usage", model], count: count) }
}
