/// Every name the pipeline has seen (workflows, owners, models, providers, tag values, outcome names),
/// interned once, plus the tuples of configured tag values. Owned by the polling thread.
public struct Dimensions: Sendable {
    public var names = StringTable()
    /// The configured tag dimensions (`rollups.tags`), in config order.
    public let tagNames: [String]
    private var tagTupleIds: [[UInt32]: UInt32] = [:]
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
        if let id = tagTupleIds[values] { return id }
        let id = UInt32(tagTuples.count)
        tagTuples.append(values)
        tagTupleIds[values] = id
        return id
    }

    /// Builds the tag tuple from a filler that sets value ids per configured tag index, reusing a buffer.
    public mutating func internTags(_ fill: (inout [UInt32]) -> Void) -> UInt32 {
        for i in 0..<scratchTuple.count { scratchTuple[i] = SeriesKey.none }
        fill(&scratchTuple)
        return internTags(scratchTuple)
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
