/// Encodes rollup rows as JSON Lines exactly as contract section 3 shows, in a stable order so that
/// replaying the same input writes byte-identical files.
public struct RollupEncoder: Sendable {
    public init() {}

    public func encode(_ window: ClosedWindow, label: String, size: Int64, dimensions d: Dimensions) -> [UInt8] {
        var out: [UInt8] = []
        encode(window, label: label, size: size, dimensions: d, into: &out)
        return out
    }

    /// Appends the window's rows to `out` (a buffer reused across files): numbers, amounts and times are
    /// written as bytes, with no `String` per field.
    public func encode(_ window: ClosedWindow, label: String, size: Int64, dimensions d: Dimensions, into out: inout [UInt8]) {
        let rows = window.rows.sorted { a, b in RollupEncoder.precedes(a.key, b.key, d) }
        out.reserveCapacity(out.count + rows.count * 420)
        var prefix: [UInt8] = []   // `{"window":…,"window_end":"…"` is the same on every row
        prefix += #"{"window":"#.utf8
        appendString(&prefix, label)
        prefix += #","window_start":""#.utf8; RFC3339.append(window.start, to: &prefix)
        prefix += #"","window_end":""#.utf8; RFC3339.append(window.start &+ size, to: &prefix)
        prefix += #"","workflow":"#.utf8
        // Tag names as JSON once per file; names are copied from the string table's bytes.
        let tagNames = d.tagNames.map { n -> [UInt8] in var b: [UInt8] = []; appendString(&b, n); b.append(UInt8(ascii: ":")); return b }
        let late = window.isLate
        for (k, c) in rows {
            out += prefix
            d.names.appendJSON(k.workflow, to: &out)
            out += #","owner":"#.utf8; d.names.appendJSON(k.owner, to: &out)
            out += #","model":"#.utf8; appendOptional(&out, k.model, d)
            out += #","provider":"#.utf8; appendOptional(&out, k.provider, d)
            out += #","tags":{"#.utf8
            if k.tags != Dimensions.noTags {
                var first = true
                for (i, v) in d.tagTuples[Int(k.tags)].enumerated() where v != SeriesKey.none {
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    out += tagNames[i]; d.names.appendJSON(v, to: &out)
                }
            }
            out += #"},"requests":"#.utf8; appendInteger(c.requests, to: &out)
            out += #","errors":"#.utf8; appendInteger(c.errors, to: &out)
            out += #","input_tokens":"#.utf8; appendInteger(c.input, to: &out)
            out += #","cache_read_tokens":"#.utf8; appendInteger(c.cacheRead, to: &out)
            out += #","cache_write_tokens":"#.utf8; appendInteger(c.cacheWrite, to: &out)
            out += #","output_tokens":"#.utf8; appendInteger(c.output, to: &out)
            out += #","reasoning_tokens":"#.utf8; appendInteger(c.reasoning, to: &out)
            out += #","cost_usd":"#.utf8; c.cost.appendDecimal(to: &out)
            out += #","unpriced_requests":"#.utf8; appendInteger(c.unpricedRequests, to: &out)
            out += #","outcomes":{"#.utf8
            if !c.outcomes.isEmpty {
                let outcomes = c.outcomes.map { (d.names[$0.name], $0.count) }.sorted { $0.0 < $1.0 }
                for (i, (name, count)) in outcomes.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    appendString(&out, name); out.append(UInt8(ascii: ":")); appendInteger(count, to: &out)
                }
            }
            out += #"},"outcome_value_usd":"#.utf8; c.outcomeValue.appendDecimal(to: &out)
            out += late ? #","late":true}"#.utf8 : #","late":false}"#.utf8
            out.append(UInt8(ascii: "\n"))
        }
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

    private func appendOptional(_ out: inout [UInt8], _ id: UInt32, _ d: Dimensions) {
        if id == SeriesKey.none { out += "null".utf8 } else { d.names.appendJSON(id, to: &out) }
    }
}
