import TokenmeterCore

/// One `[[route]]`: alerts that match every non-empty list of globs go to `sinks`. A list matches when any
/// of its globs does (`*` and `?`, as in price globs). `owners`/`workflows` look at the alert's scope (and,
/// for unpriced-model alerts, at the first caller); an alert without an owner never matches an `owners`
/// list. `continue = false` stops at this route when it matched: later routes are not looked at.
public struct Route: Sendable {
    public var types: [Glob] = []
    public var severities: [Glob] = []
    public var rules: [Glob] = []
    public var owners: [Glob] = []
    public var workflows: [Glob] = []
    public var sinks: [String]
    public var continueMatching: Bool = true

    public init(sinks: [String]) { self.sinks = sinks }

    public func matches(_ a: NotifyAlert) -> Bool {
        func any(_ globs: [Glob], _ value: String?) -> Bool {
            if globs.isEmpty { return true }
            guard let value else { return false }
            return globs.contains { $0.matches(value) }
        }
        return any(types, a.type) && any(severities, a.severity) && any(rules, a.rule)
            && any(owners, a.owner) && any(workflows, a.workflow)
    }
}

public enum Router {
    /// The sinks `alert` goes to, each once, in the order the routes name them.
    public static func sinks(for alert: NotifyAlert, routes: [Route]) -> [String] {
        var out: [String] = []
        for r in routes where r.matches(alert) {
            for s in r.sinks where !out.contains(s) { out.append(s) }
            if !r.continueMatching { break }
        }
        return out
    }
}

/// Which offsets may be committed. A message is done when every route of it was delivered or given up;
/// per partition the committable offset is the first message not yet done (everything before it is done),
/// so a slow sink holds back the commit of its own messages and those after them, never loses them.
public struct OffsetTracker: Sendable {
    public struct Token: Hashable, Sendable {
        public var partition: Int32
        public var offset: Int64
        public init(partition: Int32, offset: Int64) { self.partition = partition; self.offset = offset }
    }

    /// Per partition: offsets in consumption order with the routes still open (0 = done).
    private var open: [Int32: [(offset: Int64, remaining: Int)]] = [:]
    /// Per partition: the next offset after the last message seen (what to commit when all are done).
    private var next: [Int32: Int64] = [:]
    /// What was last committed, so an unchanged position is not committed again.
    private var committed: [Int32: Int64] = [:]

    public init() {}

    /// A consumed message with `routes` deliveries still to finish (0: done at once).
    public mutating func begin(_ t: Token, routes: Int) {
        next[t.partition] = t.offset + 1
        if routes > 0 || !(open[t.partition]?.isEmpty ?? true) {
            open[t.partition, default: []].append((t.offset, routes))
        }
        dropDoneHead(t.partition)
    }

    /// One route of the message finished (delivered or given up). Unknown tokens (a partition revoked
    /// meanwhile) are ignored.
    public mutating func finish(_ t: Token) {
        guard var list = open[t.partition], let i = list.firstIndex(where: { $0.offset == t.offset }) else { return }
        list[i].remaining = max(0, list[i].remaining - 1)
        open[t.partition] = list
        dropDoneHead(t.partition)
    }

    private mutating func dropDoneHead(_ p: Int32) {
        guard var list = open[p] else { return }
        var k = 0
        while k < list.count && list[k].remaining == 0 { k += 1 }
        if k > 0 { list.removeFirst(k) }
        open[p] = list
    }

    /// Messages not yet done, over all partitions.
    public var pending: Int { open.values.reduce(0) { $0 + $1.filter { $0.remaining > 0 }.count } }

    /// The offset to commit for `p` now (the first unfinished message, else the next one), nil when no
    /// message of it was seen.
    public func position(_ p: Int32) -> Int64? { open[p]?.first?.offset ?? next[p] }

    /// The offset after the last message of `p` seen (where fetching goes on), nil when none was seen.
    public func nextOffset(_ p: Int32) -> Int64? { next[p] }

    /// Messages not yet done in `partitions`.
    public func pending(in partitions: [Int32]) -> Int {
        partitions.reduce(0) { n, p in n + (open[p]?.filter { $0.remaining > 0 }.count ?? 0) }
    }

    /// (partition, offset to commit) where it moved since the last `markCommitted`.
    public func committable() -> [(Int32, Int64)] {
        var out: [(Int32, Int64)] = []
        for (p, n) in next {
            let position = open[p]?.first?.offset ?? n
            if committed[p] != position { out.append((p, position)) }
        }
        return out.sorted { $0.0 < $1.0 }
    }

    public mutating func markCommitted(_ list: [(Int32, Int64)]) {
        for (p, o) in list { committed[p] = o }
    }

    /// Forgets partitions this member no longer owns.
    public mutating func drop(_ partitions: [Int32]) {
        for p in partitions { open[p] = nil; next[p] = nil; committed[p] = nil }
    }
}
