/// JSON text by hand: string quoting and a tiny ordered object builder.
public enum JSONText {
    /// `s` as a JSON string literal: quotes, backslashes and control characters escaped. Non-ASCII is
    /// written as UTF-8 (valid JSON). U+2028/U+2029 are escaped too, for JavaScript consumers.
    ///
    /// Not the product's `jsonString`, on purpose: this writes the decoder's test input, and its `\b`,
    /// `\f` and `\u2028` are escape forms tokenmeter itself never writes, so the decoder meets them.
    public static func quote(_ s: String) -> String {
        // Most strings need no escape: copy them whole (the scalar-by-scalar path below made quoting
        // the generator's largest cost). 0xE2 leads U+2028 and U+2029 in UTF-8, so any string holding
        // one takes the slow path.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == 0xE2 }) {
            return "\"" + s + "\""
        }
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
        return out
    }
}

/// Builds one JSON object with keys in insertion order.
struct JSONObject {
    private var text = "{"
    private var empty = true

    init() {}

    private mutating func key(_ k: String) {
        if !empty { text += "," }
        empty = false
        text += JSONText.quote(k)
        text += ":"
    }

    mutating func string(_ k: String, _ v: String) { key(k); text += JSONText.quote(v) }
    mutating func int(_ k: String, _ v: Int64) { key(k); text += String(v) }
    mutating func int(_ k: String, _ v: Int) { key(k); text += String(v) }
    /// A count written as a number, or as a string of digits when `asString`.
    mutating func count(_ k: String, _ v: Int64, asString: Bool) {
        key(k)
        text += asString ? "\"\(v)\"" : String(v)
    }
    mutating func raw(_ k: String, _ json: String) { key(k); text += json }
    mutating func object(_ k: String, _ o: JSONObject) { raw(k, o.json) }
    mutating func stringMap(_ k: String, _ m: [String: String]) {
        var o = JSONObject()
        for name in m.keys.sorted() { o.string(name, m[name]!) }
        object(k, o)
    }

    var json: String { text + "}" }
}
