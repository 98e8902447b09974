import TokenmeterCore

/// Sums rollup records per key of one grouping (a list of dimensions), for the span and the previous span.
/// Keys are interned ids (and a time bucket), so adding a row hashes a few integers and allocates nothing.
final class ReportGrouping {
    struct Key: Hashable {
        var time: Int64
        var ids: SIMD8<UInt32>
    }
    struct Slot {
        var key: Key
        var current = RollupCounters()
        var previous = RollupCounters()
        var currentRows = 0
        var previousRows = 0
    }

    let dimensions: [ReportDimension]
    /// Per non-time dimension: which field (0 workflow, 1 owner, 2 model, 3 provider, 4 tag, 5 model family).
    private let fields: [(kind: Int, tag: UInt32)]
    private let timeDimension: ReportDimension?
    private let windowMillis: Int64
    private var index: [Key: Int] = [:]
    /// Model families (`ModelFamily`): model id -> family id in `families`, worked out once per model.
    private var familyOf: [UInt32: UInt32] = [:]
    private var families = StringTable()
    private(set) var slots: [Slot] = []

    init(_ dimensions: [ReportDimension], windowMillis: Int64, strings: inout StringTable) {
        self.dimensions = dimensions
        self.windowMillis = windowMillis
        timeDimension = dimensions.first { $0.isTime }
        fields = dimensions.compactMap { d -> (Int, UInt32)? in
            switch d {
            case .workflow: (0, 0)
            case .owner: (1, 0)
            case .model: (2, 0)
            case .provider: (3, 0)
            case .modelFamily: (5, 0)
            case .tag(let name): (4, strings.intern(name))
            case .window, .day, .hour: nil
            }
        }
    }

    /// `shift` moves a previous-span row's time into the span (so "same hour, previous period" lines up).
    func add(_ r: RollupRecord, previous: Bool, shift: Int64, strings: StringTable) {
        var ids = SIMD8<UInt32>(repeating: 0)
        var n = 0
        while n < fields.count {
            ids[n] = fields[n].kind == 5 ? family(r.model, strings) : id(r, fields[n].kind, fields[n].tag)
            n += 1
        }
        var time = Int64.min
        if let t = timeDimension {
            let start = previous ? r.windowStart + shift : r.windowStart
            if let b = t.bucketMillis { time = floorDiv(start, b) * b } else { time = start }
        }
        let key = Key(time: time, ids: ids)
        let slot = index[key] ?? insert(key)
        let counters = r.counters
        if previous {
            slots[slot].previous.merge(counters)
            slots[slot].previousRows += 1
        } else {
            slots[slot].current.merge(counters)
            slots[slot].currentRows += 1
        }
    }

    private func id(_ r: RollupRecord, _ kind: Int, _ tag: UInt32) -> UInt32 {
        switch kind {
        case 0: return r.workflow
        case 1: return r.owner
        case 2: return r.model
        case 3: return r.provider
        default: return r.tag(tag)
        }
    }

    private func family(_ model: UInt32, _ strings: StringTable) -> UInt32 {
        if model == RollupRecord.none { return model }
        if let f = familyOf[model] { return f }
        let f = families.intern(ModelFamily.of(strings[model]))
        familyOf[model] = f
        return f
    }

    private func insert(_ key: Key) -> Int {
        let i = slots.count
        index[key] = i
        slots.append(Slot(key: key))
        return i
    }

    /// The finished table: names resolved, sorted, `top` applied.
    func table(_ strings: StringTable, compare: Bool, top: Int?) -> ReportTable {
        func figures(_ c: RollupCounters, rows: Int) -> ReportFigures {
            var f = ReportFigures()
            f.requests = c.requests; f.errors = c.errors; f.inputTokens = c.input; f.cacheReadTokens = c.cacheRead
            f.cacheWriteTokens = c.cacheWrite; f.outputTokens = c.output; f.reasoningTokens = c.reasoning; f.cost = c.cost
            f.unpricedRequests = c.unpricedRequests; f.outcomeValue = c.outcomeValue; f.rows = rows
            for o in c.outcomes { f.outcomes[strings[o.name], default: 0] += o.count }
            return f
        }
        var lines: [ReportLine] = []
        lines.reserveCapacity(slots.count)
        for s in slots {
            var values: [String?] = []
            var fi = 0
            for d in dimensions {
                if d.isTime {
                    values.append(d == .day ? RFC3339.day(s.key.time) : RFC3339.format(s.key.time))
                } else {
                    let id = s.key.ids[fi]
                    values.append(id == RollupRecord.none ? nil : d == .modelFamily ? families[id] : strings[id])
                    fi += 1
                }
            }
            var line = ReportLine(values: values, time: timeDimension == nil ? nil : s.key.time)
            line.current = figures(s.current, rows: s.currentRows)
            if compare { line.previous = figures(s.previous, rows: s.previousRows) }
            lines.append(line)
        }
        var total = ReportFigures()
        var previousTotal: ReportFigures? = compare ? ReportFigures() : nil
        for l in lines {
            total.add(l.current)
            if let p = l.previous { previousTotal!.add(p) }
        }
        let ti = dimensions.firstIndex { $0.isTime }
        if let top, top >= 0 {
            lines = ReportGrouping.fold(lines, top: top, timeIndex: ti, compare: compare)
        }
        lines.sort { a, b in
            if let ta = a.time, let tb = b.time, ta != tb { return ta < tb }
            if a.isOther != b.isOther { return b.isOther }
            if a.current.cost != b.current.cost { return a.current.cost > b.current.cost }
            if let pa = a.previous?.cost, let pb = b.previous?.cost, pa != pb { return pa > pb }
            return a.label < b.label
        }
        return ReportTable(dimensions: dimensions, lines: lines, total: total, previousTotal: previousTotal)
    }

    /// Keeps the `top` costliest keys (ignoring the time dimension: a key's cost over the whole span) and
    /// sums the rest into `(other)` lines, one per time bucket.
    static func fold(_ lines: [ReportLine], top: Int, timeIndex: Int?, compare: Bool) -> [ReportLine] {
        func keyOf(_ l: ReportLine) -> [String?] {
            guard let ti = timeIndex else { return l.values }
            var v = l.values; v.remove(at: ti); return v
        }
        var cost: [[String?]: (Money, Money)] = [:]
        for l in lines {
            var c = cost[keyOf(l)] ?? (.zero, .zero)
            c.0 += l.current.cost; c.1 += l.previous?.cost ?? .zero
            cost[keyOf(l)] = c
        }
        guard cost.count > top else { return lines }
        let ranked = cost.sorted { a, b in
            a.value.0 != b.value.0 ? a.value.0 > b.value.0 : a.value.1 != b.value.1 ? a.value.1 > b.value.1
                : a.key.map { $0 ?? "" }.lexicographicallyPrecedes(b.key.map { $0 ?? "" })
        }
        let keep = Set(ranked.prefix(top).map(\.key))
        var out: [ReportLine] = []
        var others: [Int64: ReportLine] = [:]
        for l in lines {
            if keep.contains(keyOf(l)) { out.append(l); continue }
            let t = l.time ?? Int64.min
            var o = others[t] ?? {
                var v = [String?](repeating: "(other)", count: l.values.count)
                if let ti = timeIndex { v[ti] = l.values[ti] }
                var n = ReportLine(values: v, time: l.time)
                n.isOther = true
                if compare { n.previous = ReportFigures() }
                return n
            }()
            o.current.add(l.current)
            if let p = l.previous { o.previous!.add(p) }
            others[t] = o
        }
        return out + others.values
    }
}
