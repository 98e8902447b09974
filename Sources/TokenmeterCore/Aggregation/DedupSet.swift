/// Event ids seen within `dedup.window` of event time, per partition: a repeated id is counted once.
///
/// Memory is bounded by the number of distinct ids inside one window: each is kept as a 64-bit hash
/// (collision odds about n^2 / 2^65: 3 in 100 million for a million ids per window) plus its event time,
/// about 40 bytes with the table's overhead. Ids expire in event-time order once they fall out of the
/// window behind the partition's stream time; expiry is deterministic, so a replay dedups the same way.
public struct DedupSet: Sendable {
    public let window: Int64
    private var seen: [UInt64: EpochMillis] = [:]
    /// Insertion order for expiry: (hash, time), oldest first; `head` is the first live entry.
    private var order: [(UInt64, EpochMillis)] = []
    private var head = 0

    public init(window: Int64) { self.window = window }

    public var count: Int { seen.count }

    /// Records `hash` at `time`; returns false when it was already seen inside the window (a duplicate).
    public mutating func insert(_ hash: UInt64, time: EpochMillis, streamTime: EpochMillis) -> Bool {
        expire(before: max(time, streamTime) &- window)
        if let t = seen[hash], t >= time &- window, t <= time &+ window { return false }
        seen[hash] = time
        order.append((hash, time))
        return true
    }

    private mutating func expire(before limit: EpochMillis) {
        // Entries are appended in arrival order, which is nearly event-time order; an out-of-order entry
        // just lives a little longer, which only errs towards catching more duplicates.
        while head < order.count, order[head].1 < limit {
            let (h, t) = order[head]
            if seen[h] == t { seen[h] = nil }
            head += 1
        }
        if head > 4096 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }

    public var entries: [(UInt64, EpochMillis)] { Array(order[head...]).filter { seen[$0.0] == $0.1 } }

    public mutating func restore(_ entries: [(UInt64, EpochMillis)]) {
        for (h, t) in entries { seen[h] = t; order.append((h, t)) }
    }
}
