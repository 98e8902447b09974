/// Event-time tumbling windows of one input partition (Kafka Streams' model).
///
/// Stream time is the largest event time seen. The watermark is `stream time - grace` (or, when the input
/// went quiet, the wall clock minus grace: see `advanceIdle`); a window `[start, end)` closes once
/// `end <= watermark`. The watermark never goes back, so every window whose end is at or below it has been
/// closed, and an event that falls into such a window is late: it is added to a late bucket that becomes an
/// extra `"late": true` file at the next close. Events older than `stream time - late horizon` are refused.
public struct PartitionWindows: Sendable {
    public struct Window: Sendable {
        public var start: EpochMillis
        public var rows: RowTable

        public init(start: EpochMillis, rows: RowTable) { self.start = start; self.rows = rows }
        /// From a checkpoint's rows.
        public init(start: EpochMillis, rows: [SeriesKey: RollupCounters]) { self.init(start: start, rows: RowTable(rows)) }
    }

    public struct LateKey: Hashable, Sendable {
        public var sizeIndex: Int
        public var start: EpochMillis
    }

    public enum AddResult: Equatable, Sendable {
        case onTime
        /// At least one of the event's windows had closed: counted in a late bucket for that size.
        case late
        /// Older than the late horizon: not counted.
        case tooLate
    }

    public let sizes: [Int64]
    public let grace: Int64
    public let lateHorizon: Int64
    /// Rows one window may hold before new keys go to `overflowKey` (see `RollupSettings.maxKeysPerWindow`).
    public let maxKeys: Int
    public let overflowKey: SeriesKey?
    /// Events whose key was replaced by the overflow key (per window size they fell into).
    public private(set) var overflowed: Int64 = 0
    public private(set) var streamTime: EpochMillis = .min
    public private(set) var watermark: EpochMillis = .min
    /// Per window size, the open windows (usually one or two), oldest first.
    public internal(set) var open: [[Window]]
    public internal(set) var late: [LateKey: RowTable] = [:]
    /// Per window size, the row count of the last window opened, to size the next one up front.
    private var lastRowCount: [Int]
    /// Per window size, the start of the window the last event fell in (`Int64.min`: none yet), so the
    /// common case (the same window as the previous event) needs no division.
    private var lastStart: [EpochMillis]

    public init(sizes: [Int64], grace: Int64, lateHorizon: Int64, maxKeys: Int = .max, overflowKey: SeriesKey? = nil) {
        self.sizes = sizes
        self.grace = grace
        self.lateHorizon = lateHorizon
        self.maxKeys = maxKeys
        self.overflowKey = overflowKey
        self.open = Array(repeating: [], count: sizes.count)
        self.lastRowCount = Array(repeating: 0, count: sizes.count)
        self.lastStart = Array(repeating: .min, count: sizes.count)
    }

    public var isEmpty: Bool { late.isEmpty && open.allSatisfy { $0.isEmpty } }

    /// Number of open (window, row) pairs, for metrics and memory accounting.
    public var openRowCount: Int { open.reduce(0) { $0 + $1.reduce(0) { $0 + $1.rows.count } } + late.values.reduce(0) { $0 + $1.count } }

    /// Whether an event at `time` would be refused as older than the late horizon.
    public func isTooLate(_ time: EpochMillis) -> Bool {
        streamTime != .min && time < streamTime &- lateHorizon
    }

    /// Starts loading, in every window size, the index slot `add` will read for a key of this hash at this
    /// time, when that window is the newest open one (the usual case): called as soon as the key is known,
    /// before pricing and the alert rules, so the misses in tables far larger than the caches overlap
    /// each other and that work instead of coming one after another inside `add`.
    /// (`mutating`, though it changes nothing: read through the same in-place access as `add`, the window
    /// is not copied; a read-only access copied it, retaining and releasing its four arrays.)
    @inline(__always)
    public mutating func prefetch(hash: UInt64, time: EpochMillis) {
        for i in 0..<sizes.count {
            let start = lastStart[i]
            guard time >= start, time < start &+ sizes[i] else { continue }
            let last = open[i].count - 1
            if last >= 0 && open[i][last].start == start { open[i][last].rows.prefetch(hash: hash) }
        }
    }

    /// Adds one event's effect to every window size. `apply` is called once per size with the row to update.
    @inline(__always)
    public mutating func add(key: SeriesKey, time: EpochMillis, _ apply: (inout RollupCounters) -> Void) -> AddResult {
        add(key: key, hash: key.rowHash, time: time, apply)
    }

    /// `add` with the key's `rowHash` already computed (for `prefetch`).
    @inline(__always)
    public mutating func add(key: SeriesKey, hash: UInt64, time: EpochMillis, _ apply: (inout RollupCounters) -> Void) -> AddResult {
        if isTooLate(time) { return .tooLate }
        var result = AddResult.onTime
        for i in 0..<sizes.count {
            let size = sizes[i]
            var start = lastStart[i]
            if time < start || time >= start &+ size || start == .min {
                start = floorDiv(time, size) &* size
                lastStart[i] = start
            }
            if start &+ size <= watermark {
                result = .late
                addLate(LateKey(sizeIndex: i, start: start), key: key, hash: hash, apply)
                continue
            }
            // Usually the newest window; out-of-order events may fall into an older one still open.
            var w = open[i].count - 1
            while w >= 0 && open[i][w].start != start { w -= 1 }
            if w < 0 { w = openWindow(sizeIndex: i, start: start) }
            if let row = open[i][w].rows.find(key, hash: hash) {
                open[i][w].rows.update(row, apply)
            } else if open[i][w].rows.count >= maxKeys, let overflowKey {
                overflowed &+= 1
                let row = open[i][w].rows.findOrInsert(overflowKey, hash: overflowKey.rowHash)
                open[i][w].rows.update(row, apply)
            } else {
                let row = open[i][w].rows.insert(key, hash: hash)
                open[i][w].rows.update(row, apply)
            }
        }
        if time > streamTime { streamTime = time }
        return result
    }

    /// Opens the window of size `i` starting at `start`, keeping them oldest first; returns its position.
    private mutating func openWindow(sizeIndex i: Int, start: EpochMillis) -> Int {
        var at = open[i].count
        while at > 0 && open[i][at - 1].start > start { at -= 1 }
        open[i].insert(Window(start: start, rows: RowTable(minimumCapacity: lastRowCount[i])), at: at)
        return at
    }

    private mutating func addLate(_ lk: LateKey, key: SeriesKey, hash: UInt64, _ apply: (inout RollupCounters) -> Void) {
        var bucket = late.removeValue(forKey: lk) ?? RowTable()
        if let row = bucket.find(key, hash: hash) {
            bucket.update(row, apply)
        } else if bucket.count >= maxKeys, let overflowKey {
            overflowed &+= 1
            bucket.update(bucket.findOrInsert(overflowKey, hash: overflowKey.rowHash), apply)
        } else {
            bucket.update(bucket.insert(key, hash: hash), apply)
        }
        late[lk] = bucket
    }

    /// Closes what the stream time allows. Call after each batch of events (cheap when nothing closes).
    public mutating func closeDue() -> [ClosedWindow] {
        guard streamTime != .min else { return [] }
        return advanceWatermark(to: streamTime &- grace)
    }

    /// The wall-clock close for a quiet input: windows that ended before `wallNow - grace` close even though
    /// no later event arrived to push stream time.
    public mutating func advanceIdle(wallNow: EpochMillis) -> [ClosedWindow] {
        advanceWatermark(to: wallNow &- grace)
    }

    /// Closes every window and late bucket (end of a replay file).
    public mutating func closeAll() -> [ClosedWindow] {
        var out: [ClosedWindow] = []
        for i in 0..<sizes.count {
            for w in open[i] where !w.rows.isEmpty {
                out.append(ClosedWindow(sizeIndex: i, start: w.start, rows: w.rows, kind: .final))
            }
            open[i].removeAll()
        }
        if let last = out.map({ $0.start &+ sizes[$0.sizeIndex] }).max(), last > watermark { watermark = last }
        out.append(contentsOf: takeLate(stamp: watermark))
        return out
    }

    /// Hands over everything open as additive partial rows (a revoked partition), leaving this empty.
    public mutating func takeAllPartial(offset: Int64) -> [ClosedWindow] {
        var out: [ClosedWindow] = []
        for i in 0..<sizes.count {
            for w in open[i] where !w.rows.isEmpty {
                out.append(ClosedWindow(sizeIndex: i, start: w.start, rows: w.rows, kind: .partial(offset: offset)))
            }
            open[i].removeAll()
        }
        for (k, rows) in late.sorted(by: { ($0.key.sizeIndex, $0.key.start) < ($1.key.sizeIndex, $1.key.start) }) {
            out.append(ClosedWindow(sizeIndex: k.sizeIndex, start: k.start, rows: rows, kind: .latePartial(offset: offset)))
        }
        late.removeAll()
        return out
    }

    private mutating func advanceWatermark(to candidate: EpochMillis) -> [ClosedWindow] {
        guard candidate > watermark else { return [] }
        watermark = candidate
        var out: [ClosedWindow] = []
        for i in 0..<sizes.count {
            let size = sizes[i]
            while let first = open[i].first, first.start &+ size <= watermark {
                open[i].removeFirst()
                lastRowCount[i] = first.rows.count
                if !first.rows.isEmpty {
                    out.append(ClosedWindow(sizeIndex: i, start: first.start, rows: first.rows, kind: .final))
                }
            }
        }
        // Late rows wait for the partition's next close rather than leave at every advance of the
        // watermark (which nearly every event makes): a flush per late event would write a file per late
        // event and window size. With no window left open nothing would close to carry them, so they leave
        // at once.
        // (A closure, not the key path `\.isEmpty`: a key path is looked up at run time, about 700
        // instructions a call, and this runs at every advance while late rows wait.)
        if !late.isEmpty && (!out.isEmpty || open.allSatisfy({ $0.isEmpty })) {
            out.append(contentsOf: takeLate(stamp: watermark))
        }
        return out
    }

    private mutating func takeLate(stamp: EpochMillis) -> [ClosedWindow] {
        guard !late.isEmpty else { return [] }
        let out = late.sorted(by: { ($0.key.sizeIndex, $0.key.start) < ($1.key.sizeIndex, $1.key.start) }).map {
            ClosedWindow(sizeIndex: $0.key.sizeIndex, start: $0.key.start, rows: $0.value, kind: .late(stamp: stamp))
        }
        late.removeAll()
        return out
    }

    /// Whether the next save has rows to write (see `RowTable.isNew`, `RowTable.unsavedRows`). Windows
    /// that closed need nothing written: a record lists the windows still open, and the restore drops the rest.
    public var hasUnsavedRows: Bool {
        open.contains { $0.contains { $0.rows.hasUnsaved } } || late.values.contains { $0.hasUnsaved }
    }

    /// Rows the next save writes (all rows of new tables, the changed rows of the others).
    public var unsavedRowCount: Int {
        open.reduce(0) { $0 + $1.reduce(0) { $0 + $1.rows.unsavedCount } } + late.values.reduce(0) { $0 + $1.unsavedCount }
    }

    /// Everything held now is saved (a checkpoint record with these rows is durable).
    public mutating func markSaved() {
        for i in open.indices { for w in open[i].indices { open[i][w].rows.markSaved() } }
        for k in Array(late.keys) { late[k]!.markSaved() }
    }

    /// Continues the event time of an earlier stretch of this partition written under the same writer name
    /// (the partition was handed over on a rebalance and came back to this process): the windows closed
    /// then stay closed. Without it the new stretch would have no watermark, and an out-of-order event
    /// first in it would reopen a window closed then and close it again, into a second final file of the
    /// same name that replaces the first (a rollup file is never modified once it appears). With it that
    /// event is late: a late file, named by a later watermark. Only raises: the times are lower bounds of
    /// the partition's, since another owner may have moved them on meanwhile.
    public mutating func resume(streamTime: EpochMillis, watermark: EpochMillis) {
        if streamTime > self.streamTime { self.streamTime = streamTime }
        if watermark > self.watermark { self.watermark = watermark }
    }

    /// Rebuilds from a checkpoint.
    public mutating func restore(streamTime: EpochMillis, watermark: EpochMillis, open: [[Window]],
                                 late: [LateKey: [SeriesKey: RollupCounters]]) {
        self.streamTime = streamTime
        self.watermark = watermark
        self.open = open
        self.late = late.mapValues(RowTable.init)
    }
}

/// A window's rows ready to be written, with the reason it was written (which decides the file name).
public struct ClosedWindow: Sendable {
    public enum Kind: Sendable, Equatable {
        /// The window closed on event time: `<start>-<writer>.jsonl`.
        case final
        /// Rows of events that arrived after the window closed, flushed when the watermark reached `stamp`.
        case late(stamp: EpochMillis)
        /// Late rows flushed by the wall-clock idle close. Named by the partition's next offset, not by the
        /// watermark (the wall clock then): a restart from a checkpoint taken before this flush reaches the
        /// same offset with the same late rows and must rewrite the same file, not add a second one.
        case lateIdle(offset: Int64)
        /// Open rows handed over on revoke, the partition's resume offset in the name.
        case partial(offset: Int64)
        case latePartial(offset: Int64)
    }
    public var sizeIndex: Int
    public var start: EpochMillis
    public var rows: RowTable
    public var kind: Kind

    public var isLate: Bool {
        switch kind {
        case .late, .lateIdle, .latePartial: return true
        case .final, .partial: return false
        }
    }
}
