/// Interns byte strings to small integer ids, so the hot path keys its tables by `UInt32` and builds a
/// Swift `String` only the first time a name is seen (for output). Lookups hash and compare raw bytes:
/// no allocation for a string already known.
public struct StringTable: Sendable {
    private var arena: [UInt8] = []
    private var offsets: [Int] = [0]
    private var hashes: [UInt64] = []
    /// Open addressing; 0 = empty, otherwise id + 1.
    private var slots: [UInt32] = Array(repeating: 0, count: 1024)
    public private(set) var strings: [String] = []
    /// The ids in byte order (`precedes`), and each id's place in it: kept up to date by `updateOrder`
    /// (between batches of rollup files, not per event), so that sorting a window's rows compares integers
    /// instead of names' bytes.
    private var ordered: [UInt32] = []
    private var ranks: [UInt32] = []

    public init() {}

    public var count: Int { strings.count }

    /// About how much memory the table holds: the names' bytes twice (the arena and the `String`s), and per
    /// name its offset, hash, `String` header and probe slots. What `tokenmeter_interned_bytes` reports.
    public var approximateBytes: Int { 2 * arena.count + strings.count * (8 + 8 + 16) + slots.count * 4 + ranks.count * 8 }

    /// Whether `rank` covers every name (`updateOrder` was called since the last one was interned).
    public var isOrdered: Bool { ranks.count == strings.count }

    /// The place of `id` among all names in byte order (`precedes`): `rank(a) < rank(b)` exactly when
    /// `precedes(a, b)`. Only while `isOrdered`.
    @inline(__always) public func rank(_ id: UInt32) -> UInt32 { ranks[Int(id)] }

    /// Brings the order up to date with the names interned since the last call: the new ones are sorted
    /// and each placed by binary search among the old, then every rank is renumbered. So the bytes of k
    /// new names are compared k log k + k log n times, and a table that did not grow costs nothing.
    public mutating func updateOrder() {
        let n = strings.count, had = ranks.count
        guard n > had else { return }
        var fresh = Array(UInt32(had)..<UInt32(n))
        fresh.sort { precedes($0, $1) }
        var merged: [UInt32] = []
        merged.reserveCapacity(n)
        var i = 0
        for id in fresh {
            // Old names before the new one: those that precede it (ids are distinct names, never equal).
            var lo = i, hi = ordered.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if precedes(ordered[mid], id) { lo = mid + 1 } else { hi = mid }
            }
            merged += ordered[i..<lo]
            merged.append(id)
            i = lo
        }
        merged += ordered[i...]
        ordered = merged
        ranks = [UInt32](repeating: 0, count: n)
        for (r, id) in ordered.enumerated() { ranks[Int(id)] = UInt32(r) }
    }

    @inlinable public subscript(id: UInt32) -> String { strings[Int(id)] }

    public mutating func intern(_ s: String) -> UInt32 {
        var s = s
        return s.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    public mutating func intern(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let h = StringTable.nameHash(bytes)
        var mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let slot = slots[i]
            if slot == 0 { break }
            let id = Int(slot - 1)
            if hashes[id] == h && equals(id, bytes) { return UInt32(id) }
            i = (i + 1) & mask
        }
        let id = strings.count
        arena.append(contentsOf: bytes)
        offsets.append(arena.count)
        hashes.append(h)
        strings.append(String(decoding: bytes, as: UTF8.self))
        if (id + 1) * 2 > slots.count {
            grow()
            mask = slots.count - 1
            i = Int(truncatingIfNeeded: h) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
        }
        slots[i] = UInt32(id + 1)
        return UInt32(id)
    }

    /// Byte-wise (UTF-8) order of two interned strings, without building `String`s: the order of rows
    /// in a rollup file. (For the NFC text names are in practice, the same order as `String`'s `<`.)
    ///
    /// Eight bytes at a time, as big-endian words (so that the first differing byte decides): a rollup file's
    /// rows are sorted with this, and names sharing long prefixes (`customer-success`, `gpt-4.1-mini`)
    /// made the byte loop a visible part of writing them.
    public func precedes(_ a: UInt32, _ b: UInt32) -> Bool {
        let sa = offsets[Int(a)], la = offsets[Int(a) + 1] - sa
        let sb = offsets[Int(b)], lb = offsets[Int(b) + 1] - sb
        let n = min(la, lb)
        if n == 0 { return la < lb }
        return arena.withUnsafeBytes { p in
            let base = p.baseAddress!
            var i = 0
            while i + 8 <= n {
                let x = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: sa + i, as: UInt64.self))
                let y = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: sb + i, as: UInt64.self))
                if x != y { return x < y }
                i += 8
            }
            while i < n {
                let x = p[sa + i], y = p[sb + i]
                if x != y { return x < y }
                i += 1
            }
            return la < lb
        }
    }

    /// Appends the interned string as a JSON string literal, straight from the table's bytes (no `String`
    /// retained and released per field of a rollup row).
    public func appendJSON(_ id: UInt32, to out: inout [UInt8]) {
        writeJSON(id, to: &out)
    }

    /// `appendJSON` into any sink: at most `jsonStringBound(byteCount(id))` bytes.
    func writeJSON<S: ByteSink>(_ id: UInt32, to out: inout S) {
        let start = offsets[Int(id)], end = offsets[Int(id) + 1]
        arena.withUnsafeBytes { a in writeJSONString(&out, UnsafeRawBufferPointer(rebasing: a[start..<end])) }
    }

    /// The UTF-8 length of the interned string.
    func byteCount(_ id: UInt32) -> Int { offsets[Int(id) + 1] - offsets[Int(id)] }

    /// The id of `bytes` if interned, without inserting.
    public func lookup(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
        let h = StringTable.nameHash(bytes)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] != 0 {
            let id = Int(slots[i] - 1)
            if hashes[id] == h && equals(id, bytes) { return UInt32(id) }
            i = (i + 1) & mask
        }
        return nil
    }

    @inline(__always)
    private func equals(_ id: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let start = offsets[id], end = offsets[id + 1]
        guard end - start == bytes.count else { return false }
        return arena.withUnsafeBytes { a in
            bytes.count == 0 || memcmpBytes(a.baseAddress! + start, bytes.baseAddress!, bytes.count)
        }
    }

    private mutating func grow() {
        var newSlots = [UInt32](repeating: 0, count: slots.count * 2)
        let mask = newSlots.count - 1
        for id in 0..<strings.count {
            var i = Int(truncatingIfNeeded: hashes[id]) & mask
            while newSlots[i] != 0 { i = (i + 1) & mask }
            newSlots[i] = UInt32(id + 1)
        }
        slots = newSlots
    }

    /// The table's own hash of a name: in memory only (never saved), so unlike `hash` it is free to
    /// change. Like `hash` over whole 8-byte words, but the last 1-7 bytes are one more word (the 8 bytes
    /// ending at the end, or for a name under 8 bytes its first and last 4, or first, middle and last
    /// byte; the length is mixed in first, so these pick the bytes out exactly) instead of a
    /// multiplication per byte: a name ends in a partial word nearly always, and the byte loop was half
    /// the hashing of an event's five or six names.
    @inline(__always) static func nameHash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let n = bytes.count
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(n)
        if let p = bytes.baseAddress {
            var i = 0
            while i + 8 <= n {
                h = (h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x0000_0100_0000_01b3
                h ^= h >> 29
                i += 8
            }
            if i < n {
                let tail: UInt64
                if n >= 8 {
                    tail = p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
                } else if n >= 4 {
                    tail = UInt64(p.loadUnaligned(as: UInt32.self)) | UInt64(p.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)) << 32
                } else {
                    tail = UInt64(p.load(as: UInt8.self)) | UInt64(p.load(fromByteOffset: n / 2, as: UInt8.self)) << 8
                        | UInt64(p.load(fromByteOffset: n - 1, as: UInt8.self)) << 16
                }
                h = (h ^ tail) &* 0x0000_0100_0000_01b3
                h ^= h >> 29
            }
        }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return h
    }

    /// FNV-1a over 8-byte words then a final mix: fast for short names, good enough spread for probing.
    /// De-duplication ids are saved by this hash: it must never change (`nameHash` is the table's own).
    @inlinable public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(bytes.count)
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x0000_0100_0000_01b3
            h ^= h >> 29
            i += 8
        }
        while i < n {
            h = (h ^ UInt64(bytes[i])) &* 0x0000_0100_0000_01b3
            i += 1
        }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return h
    }
}

@inline(__always) func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    if n >= 8 {
        var i = 0
        while i + 8 <= n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        // The last partial word as the 8 bytes ending at the end (overlapping what was compared).
        return i == n || a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    }
    if n >= 4 {
        return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
            && a.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self) == b.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
    }
    var i = 0
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
