import CSystem

/// The rows of one window (or late bucket): `SeriesKey` -> `RollupCounters`, built for the per-event path.
///
/// Why not a `Dictionary`: every event adds to one row in each window size, and most rows of a short
/// window are new, so insertion dominates. A dictionary hashes the five ids with SipHash once per window
/// size and rehashes everything at each doubling. Here the caller hashes the key once per event
/// (`SeriesKey.rowHash`, a few multiplications) and reuses it for every size; rows live in insertion
/// order, and the open-addressing `index` holds only `hash bits << 32 | row + 1`, so probing compares
/// integers and touches a key only on a likely hit, and growing rebuilds an array of integers without
/// moving any row. A table of a few rows has no index at all: it is scanned.
///
/// Rows are kept in chunks of `chunkSize`: the first grows like an array up to that size, every later one
/// is allocated whole. A row never moves once placed. In one dense array, an hour or a day window of ten
/// thousand rows per partition was copied at each doubling into fresh memory that the kernel had to
/// zero page by page: in the daemon's profile, the page faults of that growth alone were 6% of its CPU.
/// A chunk (about 40 KB) is small enough for the allocator to hand back the chunks of closed windows.
///
/// Reads look like a dictionary's (`rows[key]`, `count`, `keys`, `values`, iteration as `(key, value)`),
/// so code that reads closed windows does not care which it gets. Iteration is in insertion order.
///
/// The table also knows what the last checkpoint saved of it, so that a checkpoint writes the rows that
/// changed, not all the rows held: a table created since (`isNew`) is written whole; otherwise
/// `unsavedRows` lists the rows added to since, each once (a flag on the row, set by the first change).
/// While a table is new nothing is listed: every one of its rows goes anyway.
public struct RowTable: Sendable {
    public struct Row: Sendable {
        public var key: SeriesKey
        public var counters: RollupCounters
        /// Changed since the last save (only tracked once the table was saved).
        var unsaved = false
    }

    /// The rows in insertion order: row `i` is `chunks[i >> chunkShift][i & chunkMask]` (one allocation
    /// for a window of a few rows).
    private var chunks: [[Row]] = []
    /// Rows held.
    public private(set) var count = 0
    /// Power-of-two size, or empty while the table is small enough to scan (`scanLimit`);
    /// 0 = free, else `hash high bits << 32 | row + 1`.
    private var index: [UInt64] = []
    /// Created since the last save (or never saved): the next checkpoint writes it whole.
    public private(set) var isNew = true
    /// The rows changed since the last save, in the order of their first change (empty while `isNew`).
    public private(set) var unsavedRows: [Int32] = []

    /// Up to this many rows a lookup scans the keys: most short windows hold only a few rows, and
    /// they then cost a single allocation and no hashing.
    static let scanLimit = 8
    static let chunkShift = 8
    /// Rows per chunk: 256 rows of about 160 bytes, under the allocator's threshold for mapping memory of
    /// its own (128 KiB), so chunks come from and go back to its free lists.
    static let chunkSize = 1 << chunkShift
    static let chunkMask = chunkSize - 1

    public init() {}

    /// Room for `capacity` rows before anything grows (a window of the same size usually holds about as
    /// many rows as the previous one).
    public init(minimumCapacity capacity: Int) {
        if capacity > 0 {
            chunks.reserveCapacity((capacity + RowTable.chunkMask) >> RowTable.chunkShift)
            var first: [Row] = []
            first.reserveCapacity(Swift.min(capacity, RowTable.chunkSize))
            chunks.append(first)
            if capacity > RowTable.scanLimit { index = [UInt64](repeating: 0, count: RowTable.indexSize(for: capacity)) }
        }
    }

    public init(_ rows: [SeriesKey: RollupCounters]) {
        self.init(minimumCapacity: rows.count)
        for (k, v) in rows { update(insert(k, hash: k.rowHash)) { $0 = v } }
    }

    @inlinable public var isEmpty: Bool { count == 0 }
    /// The keys in insertion order.
    public var keys: [SeriesKey] {
        var out: [SeriesKey] = []
        out.reserveCapacity(count)
        for chunk in chunks { for r in chunk { out.append(r.key) } }
        return out
    }
    public var values: [RollupCounters] { map(\.value) }

    /// Row `i` (`0..<count`, in insertion order).
    @inline(__always)
    public func row(_ i: Int) -> Row { chunks[i &>> RowTable.chunkShift][i & RowTable.chunkMask] }

    /// The row of `key`, if any.
    public subscript(key: SeriesKey) -> RollupCounters? {
        find(key, hash: key.rowHash).map { row($0).counters }
    }

    /// The row index of `key` (hashed with `SeriesKey.rowHash`), or nil.
    @inline(__always)
    public func find(_ key: SeriesKey, hash: UInt64) -> Int? {
        if index.isEmpty {
            // At most `scanLimit` rows, all in the first chunk.
            if count == 0 { return nil }
            return chunks[0].withUnsafeBufferPointer { rows in
                for i in 0..<rows.count where rows[i].key == key { return i }
                return nil
            }
        }
        return index.withUnsafeBufferPointer { slots in
            let mask = slots.count - 1
            let tag = hash & 0xFFFF_FFFF_0000_0000
            var i = Int(truncatingIfNeeded: hash) & mask
            while true {
                let s = slots[i]
                if s == 0 { return nil }
                if s & 0xFFFF_FFFF_0000_0000 == tag {
                    let row = Int(truncatingIfNeeded: s & 0xFFFF_FFFF) - 1
                    if self.row(row).key == key { return row }
                }
                i = (i + 1) & mask
            }
        }
    }

    /// Starts loading the index slot `find(_:hash:)` reads first (see `PartitionWindows.prefetch`).
    /// `mutating` only so that a caller holding the table inside nested arrays reaches it in place, as
    /// for `update`, instead of through a copy: nothing changes.
    @inline(__always)
    mutating func prefetch(hash: UInt64) {
        index.withUnsafeBufferPointer { slots in
            guard slots.count > 0, let base = slots.baseAddress else { return }
            tm_prefetch(base + (Int(truncatingIfNeeded: hash) & (slots.count - 1)))
        }
    }

    /// The row index of `key`, appending a zeroed row when it is new.
    @inline(__always)
    public mutating func findOrInsert(_ key: SeriesKey, hash: UInt64) -> Int {
        if let row = find(key, hash: hash) { return row }
        return insert(key, hash: hash)
    }

    /// Appends a row for a key known to be absent; returns its index.
    @discardableResult
    public mutating func insert(_ key: SeriesKey, hash: UInt64) -> Int {
        let row = count
        let c = row &>> RowTable.chunkShift
        if c == chunks.count {
            var chunk: [Row] = []
            if c > 0 { chunk.reserveCapacity(RowTable.chunkSize) }
            chunks.append(chunk)
        }
        chunks[c].append(Row(key: key, counters: RollupCounters(), unsaved: !isNew))
        count = row + 1
        if !isNew { unsavedRows.append(Int32(truncatingIfNeeded: row)) }
        if index.isEmpty {
            if row + 1 > RowTable.scanLimit { rebuildIndex(size: RowTable.indexSize(for: row + 1)) }
        } else if (row + 1) * 4 > index.count * 3 {
            // Grow at 3/4 full: linear probing stays short, and the hash bits in each slot keep misses cheap.
            rebuildIndex(size: index.count * 2)
        } else {
            place(hash, row: row)
        }
        return row
    }

    /// Adds to row `row` in place.
    @inline(__always)
    public mutating func update(_ row: Int, _ apply: (inout RollupCounters) -> Void) {
        let c = row &>> RowTable.chunkShift, i = row & RowTable.chunkMask
        if !isNew && !chunks[c][i].unsaved {
            chunks[c][i].unsaved = true
            unsavedRows.append(Int32(truncatingIfNeeded: row))
        }
        apply(&chunks[c][i].counters)
    }

    /// Whether the next save has anything of this table to write.
    public var hasUnsaved: Bool { isNew || !unsavedRows.isEmpty }

    /// The rows the next save writes: all of a new table, else the changed ones.
    public func forEachUnsaved(_ body: (SeriesKey, RollupCounters) -> Void) {
        if isNew {
            for chunk in chunks { for r in chunk { body(r.key, r.counters) } }
        } else {
            for i in unsavedRows { let r = row(Int(i)); body(r.key, r.counters) }
        }
    }

    /// Every row (or with `unsavedOnly` the rows the next save writes, as `forEachUnsaved`), read in place:
    /// no copy of a row's counters (and no retain of its outcomes) per row.
    func forEachRow(unsavedOnly: Bool, _ body: (UnsafePointer<Row>) -> Void) {
        if unsavedOnly && !isNew {
            for i in unsavedRows {
                let row = Int(i)
                chunks[row &>> RowTable.chunkShift].withUnsafeBufferPointer { body($0.baseAddress! + (row & RowTable.chunkMask)) }
            }
        } else {
            for c in chunks.indices {
                chunks[c].withUnsafeBufferPointer { rows in
                    for j in rows.indices { body(rows.baseAddress! + j) }
                }
            }
        }
    }

    /// How many rows the next save writes.
    public var unsavedCount: Int { isNew ? count : unsavedRows.count }

    /// What the table holds now is saved: later changes are listed from here on.
    public mutating func markSaved() {
        for r in unsavedRows {
            let row = Int(r)
            chunks[row &>> RowTable.chunkShift][row & RowTable.chunkMask].unsaved = false
        }
        unsavedRows.removeAll(keepingCapacity: true)
        isNew = false
    }

    @inline(__always)
    private mutating func place(_ hash: UInt64, row: Int) {
        let slot = (hash & 0xFFFF_FFFF_0000_0000) | UInt64(row + 1)
        index.withUnsafeMutableBufferPointer { slots in
            let mask = slots.count - 1
            var i = Int(truncatingIfNeeded: hash) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = slot
        }
    }

    private mutating func rebuildIndex(size: Int) {
        index = [UInt64](repeating: 0, count: size)
        var row = 0
        for chunk in chunks {
            for r in chunk { place(r.key.rowHash, row: row); row += 1 }
        }
    }

    /// The smallest power of two that holds `rows` under 3/4 load (at least 16).
    static func indexSize(for rows: Int) -> Int {
        var n = 16
        while rows * 4 > n * 3 { n <<= 1 }
        return n
    }
}

extension RowTable: Sequence {
    public struct Iterator: IteratorProtocol {
        let table: RowTable
        var i = 0
        public mutating func next() -> (key: SeriesKey, value: RollupCounters)? {
            guard i < table.count else { return nil }
            defer { i += 1 }
            let r = table.row(i)
            return (r.key, r.counters)
        }
    }

    public func makeIterator() -> Iterator { Iterator(table: self) }
    public var underestimatedCount: Int { count }
}

extension SeriesKey {
    /// The hash `RowTable` files this key under: the five ids mixed by multiplication (no SipHash; the
    /// ids are small dense integers chosen by the process, not by the input, so no flooding concern),
    /// computed once per event for all of its window sizes.
    @inlinable public var rowHash: UInt64 {
        var h = (UInt64(workflow) | UInt64(owner) << 32) &* 0x9E37_79B9_7F4A_7C15
        h ^= (UInt64(model) | UInt64(provider) << 32) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= UInt64(tags) &* 0x1656_67B1_9E37_79F9
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 32)
    }
}
