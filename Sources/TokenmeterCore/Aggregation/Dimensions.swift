/// Every name the pipeline has seen (workflows, owners, models, providers, tag values, outcome names),
/// interned once, plus the tuples of configured tag values. Owned by the polling thread.
public struct Dimensions: Sendable {
    public var names = StringTable()
    /// The configured tag dimensions (`rollups.tags`), in config order.
    public let tagNames: [String]
    /// Open addressing over `tagTuples`; 0 = empty, otherwise tuple id + 1.
    private var tupleSlots = [UInt32](repeating: 0, count: 64)
    /// Tuple id -> one value id per tag name (`SeriesKey.none` where the event had no such tag).
    public private(set) var tagTuples: [[UInt32]] = []
    private var scratchTuple: [UInt32]

    public init(tagNames: [String]) {
        self.tagNames = tagNames
        self.scratchTuple = Array(repeating: SeriesKey.none, count: tagNames.count)
        _ = internTags(scratchTuple)
    }

    /// Tuple 0 is "no configured tag present".
    public static let noTags: UInt32 = 0

    public mutating func internTags(_ values: [UInt32]) -> UInt32 {
        values.withUnsafeBufferPointer { internTags($0) }
    }

    /// The tuple id of `values` (one value id per configured tag), looked up without building an array;
    /// only a new tuple is copied.
    public mutating func internTags(_ values: UnsafeBufferPointer<UInt32>) -> UInt32 {
        let h = Dimensions.tupleHash(values)
        var mask = tupleSlots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let slot = tupleSlots[i]
            if slot == 0 { break }
            let id = Int(slot - 1)
            // Compared as memory (the generic `elementsEqual` cost more than the rest of the lookup).
            let same = tagTuples[id].withUnsafeBufferPointer { t in
                t.count == values.count && (t.isEmpty || memcmpBytes(UnsafeRawPointer(t.baseAddress!), UnsafeRawPointer(values.baseAddress!), t.count * MemoryLayout<UInt32>.stride))
            }
            if same { return UInt32(id) }
            i = (i + 1) & mask
        }
        let id = tagTuples.count
        tagTuples.append(Array(values))
        if (id + 1) * 2 > tupleSlots.count {
            var bigger = [UInt32](repeating: 0, count: tupleSlots.count * 2)
            mask = bigger.count - 1
            for (old, tuple) in tagTuples.enumerated() {
                var j = Int(truncatingIfNeeded: tuple.withUnsafeBufferPointer { Dimensions.tupleHash($0) }) & mask
                while bigger[j] != 0 { j = (j + 1) & mask }
                bigger[j] = UInt32(old + 1)
            }
            tupleSlots = bigger
            return UInt32(id)
        }
        tupleSlots[i] = UInt32(id + 1)
        return UInt32(id)
    }

    @inline(__always)
    static func tupleHash(_ values: UnsafeBufferPointer<UInt32>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        for v in values { h = (h ^ UInt64(v)) &* 0xBF58_476D_1CE4_E5B9; h ^= h >> 31 }
        return h
    }

    /// Builds the tag tuple from a filler that sets value ids per configured tag index, reusing a buffer.
    public mutating func internTags(_ fill: (inout [UInt32]) -> Void) -> UInt32 {
        for i in 0..<scratchTuple.count { scratchTuple[i] = SeriesKey.none }
        fill(&scratchTuple)
        let t = scratchTuple
        return t.withUnsafeBufferPointer { internTags($0) }
    }

    public func name(_ id: UInt32) -> String? { id == SeriesKey.none ? nil : names[id] }

    /// The configured tags of a tuple that are present, as (name, value) in config order.
    public func tags(_ tuple: UInt32) -> [(String, String)] {
        var out: [(String, String)] = []
        for (i, v) in tagTuples[Int(tuple)].enumerated() where v != SeriesKey.none {
            out.append((tagNames[i], names[v]))
        }
        return out
    }
}
