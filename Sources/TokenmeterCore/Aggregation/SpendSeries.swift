/// The counters of one spend-metric series (one label set of `metrics.dimensions`) since the process
/// started. Exact integers; money in femto-dollars, shown in USD on /metrics.
public struct SpendSeriesCounters: Sendable, Equatable {
    public var requests: Int64 = 0
    public var errors: Int64 = 0
    public var input: Int64 = 0
    public var cacheRead: Int64 = 0
    public var cacheWrite: Int64 = 0
    public var output: Int64 = 0
    public var reasoning: Int64 = 0
    public var unpricedRequests: Int64 = 0
    public var outcomes: Int64 = 0
    public var cost: Money = .zero
    public init() {}
}

/// What /metrics shows of the spend counters: the label names, one label-value list per series (the
/// overflow series `__other__` first when it has been used) and their counters.
public struct SpendSeriesSnapshot: Sendable, Equatable {
    public var labelNames: [String] = []
    public var labels: [[String]] = []
    public var counters: [SpendSeriesCounters] = []
    /// Counted events (usage contributions and outcome events) whose values went to `__other__`.
    public var overflowEvents: Int64 = 0
    public var maxSeries = 0
    /// Label sets in use, the overflow series not included.
    public var seriesCount = 0
    public init() {}
}

/// The live view of spend for /metrics: counters per label set of `metrics.dimensions`, fed with every
/// counted event (on time or late, the same values as the rollup rows) on the polling thread.
///
/// Per event it allocates nothing once the tables have grown: the event's row key (interned name ids, with
/// the fields no label uses masked out) is looked up in an open-addressing table that maps it to a series.
/// Only a key never seen builds its label values (strings) and finds or creates the series by them: two
/// keys may share a series (models of one family, tag tuples that differ in a tag not used as a label).
/// Past `metrics.max_series` label sets, new ones go to the overflow series, whose every label is
/// `__other__`, and each such event is counted in `overflowEvents`.
///
/// Name ids change when the name table is rebuilt (`Pipeline.compactNames`): `forgetKeys` then empties the
/// key table; the series and their label values stay (counters never go back), and keys are looked up
/// again by their label values.
public struct SpendSeriesTable {
    public static let overflowLabel = "__other__"
    public let dimensions: [SpendDimension]
    public let maxSeries: Int
    private let useWorkflow: Bool, useOwner: Bool, useModel: Bool, useProvider: Bool, useTags: Bool
    /// Open addressing over `keys`; 0 = empty, otherwise key index + 1.
    private var slots = [UInt32](repeating: 0, count: 256)
    private var keys: [SeriesKey] = []
    private var keySeries: [Int32] = []
    /// Series 0 is the overflow series.
    public private(set) var labels: [[String]]
    public private(set) var counters: [SpendSeriesCounters]
    private var byLabels: [[String]: Int32] = [:]
    public private(set) var overflowEvents: Int64 = 0
    /// Changes with every counted value, so an unchanged table is not copied again.
    public private(set) var version: UInt64 = 0
    /// With one name dimension and no tags (the default, `owner`; also `model_family` alone), the series of
    /// an event is found by indexing with that name's id (ids are dense), not by hashing the key: the
    /// per-event cost of the metrics is then an array read. `direct[id]` is the series + 1 (0: not known
    /// yet); ids past `directLimit` take the hashed path.
    private let directField: DirectField?
    private var direct: [Int32] = []
    static let directLimit = 1 << 20

    enum DirectField {
        case workflow, owner, model, provider

        @inline(__always)
        func id(_ k: SeriesKey) -> UInt32 {
            switch self {
            case .workflow: k.workflow
            case .owner: k.owner
            case .model: k.model
            case .provider: k.provider
            }
        }
    }

    public init(_ settings: MetricsSettings) {
        dimensions = settings.dimensions
        maxSeries = settings.maxSeries
        useWorkflow = dimensions.contains(.workflow)
        useOwner = dimensions.contains(.owner)
        useModel = dimensions.contains(.model) || dimensions.contains(.modelFamily)
        useProvider = dimensions.contains(.provider)
        useTags = dimensions.contains { if case .tag = $0 { true } else { false } }
        let fields = [useWorkflow ? DirectField.workflow : nil, useOwner ? .owner : nil, useModel ? .model : nil,
                      useProvider ? .provider : nil].compactMap { $0 }
        directField = !useTags && fields.count == 1 ? fields[0] : nil
        labels = [Array(repeating: SpendSeriesTable.overflowLabel, count: dimensions.count)]
        counters = [SpendSeriesCounters()]
    }

    /// Label sets in use, the overflow series not included.
    public var seriesCount: Int { counters.count - 1 }

    /// `names` is read only when `key` makes a new series (its label values): passing the dimensions
    /// themselves copied them, a dozen retains and releases per event.
    @inline(__always)
    public mutating func addUsage(_ key: SeriesKey, _ t: TokenCounts, cost: Money?, isError: Bool, names: () -> Dimensions) {
        let s = series(key, names: names)
        version &+= 1
        counters.withUnsafeMutableBufferPointer { c in
            c[s].requests &+= 1
            if isError { c[s].errors &+= 1 }
            c[s].input &+= t.input
            c[s].cacheRead &+= t.cacheRead
            c[s].cacheWrite &+= t.cacheWrite
            c[s].output &+= t.output
            c[s].reasoning &+= t.reasoning
            if let cost { c[s].cost += cost } else { c[s].unpricedRequests &+= 1 }
        }
    }

    @inline(__always)
    public mutating func addOutcome(_ key: SeriesKey, count: Int64, names: () -> Dimensions) {
        let s = series(key, names: names)
        version &+= 1
        counters.withUnsafeMutableBufferPointer { $0[s].outcomes &+= count }
    }

    /// Name ids are about to mean other names (the name table was rebuilt).
    public mutating func forgetKeys() {
        for i in slots.indices { slots[i] = 0 }
        for i in direct.indices { direct[i] = 0 }
        keys.removeAll(keepingCapacity: true)
        keySeries.removeAll(keepingCapacity: true)
    }

    /// A copy for the metrics snapshot, in fresh buffers: sharing `counters` with the snapshot would make
    /// the next counted event copy the whole table on the polling thread.
    public func snapshot() -> SpendSeriesSnapshot {
        var s = SpendSeriesSnapshot()
        s.labelNames = dimensions.map(\.labelName)
        let from = counters[0].requests == 0 && counters[0].outcomes == 0 ? 1 : 0
        s.labels = Array(labels[from...])
        s.counters = Array(unsafeUninitializedCapacity: counters.count - from) { buf, n in
            for i in from..<counters.count { buf[i - from] = counters[i] }
            n = counters.count - from
        }
        s.overflowEvents = overflowEvents
        s.maxSeries = maxSeries
        s.seriesCount = seriesCount
        return s
    }

    @inline(__always)
    private mutating func series(_ raw: SeriesKey, names: () -> Dimensions) -> Int {
        guard let field = directField else { return hashedSeries(raw, names: names) }
        let id = Int(field.id(raw))
        if id < direct.count {
            let known = direct.withUnsafeBufferPointer { $0[id] }
            if known > 0 {
                if known == 1 { overflowEvents &+= 1 }
                return Int(known - 1)
            }
        }
        let s = hashedSeries(raw, names: names)
        if id < Self.directLimit {
            if id >= direct.count { direct.append(contentsOf: repeatElement(0, count: max(id + 1 - direct.count, direct.count))) }
            direct[id] = Int32(s + 1)
        }
        return s
    }

    @inline(__always)
    private mutating func hashedSeries(_ raw: SeriesKey, names: () -> Dimensions) -> Int {
        let key = SeriesKey(workflow: useWorkflow ? raw.workflow : SeriesKey.none, owner: useOwner ? raw.owner : SeriesKey.none,
                            model: useModel ? raw.model : SeriesKey.none, provider: useProvider ? raw.provider : SeriesKey.none,
                            tags: useTags ? raw.tags : Dimensions.noTags)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: SpendSeriesTable.hash(key)) & mask
        while true {
            let slot = slots[i]
            if slot == 0 { break }
            let k = Int(slot - 1)
            if keys[k] == key {
                let s = Int(keySeries[k])
                if s == 0 { overflowEvents &+= 1 }
                return s
            }
            i = (i + 1) & mask
        }
        let s = newKey(key, slot: i, names: names)
        if s == 0 { overflowEvents &+= 1 }
        return s
    }

    /// Keys remembered at most: every combination of the dimensions' names is one key, and past the cap
    /// they all lead to `__other__`, so without a limit a stream of new names in several dimensions would
    /// grow the table without end. Past it the table starts empty again (keys are looked up anew by their
    /// label values); with the default cap it holds at most 64 Ki keys, about 2 MiB.
    public var keyLimit: Int { max(64 * maxSeries, 65_536) }

    private mutating func newKey(_ key: SeriesKey, slot: Int, names: () -> Dimensions) -> Int {
        let names = names()
        var slot = slot
        if keys.count >= keyLimit {
            forgetKeys()
            slot = Int(truncatingIfNeeded: SpendSeriesTable.hash(key)) & (slots.count - 1)
        }
        let values = dimensions.map { d -> String in
            switch d {
            case .workflow: names.name(key.workflow) ?? ""
            case .owner: names.name(key.owner) ?? ""
            case .model: names.name(key.model) ?? ""
            case .provider: names.name(key.provider) ?? ""
            case .modelFamily: names.name(key.model).map(ModelFamily.of) ?? ""
            case .tag(let t):
                names.tags(key.tags).first { $0.0 == t }?.1 ?? ""
            }
        }
        let s: Int32
        if let found = byLabels[values] {
            s = found
        } else if seriesCount < maxSeries {
            s = Int32(counters.count)
            labels.append(values)
            counters.append(SpendSeriesCounters())
            byLabels[values] = s
        } else {
            s = 0
        }
        keys.append(key)
        keySeries.append(s)
        if keys.count * 2 > slots.count {
            var bigger = [UInt32](repeating: 0, count: slots.count * 2)
            let mask = bigger.count - 1
            for (k, old) in keys.enumerated() {
                var j = Int(truncatingIfNeeded: SpendSeriesTable.hash(old)) & mask
                while bigger[j] != 0 { j = (j + 1) & mask }
                bigger[j] = UInt32(k + 1)
            }
            slots = bigger
        } else {
            slots[slot] = UInt32(keys.count)
        }
        return Int(s)
    }

    @inline(__always)
    static func hash(_ k: SeriesKey) -> UInt64 {
        @inline(__always) func mix(_ h: UInt64, _ v: UInt32) -> UInt64 {
            let x = (h ^ UInt64(v)) &* 0xBF58_476D_1CE4_E5B9
            return x ^ (x >> 31)
        }
        return mix(mix(mix(mix(mix(0x9E37_79B9_7F4A_7C15, k.workflow), k.owner), k.model), k.provider), k.tags)
    }
}
