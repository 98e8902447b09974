/// Encodes rollup rows as JSON Lines exactly as contract section 3 shows, in a stable order so that
/// replaying the same input writes byte-identical files.
public struct RollupEncoder: Sendable {
    public init() {}

    public func encode(_ window: ClosedWindow, label: String, size: Int64, dimensions d: Dimensions) -> [UInt8] {
        let rows = window.rows.map { (key: $0.key, counters: $0.value, sort: sortKey($0.key, d)) }
            .sorted { $0.sort.lexicographicallyPrecedes($1.sort) }
        var out: [UInt8] = []
        out.reserveCapacity(rows.count * 420)
        let start = RFC3339.format(window.start)
        let end = RFC3339.format(window.start &+ size)
        let late = window.isLate ? "true" : "false"
        for row in rows {
            let k = row.key, c = row.counters
            out += #"{"window":"#.utf8
            appendString(&out, label)
            out += #","window_start":""#.utf8; out += start.utf8
            out += #"","window_end":""#.utf8; out += end.utf8
            out += #"","workflow":"#.utf8; appendString(&out, d.names[k.workflow])
            out += #","owner":"#.utf8; appendString(&out, d.names[k.owner])
            out += #","model":"#.utf8; appendOptional(&out, d.name(k.model))
            out += #","provider":"#.utf8; appendOptional(&out, d.name(k.provider))
            out += #","tags":{"#.utf8
            for (i, (name, value)) in d.tags(k.tags).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendString(&out, name); out.append(UInt8(ascii: ":")); appendString(&out, value)
            }
            out += #"},"requests":"#.utf8; out += String(c.requests).utf8
            out += #","errors":"#.utf8; out += String(c.errors).utf8
            out += #","input_tokens":"#.utf8; out += String(c.input).utf8
            out += #","cache_read_tokens":"#.utf8; out += String(c.cacheRead).utf8
            out += #","cache_write_tokens":"#.utf8; out += String(c.cacheWrite).utf8
            out += #","output_tokens":"#.utf8; out += String(c.output).utf8
            out += #","reasoning_tokens":"#.utf8; out += String(c.reasoning).utf8
            out += #","cost_usd":"#.utf8; out += c.cost.decimalString().utf8
            out += #","unpriced_requests":"#.utf8; out += String(c.unpricedRequests).utf8
            out += #","outcomes":{"#.utf8
            let outcomes = c.outcomes.map { (d.names[$0.name], $0.count) }.sorted { $0.0 < $1.0 }
            for (i, (name, count)) in outcomes.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendString(&out, name); out.append(UInt8(ascii: ":")); out += String(count).utf8
            }
            out += #"},"outcome_value_usd":"#.utf8; out += c.outcomeValue.decimalString().utf8
            out += #","late":"#.utf8; out += late.utf8
            out += "}\n".utf8
        }
        return out
    }

    private func sortKey(_ k: SeriesKey, _ d: Dimensions) -> [String] {
        var s = [d.names[k.workflow], d.names[k.owner], d.name(k.model) ?? "", d.name(k.provider) ?? ""]
        for (name, value) in d.tags(k.tags) { s.append(name); s.append(value) }
        return s
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
