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

    /// JSON string escaping (RFC 8259): quote, backslash and control characters.
    ///
    /// Works on the UTF-8 bytes (every character escaped is ASCII) into one buffer, appended once: linear
    /// in the length however many characters need escaping (a hostile name may consist of nothing else).
    public static func appendQuoted(_ s: String, to out: inout String) {
        var bytes: [UInt8] = [0x22]
        bytes.reserveCapacity(s.utf8.count + 2)
        for b in s.utf8 { appendEscaped(b, to: &bytes) }
        bytes.append(0x22)
        out += String(decoding: bytes, as: UTF8.self)
    }

    /// One byte of a JSON string: quote, backslash and control characters escaped, anything else as is.
    static func appendEscaped(_ b: UInt8, to bytes: inout [UInt8]) {
        switch b {
        case 0x22: bytes += [0x5C, 0x22]
        case 0x5C: bytes += [0x5C, 0x5C]
        case 0x0A: bytes += [0x5C, 0x6E]
        case 0x0D: bytes += [0x5C, 0x72]
        case 0x09: bytes += [0x5C, 0x74]
        case ..<0x20: appendUnicodeEscape(b, to: &bytes)
        default: bytes.append(b)
        }
    }

    /// `\u00XX` for a byte below 0x80.
    static func appendUnicodeEscape(_ b: UInt8, to bytes: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        bytes += [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]]
    }
}
