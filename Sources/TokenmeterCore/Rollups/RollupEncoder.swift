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
        let late = window.isLate
        for (k, c) in rows {
            out += prefix
            appendString(&out, d.names[k.workflow])
            out += #","owner":"#.utf8; appendString(&out, d.names[k.owner])
            out += #","model":"#.utf8; appendOptional(&out, d.name(k.model))
            out += #","provider":"#.utf8; appendOptional(&out, d.name(k.provider))
            out += #","tags":{"#.utf8
            var first = true
            for (i, v) in d.tagTuples[Int(k.tags)].enumerated() where v != SeriesKey.none {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                appendString(&out, d.tagNames[i]); out.append(UInt8(ascii: ":")); appendString(&out, d.names[v])
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

    /// Row order: workflow, owner, model, provider, then the present tags as (name, value) pairs, by
    /// `String` comparison (a missing model or provider sorts as ""), so a replay writes the same bytes.
    static func precedes(_ a: SeriesKey, _ b: SeriesKey, _ d: Dimensions) -> Bool {
        if a.workflow != b.workflow { return d.names[a.workflow] < d.names[b.workflow] }
        if a.owner != b.owner { return d.names[a.owner] < d.names[b.owner] }
        if a.model != b.model {
            let x = d.name(a.model) ?? "", y = d.name(b.model) ?? ""
            if x != y { return x < y }
        }
        if a.provider != b.provider {
            let x = d.name(a.provider) ?? "", y = d.name(b.provider) ?? ""
            if x != y { return x < y }
        }
        if a.tags == b.tags { return false }
        return d.tags(a.tags).lazy.flatMap { [$0.0, $0.1] }.lexicographicallyPrecedes(d.tags(b.tags).lazy.flatMap { [$0.0, $0.1] })
    }

    private func appendOptional(_ out: inout [UInt8], _ s: String?) {
        if let s { appendString(&out, s) } else { out += "null".utf8 }
    }
}

/// Appends `s` as a JSON string literal.
public func appendString(_ out: inout [UInt8], _ s: String) {
    out.append(UInt8(ascii: "\""))
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "\""): out += #"\""#.utf8
        case UInt8(ascii: "\\"): out += #"\\"#.utf8
        case 0x0A: out += #"\n"#.utf8
        case 0x0D: out += #"\r"#.utf8
        case 0x09: out += #"\t"#.utf8
        case 0..<0x20:
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            out += #"\u00"#.utf8
            out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 15)])
        default: out.append(b)
        }
    }
    out.append(UInt8(ascii: "\""))
}

public func jsonString(_ s: String) -> String {
    var out: [UInt8] = []
    appendString(&out, s)
    return String(decoding: out, as: UTF8.self)
}
