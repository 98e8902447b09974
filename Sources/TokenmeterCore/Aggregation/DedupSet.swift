import CSystem

/// Event ids seen within `dedup.window` of event time, per partition: a repeated id is counted once.
///
/// Memory is bounded by the number of distinct ids inside one window: each is kept as a 64-bit hash
/// (collision odds about n^2 / 2^65: 3 in 100 million for a million ids per window) plus its event time,
/// about 40 bytes with the table's overhead. Ids expire in event-time order once they fall out of the
/// window behind the partition's stream time; expiry is deterministic, so a replay dedups the same way.
///
/// Why not a `Dictionary`: this runs for every event with an id. The id hash is already a good 64-bit
/// hash, so the table uses its low bits directly (no SipHash on top) in an open-addressing array of
/// (hash, time) pairs, with backward-shift deletion so expiry leaves no tombstones behind.
public struct DedupSet: Sendable {
    public let window: Int64
    /// Open addressing, power-of-two size; `time == DedupSet.free` marks an empty slot.
    private var slots: [Slot]
    private var live = 0
    /// Insertion order for expiry: (hash, time), oldest first; `head` is the first live entry.
    private var order: [(UInt64, EpochMillis)] = []
    private var head = 0
    /// Where in `order` the ids not yet in durable storage begin: a checkpoint writes `unsaved` (each id
    /// once, in arrival order) and then calls `markSaved`, so ids are written once, not with every checkpoint.
    private var savedUpTo = 0
    /// How many entries were dropped from the front of `order` over the set's life: with it, an entry has
    /// a position that never changes (its arrival number), by which saved ranges are told apart.
    private var orderBase = 0

    private struct Slot: Sendable {
        var hash: UInt64
        var time: EpochMillis
    }

    private static let free = EpochMillis.min
    /// How far ahead of the next expiry `insert` prefetches (a few events: far enough for the load to finish,
    /// near enough that the line is still cached when its turn comes).
    static let lookahead = 4

    public init(window: Int64) {
        self.window = window
        self.slots = [Slot](repeating: Slot(hash: 0, time: DedupSet.free), count: 64)
    }

    public var count: Int { live }

    /// Starts loading what `insert(hash, ...)` will read: called as soon as the id's hash is known, so that
    /// the misses overlap the work that comes before the insert (the pipeline's name lookups). The set of a
    /// busy partition is far larger than the caches: its slot for this id, and the slot of the id that will
    /// expire a few events from now (ids expire in arrival order, so the one `lookahead` places ahead in
    /// `order` is, in steady state, what a later call's `expire` will look up). (`mutating`, though it
    /// changes nothing: reached in place inside the partition state, not through a copy.)
    @inline(__always)
    public mutating func prefetch(_ hash: UInt64) {
        slots.withUnsafeBufferPointer { s in
            let mask = s.count - 1
            tm_prefetch(s.baseAddress! + (Int(truncatingIfNeeded: hash) & mask))
            if head &+ DedupSet.lookahead < order.count {
                tm_prefetch(s.baseAddress! + (Int(truncatingIfNeeded: order[head &+ DedupSet.lookahead].0) & mask))
            }
        }
    }

    /// Records `hash` at `time`; returns false when it was already seen inside the window (a duplicate).
    /// Call `prefetch(hash)` a little before, on a hot path.
    public mutating func insert(_ hash: UInt64, time: EpochMillis, streamTime: EpochMillis) -> Bool {
        expire(before: max(time, streamTime) &- window)
        // `free` marks empty slots; no real event time is that far back, but keep it unambiguous.
        let time = time == DedupSet.free ? DedupSet.free + 1 : time
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i].time != DedupSet.free {
            if slots[i].hash == hash {
                let t = slots[i].time
                if t >= time &- window, t <= time &+ window { return false }
                slots[i].time = time
                order.append((hash, time))
                return true
            }
            i = (i + 1) & mask
        }
        slots[i] = Slot(hash: hash, time: time)
        live += 1
        order.append((hash, time))
        if live * 10 > slots.count * 7 { rehash(size: slots.count * 2) }
        return true
    }

    /// The slot holding `hash`, if any.
    private func find(_ hash: UInt64) -> Int? {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i].time != DedupSet.free {
            if slots[i].hash == hash { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Empties slot `i` and moves later members of its probe run back, so lookups never need tombstones.
    private mutating func remove(at start: Int) {
        let mask = slots.count - 1
        var hole = start
        var j = start
        while true {
            j = (j + 1) & mask
            if slots[j].time == DedupSet.free { break }
            let home = Int(truncatingIfNeeded: slots[j].hash) & mask
            // Move j into the hole unless its home lies cyclically in (hole, j].
            let inRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if !inRange {
                slots[hole] = slots[j]
                hole = j
            }
        }
        slots[hole].time = DedupSet.free
        live -= 1
    }

    private mutating func rehash(size: Int) {
        let old = slots
        slots = [Slot](repeating: Slot(hash: 0, time: DedupSet.free), count: size)
        let mask = size - 1
        for s in old where s.time != DedupSet.free {
            var i = Int(truncatingIfNeeded: s.hash) & mask
            while slots[i].time != DedupSet.free { i = (i + 1) & mask }
            slots[i] = s
        }
    }

    private mutating func expire(before limit: EpochMillis) {
        // Entries are appended in arrival order, which is nearly event-time order; an out-of-order entry
        // just lives a little longer, which only errs towards catching more duplicates.
        while head < order.count, order[head].1 < limit {
            let (h, t) = order[head]
            if let i = find(h), slots[i].time == t { remove(at: i) }
            head += 1
        }
        if head > 4096 && head * 2 > order.count {
            order.removeFirst(head)
            // Ids that expired before they were saved need no saving.
            savedUpTo = max(0, savedUpTo - head)
            orderBase += head
            head = 0
        }
    }

    /// The live ids with their times, oldest first (for the checkpoint).
    public var entries: [(UInt64, EpochMillis)] {
        order[head...].filter { e in find(e.0).map { slots[$0].time == e.1 } ?? false }
    }

    /// Ids recorded since the last `markSaved`, in arrival order (an id seen again after it expired
    /// appears again, with its new time); the first has arrival number `unsavedFrom`.
    public var unsaved: ArraySlice<(UInt64, EpochMillis)> { order[max(savedUpTo, head)...] }
    public var unsavedFrom: Int { orderBase + max(savedUpTo, head) }

    /// Arrival numbers: every entry before `expiredThrough` has left the set (expired, or superseded by a
    /// later sighting of its id), and `recordedThrough` entries have arrived in all. Saved entries before
    /// `expiredThrough` are never needed again.
    public var expiredThrough: Int { orderBase + head }
    public var recordedThrough: Int { orderBase + order.count }

    /// The ids of `unsaved` are durable now.
    public mutating func markSaved() { savedUpTo = order.count }

    /// Every id must be saved again (the set moves to where its saved copies are not: a partition taken
    /// back after a hand-over, or into the changelog from the local checkpoint).
    public mutating func markUnsaved() { savedUpTo = 0 }

    /// Puts saved entries back, in arrival order, `from` being the arrival number of the first. The set
    /// then decides exactly as the one that saved them: the same ids with the same times (a later
    /// sighting replaces an earlier one, as `insert` does), in the same order for expiry, so an entry that
    /// outlived its window behind a later-arrived one (a late event) outlives it here too.
    /// Entries already restored (a range saved twice, by a checkpoint attempt that did not complete and the
    /// next one) are skipped; a gap (saved entries deleted because they had all left the set) means what
    /// was restored before it had left the set too, and it is dropped.
    /// `saved: false`: they come from an older checkpoint that held them inline, and must be saved again.
    public mutating func restore<C: Collection>(_ entries: C, from: Int, saved: Bool = true) where C.Element == (UInt64, EpochMillis) {
        if order.isEmpty || from > recordedThrough {
            if !order.isEmpty { self = DedupSet(window: window) }
            orderBase = from
        }
        let skip = recordedThrough - from
        guard skip < entries.count else { return }
        let unsavedFrom = order.count
        defer { savedUpTo = saved ? order.count : min(savedUpTo, unsavedFrom) }
        for (h, restored) in entries.dropFirst(skip) {
            let t = restored == DedupSet.free ? DedupSet.free + 1 : restored
            if let i = find(h) {
                slots[i].time = t
            } else {
                let mask = slots.count - 1
                var i = Int(truncatingIfNeeded: h) & mask
                while slots[i].time != DedupSet.free { i = (i + 1) & mask }
                slots[i] = Slot(hash: h, time: t)
                live += 1
                if live * 10 > slots.count * 7 { rehash(size: slots.count * 2) }
            }
            order.append((h, t))
        }
    }
}
