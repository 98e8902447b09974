/// A small, allocation-free, strict (RFC 8259) JSON tokenizer over raw message bytes.
///
/// The scanner never builds a tree: the caller walks objects key by key (`beginObject` / `nextKey`),
/// arrays element by element (`beginArray` / `nextElement`), reads the values it wants (`readString`,
/// `readNumber`, `readBool`, `readNull`) and skips the rest (`skipValue`, which still validates them).
/// Strings and numbers come back as byte ranges (`JSONSpan`) into the buffer; `appendUnescaped` copies
/// a string's content, unescaped, into a caller-provided byte buffer.
///
/// Strictness (every case is an error, never silently repaired):
/// - anything after the top-level value except whitespace (`finish()`);
/// - raw control characters (U+0000 to U+001F) inside strings; unknown escapes; `\u` without 4 hex digits;
/// - invalid UTF-8 inside strings (overlong forms, surrogates encoded in UTF-8, code points over U+10FFFF,
///   truncated sequences); any non-ASCII byte outside strings;
/// - lone surrogate escapes (`"\ud800"` not followed by a low-surrogate escape, or a lone `"\udc00"`) are
///   REJECTED (`loneSurrogate`), not replaced with U+FFFD: the decoder copies strings into UTF-8, and
///   replacing would silently merge distinct ids/names;
/// - numbers outside the JSON grammar (`01`, `1.`, `.5`, `+1`, `1e`, `NaN`, `Infinity`);
/// - nesting deeper than `maxDepth` (default 64) objects/arrays;
/// - trailing commas, missing colons, single quotes, comments.
/// A leading UTF-8 byte order mark is skipped (RFC 8259 section 8.1 allows ignoring it).
///
/// Usage pattern:
/// ```
/// var s = JSONScanner(bytes)
/// try s.beginObject()
/// while let key = try s.nextKey() {
///     if s.bytes(key) == "model" { let v = try s.readString() } else { try s.skipValue() }
/// }
/// try s.finish()
/// ```
/// `nextKey`/`nextElement` require that the previous member's value was consumed completely.
public struct JSONScanner {
    public let buffer: UnsafeRawBufferPointer
    /// `buffer`'s bytes, never nil (every read is after a check against `end`): the scanner's reads are
    /// on the path of every byte of every message, and an optional base address costs a test at each.
    @usableFromInline let base: UnsafePointer<UInt8>
    /// `buffer.count`, stored: every read checks against it, and a buffer pointer's count is computed from
    /// its two optional addresses (a subtraction and a nil test each time).
    @usableFromInline let end: Int
    /// Offset of the next unread byte.
    public private(set) var position: Int
    /// Current nesting depth (objects and arrays entered and not yet left).
    public private(set) var depth: Int = 0
    public let maxDepth: Int
    /// True right after `{` or `[` was consumed and before the first member/element.
    @usableFromInline var afterOpen = false

    @inline(__always)
    public init(_ buffer: UnsafeRawBufferPointer, maxDepth: Int = 64) {
        self.buffer = buffer
        self.base = buffer.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? JSONScanner.noBytes
        self.end = buffer.count
        self.maxDepth = maxDepth
        var p = 0
        if buffer.count >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { p = 3 }
        self.position = p
    }

    // MARK: - Bytes

    /// The base of an empty buffer without an address (never read: `end` is 0).
    @usableFromInline nonisolated(unsafe) static let noBytes = UnsafePointer<UInt8>(UnsafeMutablePointer<UInt8>.allocate(capacity: 1))

    @inline(__always) func byte(_ i: Int) -> UInt8 { base[i] }

    /// The raw bytes of a span (for strings: between the quotes, still escaped when `span.escaped`).
    @inline(__always) public func bytes(_ span: JSONSpan) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[span.start..<span.end])
    }

    /// JSON written by programs rarely has whitespace between tokens: one comparison (every whitespace
    /// byte is at or below 0x20) settles the common case, the loop runs only when there is some.
    @inline(__always) mutating func skipWhitespace() {
        if position < end && base[position] > 0x20 { return }
        skipWhitespaceLoop()
    }

    @inline(never) mutating func skipWhitespaceLoop() {
        while position < end {
            let c = base[position]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 } else { return }
        }
    }

    @inline(__always) func err(_ kind: JSONError.Kind) -> JSONError { JSONError(kind, at: position) }

    // MARK: - Values

    /// Skips whitespace and tells what the next value is, without consuming it.
    @inline(__always)
    public mutating func peekKind() throws(JSONError) -> JSONValueKind {
        skipWhitespace()
        guard position < end else { throw err(.unexpectedEnd) }
        switch base[position] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: throw err(.unexpectedByte)
        }
    }

    /// Skips whitespace; whether the next byte is `c` (not consumed).
    @inline(__always) mutating func isNext(_ c: UInt8) -> Bool {
        skipWhitespace()
        return position < end && base[position] == c
    }

    /// Skips whitespace; whether the next byte is an ASCII digit (not consumed).
    @inline(__always) mutating func isNextDigit() -> Bool {
        skipWhitespace()
        return position < end && base[position] &- UInt8(ascii: "0") <= 9
    }

    /// Goes back to an offset read earlier from `position` (to read a value again another way).
    @inline(__always) mutating func rewind(to offset: Int) { position = offset }

    /// Consumes `{`.
    @inline(__always)
    public mutating func beginObject() throws(JSONError) {
        skipWhitespace()
        guard position < end else { throw err(.unexpectedEnd) }
        guard base[position] == UInt8(ascii: "{") else { throw err(.unexpectedByte) }
        depth += 1
        guard depth <= maxDepth else { throw err(.tooDeep) }
        position += 1
        afterOpen = true
    }

    /// The next key of the current object (its value is next), or nil after consuming the closing `}`.
    ///
    /// The common case, `,"key":` (or `"key":` first) with no whitespace and a plain ASCII key, is one
    /// word scan for the closing quote, done here; anything else (whitespace, escapes, the end of the
    /// object, an error) is `nextKeyInGeneral`, which starts over from the same position.
    @inline(__always)
    public mutating func nextKey() throws(JSONError) -> JSONSpan? {
        var q = position
        if q < end && base[q] == UInt8(ascii: ",") && !afterOpen { q += 1 }
        if q < end && base[q] == UInt8(ascii: "\"") && (q > position || afterOpen) {
            let start = q + 1
            let stop = scanPlain(from: start)
            if stop + 1 < end && base[stop] == UInt8(ascii: "\"") && base[stop + 1] == UInt8(ascii: ":") {
                afterOpen = false
                position = stop + 2
                return JSONSpan(start: start, end: stop, escaped: false)
            }
        }
        return try nextKeyInGeneral()
    }

    /// The next key, consumed with its `:`, when `match` recognises it where it stands: written plainly
    /// (`"key":`, or `,"key":` after a member) with its value next. Nil, with nothing consumed, for
    /// anything else (another key, whitespace, escapes, the end of the object): `nextKey` reads it then.
    ///
    /// `match` gets the bytes after the opening quote and how many can be read, and returns the key and its
    /// length when they are a known key followed by `":`: a known key is recognised without first scanning
    /// for its closing quote. Its bytes are the known key's, so they need no validation.
    @inline(__always)
    mutating func knownKey<K>(_ match: (UnsafePointer<UInt8>, Int) -> (K, Int)?) -> K? {
        var q = position
        if !afterOpen {
            guard q < end && base[q] == UInt8(ascii: ",") else { return nil }
            q += 1
        }
        guard q < end && base[q] == UInt8(ascii: "\"") else { return nil }
        guard let (key, count) = match(base + q + 1, end - q - 1) else { return nil }
        afterOpen = false
        position = q + 1 + count + 2
        return key
    }

    @inline(never)
    mutating func nextKeyInGeneral() throws(JSONError) -> JSONSpan? {
        skipWhitespace()
        guard position < end else { throw err(.unexpectedEnd) }
        var c = base[position]
        if afterOpen {
            afterOpen = false
            if c == UInt8(ascii: "}") { position += 1; depth -= 1; return nil }
        } else {
            if c == UInt8(ascii: ",") {
                position += 1
                skipWhitespace()
                guard position < end else { throw err(.unexpectedEnd) }
                c = base[position]
            } else if c == UInt8(ascii: "}") {
                position += 1; depth -= 1; return nil
            } else {
                throw err(.unexpectedByte)
            }
        }
        guard c == UInt8(ascii: "\"") else { throw err(.unexpectedByte) }
        let key = try readStringAtQuote()
        skipWhitespace()
        guard position < end else { throw err(.unexpectedEnd) }
        guard base[position] == UInt8(ascii: ":") else { throw err(.unexpectedByte) }
        position += 1
        return key
    }

    /// Consumes `[`.
    public mutating func beginArray() throws(JSONError) {
        skipWhitespace()
        guard position < end else { throw err(.unexpectedEnd) }
        guard base[position] == UInt8(ascii: "[") else { throw err(.unexpectedByte) }
        depth += 1
        guard depth <= maxDepth else { throw err(.tooDeep) }
        position += 1
        afterOpen = true
    }

    /// True when another element follows (read or skip it next); false after consuming the closing `]`.
    @inline(__always)
    public mutating func nextElement() throws(JSONError) -> Bool {
        skipWhitespace()
        guard position < end else { throw err(.unexpectedEnd) }
        let c = base[position]
        if afterOpen {
            afterOpen = false
            if c == UInt8(ascii: "]") { position += 1; depth -= 1; return false }
            return true
        }
        if c == UInt8(ascii: ",") { position += 1; return true }
        if c == UInt8(ascii: "]") { position += 1; depth -= 1; return false }
        throw err(.unexpectedByte)
    }

    /// Reads a string value and validates it (escapes, UTF-8, no control characters). The span excludes
    /// the quotes; `escaped` says whether `appendUnescaped` has work to do.
    public mutating func readString() throws(JSONError) -> JSONSpan {
        skipWhitespace()
        guard position < end else { throw err(.unexpectedEnd) }
        guard base[position] == UInt8(ascii: "\"") else { throw err(.unexpectedByte) }
        return try readStringAtQuote()
    }

    /// `readString` once the opening quote is known to be at `position` (after `peekKind` said `.string`,
    /// or for a key). The common string (plain ASCII up to its closing quote) is one word scan inline;
    /// escapes, UTF-8 and errors go to `readStringRest`.
    @inline(__always) mutating func readStringAtQuote() throws(JSONError) -> JSONSpan {
        let start = position + 1
        let stop = scanPlain(from: start)
        if stop < end && base[stop] == UInt8(ascii: "\"") {
            position = stop + 1
            return JSONSpan(start: start, end: stop, escaped: false)
        }
        position = stop
        return try readStringRest(start: start)
    }

    /// The rest of a string from `position` (a special byte or the end), validating escapes and UTF-8.
    @inline(never) mutating func readStringRest(start: Int) throws(JSONError) -> JSONSpan {
        var escaped = false
        while true {
            // Fast path: plain ASCII, 8 bytes at a time, then byte by byte.
            position = scanPlain(from: position)
            guard position < end else { throw err(.unexpectedEnd) }
            let c = base[position]
            if c == UInt8(ascii: "\"") {
                let span = JSONSpan(start: start, end: position, escaped: escaped)
                position += 1
                return span
            } else if c == UInt8(ascii: "\\") {
                escaped = true
                try validateEscape()
            } else if c < 0x20 {
                throw err(.controlCharacter)
            } else {
                try validateUTF8Sequence()
            }
        }
    }

    /// The offset of the first byte at or after `from` that is `"`, `\\`, a control character or non-ASCII
    /// (or the end of the buffer).
    @inline(__always)
    func scanPlain(from: Int) -> Int {
        let raw = UnsafeRawPointer(base)
        var i = from
        // SWAR: a byte b is "special" when b < 0x20, b >= 0x80, b == 0x22 or b == 0x5C.
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while i + 8 <= end {
            let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let lt20 = (w &- ones &* 0x20) & ~w
            let q = w ^ (ones &* 0x22)
            let hasQuote = (q &- ones) & ~q
            let b = w ^ (ones &* 0x5C)
            let hasBackslash = (b &- ones) & ~b
            let special = (lt20 | hasQuote | hasBackslash | w) & highs
            if special != 0 {
                return i + (special.trailingZeroBitCount >> 3)
            }
            i += 8
        }
        while i < end {
            let c = base[i]
            if c == 0x22 || c == 0x5C || c < 0x20 || c >= 0x80 { return i }
            i += 1
        }
        return i
    }

    /// At a backslash: validates one escape (a surrogate pair counts as one) and moves past it.
    @inline(__always) mutating func validateEscape() throws(JSONError) {
        guard position + 1 < end else { throw err(.unexpectedEnd) }
        switch base[position + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            position += 2
        case UInt8(ascii: "u"):
            guard let u = hex4(position + 2) else { throw err(.invalidEscape) }
            if u >= 0xD800 && u <= 0xDBFF {
                guard position + 7 < end, base[position + 6] == UInt8(ascii: "\\"),
                      base[position + 7] == UInt8(ascii: "u"), let lo = hex4(position + 8),
                      lo >= 0xDC00 && lo <= 0xDFFF
                else { throw err(.loneSurrogate) }
                position += 12
            } else if u >= 0xDC00 && u <= 0xDFFF {
                throw err(.loneSurrogate)
            } else {
                position += 6
            }
        default:
            throw err(.invalidEscape)
        }
    }

    @inline(__always) func hex4(_ i: Int) -> UInt32? {
        guard i + 4 <= end else { return nil }
        var v: UInt32 = 0
        for k in i..<(i + 4) {
            guard let d = JSONScanner.hexValue(base[k]) else { return nil }
            v = v << 4 | d
        }
        return v
    }

    @inline(__always) static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// At a byte >= 0x80 inside a string: validates one UTF-8 sequence (Unicode table 3-7).
    @inline(__always) mutating func validateUTF8Sequence() throws(JSONError) {
        let b0 = base[position]
        var need = 0
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; hi = 0x9F
        case 0xF0: need = 3; lo = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; hi = 0x8F
        default: throw err(.invalidUTF8)
        }
        guard position + need < end else { throw err(.invalidUTF8) }
        let b1 = base[position + 1]
        guard b1 >= lo && b1 <= hi else { throw err(.invalidUTF8) }
        var k = 2
        while k <= need {
            let b = base[position + k]
            guard b >= 0x80 && b <= 0xBF else { throw err(.invalidUTF8) }
            k += 1
        }
        position += need + 1
    }

    /// Reads a number as `readNumber` does, and its value when the text is a plain integer (no sign,
    /// fraction or exponent) of at most 18 digits, computed while the digits are scanned; -1 otherwise
    /// (the caller converts the text, as `NumberText` does for every other form).
    @inline(__always) mutating func readNumberValue() throws(JSONError) -> (span: JSONSpan, value: Int64) {
        skipWhitespace()
        let start = position
        var v: Int64 = 0
        var i = position
        while i < end {
            let d = base[i] &- UInt8(ascii: "0")
            if d > 9 { break }
            v = v &* 10 &+ Int64(d)
            i += 1
        }
        let n = i - start
        // A plain integer ends here: not `-`, `.`, `e` or `E` next, no leading zero before another digit.
        if n > 0 && n <= 18 && (n == 1 || base[start] != UInt8(ascii: "0")) {
            let c: UInt8 = i < end ? base[i] : 0
            if c != UInt8(ascii: ".") && c | 0x20 != UInt8(ascii: "e") {
                position = i
                return (JSONSpan(start: start, end: i, escaped: false), v)
            }
        }
        return (try readNumber(), -1)
    }

    /// Reads a number, validating the JSON grammar; returns its text.
    public mutating func readNumber() throws(JSONError) -> JSONSpan {
        skipWhitespace()
        let start = position
        if position < end && base[position] == UInt8(ascii: "-") { position += 1 }
        guard position < end else { throw err(.unexpectedEnd) }
        let c = base[position]
        if c == UInt8(ascii: "0") {
            position += 1
        } else if c >= UInt8(ascii: "1") && c <= UInt8(ascii: "9") {
            position += 1
            skipDigits()
        } else {
            throw err(.invalidNumber)
        }
        if position < end && base[position] == UInt8(ascii: ".") {
            position += 1
            guard position < end, isDigit(base[position]) else { throw err(.invalidNumber) }
            skipDigits()
        }
        if position < end && (base[position] == UInt8(ascii: "e") || base[position] == UInt8(ascii: "E")) {
            position += 1
            if position < end && (base[position] == UInt8(ascii: "+") || base[position] == UInt8(ascii: "-")) {
                position += 1
            }
            guard position < end, isDigit(base[position]) else { throw err(.invalidNumber) }
            skipDigits()
        }
        return JSONSpan(start: start, end: position, escaped: false)
    }

    @inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    @inline(__always) mutating func skipDigits() {
        while position < end && isDigit(base[position]) { position += 1 }
    }

    /// Reads `true` or `false`.
    public mutating func readBool() throws(JSONError) -> Bool {
        skipWhitespace()
        if literal("true") { return true }
        if literal("false") { return false }
        throw err(position < end ? .unexpectedByte : .unexpectedEnd)
    }

    /// Reads `null`.
    public mutating func readNull() throws(JSONError) {
        skipWhitespace()
        guard literal("null") else { throw err(position < end ? .unexpectedByte : .unexpectedEnd) }
    }

    @inline(__always) mutating func literal(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard position + n <= end else { return false }
        let p = s.utf8Start
        for k in 0..<n where base[position + k] != p[k] { return false }
        position += n
        return true
    }

    /// Skips one value of any kind, validating it completely.
    public mutating func skipValue() throws(JSONError) {
        switch try peekKind() {
        case .object:
            try beginObject()
            while try nextKey() != nil { try skipValue() }
        case .array:
            try beginArray()
            while try nextElement() { try skipValue() }
        case .string:
            _ = try readStringAtQuote()
        case .number:
            _ = try readNumber()
        case .bool:
            _ = try readBool()
        case .null:
            try readNull()
        }
    }

    /// Requires that only whitespace is left.
    public mutating func finish() throws(JSONError) {
        skipWhitespace()
        guard position == end else { throw err(.trailingData) }
    }

    // MARK: - Unescaping

    /// Appends the content of a string span (as returned by `readString`, so already validated) to `out`,
    /// with escapes decoded to UTF-8.
    public func appendUnescaped(_ span: JSONSpan, to out: inout [UInt8]) {
        JSONScanner.appendUnescaped(buffer, span, to: &out)
    }

    /// See `appendUnescaped(_:to:)`; `buffer` is the bytes the span was read from.
    public static func appendUnescaped(_ buffer: UnsafeRawBufferPointer, _ span: JSONSpan, to out: inout [UInt8]) {
        if !span.escaped {
            if span.end > span.start { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[span.start..<span.end])) }
            return
        }
        var i = span.start
        var runStart = i
        while i < span.end {
            guard buffer[i] == UInt8(ascii: "\\") else { i += 1; continue }
            if i > runStart { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[runStart..<i])) }
            let e = buffer[i + 1]
            switch e {
            case UInt8(ascii: "b"): out.append(0x08); i += 2
            case UInt8(ascii: "f"): out.append(0x0C); i += 2
            case UInt8(ascii: "n"): out.append(0x0A); i += 2
            case UInt8(ascii: "r"): out.append(0x0D); i += 2
            case UInt8(ascii: "t"): out.append(0x09); i += 2
            case UInt8(ascii: "u"):
                var cp = hex4(buffer, i + 2)
                i += 6
                if cp >= 0xD800 && cp <= 0xDBFF {
                    let low = hex4(buffer, i + 2)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                appendUTF8(cp, to: &out)
            default: out.append(e); i += 2   // \" \\ \/
            }
            runStart = i
        }
        if span.end > runStart { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[runStart..<span.end])) }
    }

    @inline(__always) static func hex4(_ buffer: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in i..<(i + 4) { v = v << 4 | (hexValue(buffer[k]) ?? 0) }
        return v
    }

    @inline(__always) static func appendUTF8(_ cp: UInt32, to out: inout [UInt8]) {
        if cp < 0x80 {
            out.append(UInt8(cp))
        } else if cp < 0x800 {
            out.append(UInt8(0xC0 | (cp >> 6)))
            out.append(UInt8(0x80 | (cp & 0x3F)))
        } else if cp < 0x10000 {
            out.append(UInt8(0xE0 | (cp >> 12)))
            out.append(UInt8(0x80 | ((cp >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (cp & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (cp >> 18)))
            out.append(UInt8(0x80 | ((cp >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((cp >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (cp & 0x3F)))
        }
    }

    /// Validates a whole buffer as one JSON value (any kind) followed only by whitespace.
    public static func validate(_ buffer: UnsafeRawBufferPointer, maxDepth: Int = 64) -> JSONError? {
        var s = JSONScanner(buffer, maxDepth: maxDepth)
        do throws(JSONError) {
            try s.skipValue()
            try s.finish()
            return nil
        } catch {
            return error
        }
    }
}

/// A byte range in the scanned buffer: a string's content (without quotes) or a number's text.
public struct JSONSpan: Sendable, Equatable {
    public var start: Int
    public var end: Int
    /// For strings: the content contains backslash escapes.
    public var escaped: Bool
    @inline(__always) public init(start: Int, end: Int, escaped: Bool) {
        self.start = start; self.end = end; self.escaped = escaped
    }
    @inline(__always) public var count: Int { end - start }
}

public enum JSONValueKind: UInt8, Sendable {
    case object, array, string, number, bool, null

    public var name: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

/// A syntax error, with the byte offset where it was found.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case unexpectedEnd
        case unexpectedByte
        case invalidUTF8
        case controlCharacter
        case invalidEscape
        case loneSurrogate
        case invalidNumber
        case tooDeep
        case trailingData
    }
    public var kind: Kind
    public var offset: Int

    @inline(__always) public init(_ kind: Kind, at offset: Int) { self.kind = kind; self.offset = offset }

    public var description: String {
        let what: String
        switch kind {
        case .unexpectedEnd: what = "unexpected end of input"
        case .unexpectedByte: what = "unexpected character"
        case .invalidUTF8: what = "invalid UTF-8"
        case .controlCharacter: what = "unescaped control character in a string"
        case .invalidEscape: what = "invalid escape sequence in a string"
        case .loneSurrogate: what = "unpaired UTF-16 surrogate escape in a string"
        case .invalidNumber: what = "malformed number"
        case .tooDeep: what = "nesting deeper than the limit"
        case .trailingData: what = "unexpected data after the JSON value"
        }
        return "\(what) at byte \(offset)"
    }
}
