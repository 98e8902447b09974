/// The dimensions of one rollup row, as interned ids: workflow, owner, model, provider and the values of
/// the configured tag dimensions (one id for the whole tuple). `none` stands for a null model/provider.
public struct SeriesKey: Hashable, Sendable {
    public static let none: UInt32 = .max
    public var workflow: UInt32
    public var owner: UInt32
    public var model: UInt32
    public var provider: UInt32
    public var tags: UInt32

    public init(workflow: UInt32, owner: UInt32, model: UInt32, provider: UInt32, tags: UInt32) {
        self.workflow = workflow; self.owner = owner; self.model = model; self.provider = provider; self.tags = tags
    }
}

/// The running sums of one rollup row. Exact integers; money in femto-dollars.
public struct RollupCounters: Sendable, Equatable {
    // Field order matters for size: the eight Int64 first, so the two 16-byte-aligned Money fields need
    // no padding (112 bytes a row instead of 128).
    public var requests: Int64 = 0
    public var errors: Int64 = 0
    public var input: Int64 = 0
    public var cacheRead: Int64 = 0
    public var cacheWrite: Int64 = 0
    public var output: Int64 = 0
    public var reasoning: Int64 = 0
    public var unpricedRequests: Int64 = 0
    public var cost: Money = .zero
    public var outcomeValue: Money = .zero
    /// Outcome name id -> count. Only outcome rows have entries; small, so a flat array beats a dictionary.
    public var outcomes: [OutcomeCount] = []

    public init() {}

    @inlinable public mutating func addUsage(_ t: TokenCounts, cost: Money?, isError: Bool, requests: Int64 = 1) {
        self.requests &+= requests
        if isError { errors &+= requests }
        input &+= t.input
        cacheRead &+= t.cacheRead
        cacheWrite &+= t.cacheWrite
        output &+= t.output
        reasoning &+= t.reasoning
        if let cost { self.cost += cost } else { unpricedRequests &+= requests }
    }

    public mutating func addOutcome(name: UInt32, count: Int64, value: Money?) {
        if let i = outcomes.firstIndex(where: { $0.name == name }) {
            outcomes[i].count &+= count
        } else {
            outcomes.append(OutcomeCount(name: name, count: count))
        }
        if let value { outcomeValue += value }
    }

    public mutating func merge(_ o: RollupCounters) {
        requests &+= o.requests; errors &+= o.errors; input &+= o.input; cacheRead &+= o.cacheRead
        cacheWrite &+= o.cacheWrite; output &+= o.output; reasoning &+= o.reasoning; cost += o.cost
        unpricedRequests &+= o.unpricedRequests; outcomeValue += o.outcomeValue
        for oc in o.outcomes { addOutcome(name: oc.name, count: oc.count, value: nil) }
    }
}

public struct OutcomeCount: Sendable, Equatable {
    public var name: UInt32
    public var count: Int64
    public init(name: UInt32, count: Int64) { self.name = name; self.count = count }
}
