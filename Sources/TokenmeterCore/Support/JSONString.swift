/// JSON string escaping (RFC 8259), the one every JSON text tokenmeter writes goes through: rollup rows,
/// alert values and keys, reports, the FOCUS export's JSON columns, the command line's `--json` outputs.
///
/// Quote and backslash are escaped, `\n`, `\r` and `\t` by their short forms, every other control
/// character as `\u00XX`; anything else, non-ASCII included, is copied as its UTF-8 bytes. Works on the
/// bytes (every character escaped is ASCII), so it is linear in the length however many characters need
/// escaping (a hostile name may consist of nothing else).

/// Appends `s` as a JSON string literal, quotes included.
public func appendString(_ out: inout [UInt8], _ s: String) {
    var s = s
    s.withUTF8 { appendJSONString(&out, UnsafeRawBufferPointer($0)) }
}

/// Appends the UTF-8 `bytes` as a JSON string literal, quotes included.
public func appendJSONString(_ out: inout [UInt8], _ bytes: UnsafeRawBufferPointer) {
    writeJSONString(&out, bytes)
}

/// The UTF-8 `bytes` as a JSON string literal, quotes included, into any sink. Runs of bytes that need no
/// escape (all of a name, nearly always) are copied whole rather than byte by byte: rollup rows are
/// mostly names. At most `jsonStringBound(bytes.count)` bytes.
func writeJSONString<S: ByteSink>(_ out: inout S, _ bytes: UnsafeRawBufferPointer) {
    out.put(UInt8(ascii: "\""))
    var run = 0   // start of the bytes not yet copied
    for i in 0..<bytes.count {
        let b = bytes[i]
        guard b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") else { continue }
        if i > run { out.put(UnsafeRawBufferPointer(rebasing: bytes[run..<i])) }
        run = i + 1
        switch b {
        case UInt8(ascii: "\""): out.put(#"\""#)
        case UInt8(ascii: "\\"): out.put(#"\\"#)
        case 0x0A: out.put(#"\n"#)
        case 0x0D: out.put(#"\r"#)
        case 0x09: out.put(#"\t"#)
        default: writeJSONUnicodeEscape(b, to: &out)
        }
    }
    if bytes.count > run { out.put(UnsafeRawBufferPointer(rebasing: bytes[run...])) }
    out.put(UInt8(ascii: "\""))
}

/// The most bytes `writeJSONString` writes for `count` bytes of text: two quotes, and six per byte
/// (`\u00XX`, the longest escape).
@inline(__always) func jsonStringBound(_ count: Int) -> Int { 2 + 6 * count }

/// `s` as a JSON string literal, quotes included.
public func jsonString(_ s: String) -> String {
    var out: [UInt8] = []
    appendString(&out, s)
    return String(decoding: out, as: UTF8.self)
}

/// `\u00XX` (lowercase hex) for the code point U+00XX, given as the byte `b`.
func appendJSONUnicodeEscape(_ b: UInt8, to bytes: inout [UInt8]) {
    writeJSONUnicodeEscape(b, to: &bytes)
}

func writeJSONUnicodeEscape<S: ByteSink>(_ b: UInt8, to out: inout S) {
    let hex: StaticString = "0123456789abcdef"
    out.put(#"\u00"#)
    out.put(hex.utf8Start[Int(b >> 4)])
    out.put(hex.utf8Start[Int(b & 0xF)])
}
