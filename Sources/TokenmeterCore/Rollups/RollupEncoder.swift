/// Encodes rollup rows as JSON Lines exactly as contract section 3 shows, in a stable order so that
/// replaying the same input writes byte-identical files.
public struct RollupEncoder: Sendable {
    public init() {}

    public func encode(_ window: ClosedWindow, label: String, size: Int64, dimensions d: Dimensions) -> [UInt8] {
        var out: [UInt8] = []
        encode(window, label: label, size: size, dimensions: d, into: &out)
        return out
    }

    /// Appends the window's rows to `out` (a buffer reused across files). Rows are written through a
    /// pointer into a scratch block (`BlockWriter`), each bounded beforehand (`rowBound`): appending field
    /// by field to an array (a capacity and uniqueness check and a call per field, some twenty per row)
    /// was most of the encoder's time. No `String` per field.
    public func encode(_ window: ClosedWindow, label: String, size: Int64, dimensions d: Dimensions, into out: inout [UInt8]) {
        var prefix: [UInt8] = []   // `{"window":…,"window_end":"…"` is the same on every row
        prefix += #"{"window":"#.utf8
        appendString(&prefix, label)
        prefix += #","window_start":""#.utf8; RFC3339.append(window.start, to: &prefix)
        prefix += #"","window_end":""#.utf8; RFC3339.append(window.start &+ size, to: &prefix)
        prefix += #"","workflow":"#.utf8
        // Tag names as JSON once per file; names are copied from the string table's bytes.
        let tagNames = d.tagNames.map { n -> [UInt8] in var b: [UInt8] = []; appendString(&b, n); b.append(UInt8(ascii: ":")); return b }
        let late = window.isLate
        let rows = window.rows
        let order = RollupEncoder.rowOrder(rows, d)
        out.reserveCapacity(out.count + rows.count * 420)
        var block = BlockWriter()
        prefix.withUnsafeBytes { prefix in
            for i in order {
                let row = rows.row(Int(i))
                let bound = RollupEncoder.rowBound(row.key, row.counters, prefix: prefix.count, tagNames: tagNames, d)
                block.write(bound: bound, flushingInto: &out) { c in
                    RollupEncoder.writeRow(row.key, row.counters, prefix: prefix, tagNames: tagNames, late: late, d, to: &c)
                }
            }
        }
        block.flush(into: &out)
    }

    /// The row's literal text (field names, braces, commas: about 240 bytes), with room to spare.
    static let rowLiteralBytes = 512

    /// The most bytes `writeRow` writes for this row: the literal text, the prefix, each name at its
    /// longest escape, each number at its longest.
    static func rowBound(_ k: SeriesKey, _ c: RollupCounters, prefix: Int, tagNames: [[UInt8]], _ d: Dimensions) -> Int {
        var n = rowLiteralBytes + prefix + 8 * integerBound + 2 * FixedDecimal.bound
        n += jsonStringBound(d.names.byteCount(k.workflow)) + jsonStringBound(d.names.byteCount(k.owner))
        n += k.model == SeriesKey.none ? 4 : jsonStringBound(d.names.byteCount(k.model))
        n += k.provider == SeriesKey.none ? 4 : jsonStringBound(d.names.byteCount(k.provider))
        if k.tags != Dimensions.noTags {
            for (i, v) in d.tagTuples[Int(k.tags)].enumerated() where v != SeriesKey.none {
                n += 1 + tagNames[i].count + jsonStringBound(d.names.byteCount(v))
            }
        }
        for o in c.outcomes { n += 2 + jsonStringBound(d.names.byteCount(o.name)) + integerBound }
        return n
    }

    static func writeRow(_ k: SeriesKey, _ c: RollupCounters, prefix: UnsafeRawBufferPointer, tagNames: [[UInt8]],
                         late: Bool, _ d: Dimensions, to out: inout ByteCursor) {
        out.put(prefix)
        d.names.writeJSON(k.workflow, to: &out)
        out.put(#","owner":"#); d.names.writeJSON(k.owner, to: &out)
        out.put(#","model":"#); writeOptional(&out, k.model, d)
        out.put(#","provider":"#); writeOptional(&out, k.provider, d)
        out.put(#","tags":{"#)
        if k.tags != Dimensions.noTags {
            var first = true
            for (i, v) in d.tagTuples[Int(k.tags)].enumerated() where v != SeriesKey.none {
                if !first { out.put(UInt8(ascii: ",")) }
                first = false
                tagNames[i].withUnsafeBytes { out.put($0) }
                d.names.writeJSON(v, to: &out)
            }
        }
        out.put(#"},"requests":"#); writeInteger(c.requests, to: &out)
        out.put(#","errors":"#); writeInteger(c.errors, to: &out)
        out.put(#","input_tokens":"#); writeInteger(c.input, to: &out)
        out.put(#","cache_read_tokens":"#); writeInteger(c.cacheRead, to: &out)
        out.put(#","cache_write_tokens":"#); writeInteger(c.cacheWrite, to: &out)
        out.put(#","output_tokens":"#); writeInteger(c.output, to: &out)
        out.put(#","reasoning_tokens":"#); writeInteger(c.reasoning, to: &out)
        out.put(#","cost_usd":"#); c.cost.writeDecimal(to: &out)
        out.put(#","unpriced_requests":"#); writeInteger(c.unpricedRequests, to: &out)
        out.put(#","outcomes":{"#)
        if !c.outcomes.isEmpty {
            // By name as `String`s compare (rare: only outcome rows have any, nearly always one; a sort
            // of one would still copy the dimensions into its closure).
            let names = d.names
            let outcomes = c.outcomes.count == 1 ? c.outcomes : c.outcomes.sorted { names[$0.name] < names[$1.name] }
            for (i, o) in outcomes.enumerated() {
                if i > 0 { out.put(UInt8(ascii: ",")) }
                d.names.writeJSON(o.name, to: &out); out.put(UInt8(ascii: ":")); writeInteger(o.count, to: &out)
            }
        }
        out.put(#"},"outcome_value_usd":"#); c.outcomeValue.writeDecimal(to: &out)
        out.put(late ? #","late":true}"# : #","late":false}"#)
        out.put(UInt8(ascii: "\n"))
    }

    /// The rows' positions in `precedes` order. Sorted as indices into a copy of the keys: moving the rows
    /// themselves (140 bytes and a reference each) cost more, and the keys side by side are quicker to
    /// compare than rows spread over chunks. When the name table's order is up to date
    /// (`StringTable.updateOrder`), each key's workflow, owner, model and provider are first replaced by
    /// their ranks, packed in two integers: the sort then compares names' bytes only for keys that differ
    /// in their tags alone (comparing bytes was a third of writing rollup files).
    static func rowOrder(_ rows: RowTable, _ d: Dimensions) -> [Int32] {
        let keys = rows.keys
        var order = Array(0..<Int32(truncatingIfNeeded: rows.count))
        keys.withUnsafeBufferPointer { k in
            guard d.names.isOrdered else {
                order.sort { a, b in RollupEncoder.precedes(k[Int(a)], k[Int(b)], d) }
                return
            }
            // A missing model or provider ranks before every name.
            func optional(_ id: UInt32) -> UInt64 { id == SeriesKey.none ? 0 : UInt64(d.names.rank(id)) &+ 1 }
            let packed = k.map { key in
                (UInt64(d.names.rank(key.workflow)) << 32 | UInt64(d.names.rank(key.owner)),
                 optional(key.model) << 32 | optional(key.provider))
            }
            packed.withUnsafeBufferPointer { p in
                order.sort { a, b in
                    let x = p[Int(a)], y = p[Int(b)]
                    if x.0 != y.0 { return x.0 < y.0 }
                    if x.1 != y.1 { return x.1 < y.1 }
                    return RollupEncoder.precedes(k[Int(a)], k[Int(b)], d)
                }
            }
        }
        return order
    }

    /// Row order: workflow, owner, model, provider (a missing one first), then the present tags as (name,
    /// value) pairs, by UTF-8 bytes, so that a replay writes the same bytes. Ids are compared through the
    /// string table's bytes: building `String`s here was a tenth of the daemon's time on a backlog.
    static func precedes(_ a: SeriesKey, _ b: SeriesKey, _ d: Dimensions) -> Bool {
        if a.workflow != b.workflow { return d.names.precedes(a.workflow, b.workflow) }
        if a.owner != b.owner { return d.names.precedes(a.owner, b.owner) }
        if a.model != b.model { return optionalPrecedes(a.model, b.model, d) }
        if a.provider != b.provider { return optionalPrecedes(a.provider, b.provider, d) }
        if a.tags == b.tags { return false }
        let x = d.tagTuples[Int(a.tags)], y = d.tagTuples[Int(b.tags)]
        // Present tags in config order, as (name, value) pairs: the first difference decides.
        var i = 0, j = 0
        while true {
            while i < x.count && x[i] == SeriesKey.none { i += 1 }
            while j < y.count && y[j] == SeriesKey.none { j += 1 }
            if i == x.count || j == y.count { return i == x.count && j < y.count }
            if i != j { return d.tagNames[i] < d.tagNames[j] }
            if x[i] != y[j] { return d.names.precedes(x[i], y[j]) }
            i += 1; j += 1
        }
    }

    private static func optionalPrecedes(_ a: UInt32, _ b: UInt32, _ d: Dimensions) -> Bool {
        if a == SeriesKey.none { return true }
        if b == SeriesKey.none { return false }
        return d.names.precedes(a, b)
    }

    private static func writeOptional(_ out: inout ByteCursor, _ id: UInt32, _ d: Dimensions) {
        if id == SeriesKey.none { out.put("null") } else { d.names.writeJSON(id, to: &out) }
    }
}
