/// A minimal JSON text builder for alert values (no Foundation): the caller writes keys and values in
/// the order they must appear; commas are placed automatically.
public struct JSONTextWriter {
    public private(set) var text: String = ""
    private var needsComma: [Bool] = [false]

    public init() {}

    private mutating func separate() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    public mutating func beginObject() { separate(); text += "{"; needsComma.append(false) }
    public mutating func endObject() { needsComma.removeLast(); text += "}" }
    public mutating func beginArray() { separate(); text += "["; needsComma.append(false) }
    public mutating func endArray() { needsComma.removeLast(); text += "]" }

    /// Writes `"name":`; the next value call writes the value without a comma before it.
    public mutating func key(_ name: String) {
        separate()
        JSONTextWriter.appendQuoted(name, to: &text)
        text += ":"
        needsComma[needsComma.count - 1] = false
    }

    public mutating func string(_ s: String) { separate(); JSONTextWriter.appendQuoted(s, to: &text) }
    /// A number already formatted as JSON number text (exact decimals from `Money.decimalString`).
    public mutating func number(_ text: String) { separate(); self.text += text }
    public mutating func int(_ v: Int64) { number(String(v)) }
    public mutating func bool(_ v: Bool) { number(v ? "true" : "false") }
    public mutating func null() { number("null") }

    public mutating func field(_ name: String, _ s: String?) { key(name); if let s { string(s) } else { null() } }
    public mutating func field(_ name: String, number: String?) { key(name); if let number { self.number(number) } else { null() } }
    public mutating func field(_ name: String, _ v: Int64?) { key(name); if let v { int(v) } else { null() } }
    public mutating func field(_ name: String, _ m: Money?) { key(name); if let m { number(m.decimalString()) } else { null() } }

    /// `s` as a JSON string literal (`appendString`, the one JSON escaping), appended to `out` at once.
    public static func appendQuoted(_ s: String, to out: inout String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count + 2)
        appendString(&bytes, s)
        out += String(decoding: bytes, as: UTF8.self)
    }
}
