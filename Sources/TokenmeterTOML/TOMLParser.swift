/// A TOML 1.0 parser over UTF-8 bytes that remembers where every key and value was written.
///
/// We do not use a TOML library because the configuration loader must report semantic errors (an unknown
/// key, a negative price) at the exact `LINE:COL` of the offending key or value, and keep the exact text of
/// numbers so that prices are read as decimals, never through binary floating point.
///
/// Positions are 1-based; columns count Unicode scalars (see `TOMLPosition`).
/// The first syntax or structure error (duplicate key, table defined twice) stops parsing and is thrown.
///
/// Syntax errors never repeat the text of a value, nor of a word that is not yet known to be a key: the
/// file holds secrets (an unquoted password is a syntax error), and messages reach terminals and logs.
/// They say what kind of token is at fault and how long it is (`invalid value: an unquoted word of 12
/// characters`), and the position points at it. A character found where another was expected is shown
/// when it is punctuation (`found \`]\``), and only named otherwise (`found a letter`).
public enum TOMLParser {
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var p = Parser(bytes: Array(text.utf8))
        return try p.parseDocument()
    }

    public static func parse(bytes: [UInt8]) throws(TOMLError) -> TOMLTable {
        var p = Parser(bytes: bytes)
        return try p.parseDocument()
    }
}

// MARK: - Tree under construction

/// Tables while they are still open to additions. Frozen into `TOMLTable` at the end.
private final class Node {
    enum Origin { case root, implicit, header, dotted, inline, arrayElement }
    enum Slot {
        case value(TOMLValue)      // scalars, static arrays, inline tables: never extended
        case table(Node)
        case tableArray(ArrayNode)
    }
    struct Item { var keyPosition: TOMLPosition; var slot: Slot }

    var origin: Origin
    var position: TOMLPosition
    var order: [String] = []
    var items: [String: Item] = [:]

    init(_ origin: Origin, _ position: TOMLPosition) { self.origin = origin; self.position = position }

    func add(_ key: String, _ pos: TOMLPosition, _ slot: Slot) {
        order.append(key)
        items[key] = Item(keyPosition: pos, slot: slot)
    }

    func freeze() -> TOMLTable {
        var t = TOMLTable(position: position)
        for key in order {
            guard let item = items[key] else { continue }
            let value: TOMLValue
            switch item.slot {
            case .value(let v): value = v
            case .table(let n):
                value = TOMLValue(kind: .table(n.freeze()), position: n.position, isInlineTable: n.origin == .inline)
            case .tableArray(let a):
                let elements = a.tables.map { TOMLValue(kind: .table($0.freeze()), position: $0.position) }
                value = TOMLValue(kind: .array(elements), position: a.position, isArrayOfTables: true)
            }
            t.set(key, keyPosition: item.keyPosition, value: value)
        }
        return t
    }
}

private final class ArrayNode {
    var position: TOMLPosition
    var tables: [Node] = []
    init(_ position: TOMLPosition) { self.position = position }
}

private func describe(_ slot: Node.Slot) -> String {
    switch slot {
    case .value(let v): return v.typeDescription
    case .table(let n): return n.origin == .inline ? "an inline table" : "a table"
    case .tableArray: return "an array of tables"
    }
}

private func quoteKey(_ k: String) -> String {
    let bare = !k.isEmpty && k.utf8.allSatisfy { isBareKeyByte($0) }
    return bare ? k : "\"" + k + "\""
}

private func keyPath(_ keys: [(String, TOMLPosition)]) -> String {
    keys.map { quoteKey($0.0) }.joined(separator: ".")
}

@inline(__always) private func isBareKeyByte(_ c: UInt8) -> Bool {
    (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
}

@inline(__always) private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
@inline(__always) private func isHexDigit(_ c: UInt8) -> Bool {
    isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
}

// MARK: - Parser

private struct Parser {
    let b: [UInt8]
    var i = 0
    var line = 1
    var lineStart = 0

    init(bytes: [UInt8]) {
        b = bytes
        // A UTF-8 byte order mark is allowed and ignored.
        if b.count >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF { i = 3; lineStart = 3 }
    }

    // MARK: positions and errors

    /// Position of byte `idx`, which must be on the current line.
    func pos(_ idx: Int) -> TOMLPosition {
        var col = 1
        var k = lineStart
        while k < idx && k < b.count {
            if b[k] & 0xC0 != 0x80 { col += 1 }
            k += 1
        }
        // `idx` may point inside a multi-byte character only if we are mid-character; never the case here.
        return TOMLPosition(line: line, column: col)
    }

    var here: TOMLPosition { pos(i) }

    func peek(_ k: Int = 0) -> UInt8? { i + k < b.count ? b[i + k] : nil }

    func err(_ message: String, _ at: TOMLPosition? = nil) -> TOMLError { TOMLError(message, at: at ?? here) }

    /// "`x`", "end of line", "end of file", for messages about what was found.
    func found(_ idx: Int? = nil) -> String {
        let k = idx ?? i
        guard k < b.count else { return "end of file" }
        let c = b[k]
        if c == 0x0A || c == 0x0D { return "end of line" }
        if c < 0x20 || c == 0x7F { return "control character U+" + hex(UInt32(c), 4) }
        // Letters and digits may belong to a secret: named, not shown.
        if c >= 0x80 { return "a non-ASCII character" }
        if isDigit(c) { return "a digit" }
        if (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A { return "a letter" }
        return "`" + String(decoding: [c], as: UTF8.self) + "`"
    }

    /// "12 characters": the length of the token in bytes `s..<e`, for messages that must not show it.
    func length(_ s: Int, _ e: Int) -> String {
        let n = b[s..<e].reduce(0) { $0 + ($1 & 0xC0 != 0x80 ? 1 : 0) }
        return n == 1 ? "1 character" : "\(n) characters"
    }

    // MARK: whitespace, comments, newlines

    mutating func skipWS() {
        while i < b.count && (b[i] == 0x20 || b[i] == 0x09) { i += 1 }
    }

    /// At `#`: skips to the end of the line (not consuming the newline).
    mutating func skipComment() throws(TOMLError) {
        i += 1
        while i < b.count {
            let c = b[i]
            if c == 0x0A { return }
            if c == 0x0D && peek(1) == 0x0A { return }
            if (c < 0x20 && c != 0x09) || c == 0x7F {
                throw err("control character U+\(hex(UInt32(c), 4)) is not allowed in a comment")
            }
            i += 1
        }
    }

    /// At `\n` or `\r\n`: consumes it. Returns false if not at a newline.
    mutating func newline() throws(TOMLError) -> Bool {
        guard i < b.count else { return false }
        if b[i] == 0x0A { i += 1; line += 1; lineStart = i; return true }
        if b[i] == 0x0D {
            guard peek(1) == 0x0A else { throw err("carriage return must be followed by a line feed") }
            i += 2; line += 1; lineStart = i; return true
        }
        return false
    }

    /// After a key/value pair or a header: whitespace, an optional comment, then a newline or the end.
    mutating func expectLineEnd(after what: String) throws(TOMLError) {
        skipWS()
        if peek() == 0x23 { try skipComment() }
        if i >= b.count { return }
        if try newline() { return }
        throw err("expected a newline after \(what), found \(found())")
    }

    /// Whitespace, comments and newlines, as allowed between array elements.
    mutating func skipWSCommentsNewlines() throws(TOMLError) {
        while true {
            skipWS()
            if peek() == 0x23 { try skipComment() }
            if !(try newline()) { return }
        }
    }

    // MARK: document

    mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        let root = Node(.root, TOMLPosition(line: 1, column: 1))
        var current = root
        while true {
            skipWS()
            guard let c = peek() else { break }
            if c == 0x23 { try skipComment(); continue }
            if try newline() { continue }
            if c == 0x5B {
                current = try parseHeader(root)
                try expectLineEnd(after: "the table header")
            } else {
                let keys = try parseKeyValue(into: current)
                try expectLineEnd(after: "the value of `\(keyPath(keys))`")
            }
        }
        return root.freeze()
    }

    /// `[a.b]` or `[[a.b]]`; returns the table that following key/value pairs go into.
    mutating func parseHeader(_ root: Node) throws(TOMLError) -> Node {
        let start = here
        i += 1
        let isArray = peek() == 0x5B
        if isArray { i += 1 }
        let keys = try parseKey()
        guard peek() == 0x5D else {
            throw err("expected `\(isArray ? "]]" : "]")` to close the table header, found \(found())")
        }
        i += 1
        if isArray {
            guard peek() == 0x5D else { throw err("expected `]]` to close the array-of-tables header, found \(found())") }
            i += 1
        }
        var t = root
        for (n, (k, p)) in keys.dropLast().enumerated() {
            if let item = t.items[k] {
                switch item.slot {
                case .table(let sub) where sub.origin != .inline: t = sub
                case .tableArray(let a): t = a.tables[a.tables.count - 1]
                default:
                    throw err("cannot define a table under `\(keyPath(Array(keys[...n])))`: it is already \(describe(item.slot)) "
                              + "(line \(item.keyPosition.line), column \(item.keyPosition.column))", p)
                }
            } else {
                let sub = Node(.implicit, p)
                t.add(k, p, .table(sub))
                t = sub
            }
        }
        let (k, p) = keys[keys.count - 1]
        let name = keyPath(keys)
        if isArray {
            if let item = t.items[k] {
                guard case .tableArray(let a) = item.slot else {
                    throw err("cannot define `[[\(name)]]`: `\(name)` is already \(describe(item.slot)) "
                              + "(line \(item.keyPosition.line), column \(item.keyPosition.column))", p)
                }
                let el = Node(.arrayElement, start)
                a.tables.append(el)
                return el
            }
            let a = ArrayNode(start)
            let el = Node(.arrayElement, start)
            a.tables.append(el)
            t.add(k, p, .tableArray(a))
            return el
        }
        if let item = t.items[k] {
            switch item.slot {
            case .table(let sub) where sub.origin == .implicit:
                sub.origin = .header
                sub.position = start
                return sub
            case .table(let sub) where sub.origin == .header:
                throw err("table `[\(name)]` is defined twice (first at line \(sub.position.line))", p)
            case .table(let sub) where sub.origin == .dotted:
                throw err("table `[\(name)]` was already defined by dotted keys "
                          + "(line \(item.keyPosition.line), column \(item.keyPosition.column))", p)
            case .tableArray:
                throw err("cannot define `[\(name)]`: it is already an array of tables (`[[\(name)]]`, line \(item.keyPosition.line))", p)
            default:
                throw err("cannot define table `[\(name)]`: `\(name)` is already \(describe(item.slot)) "
                          + "(line \(item.keyPosition.line), column \(item.keyPosition.column))", p)
            }
        }
        let sub = Node(.header, start)
        t.add(k, p, .table(sub))
        return sub
    }

    // MARK: keys

    /// A possibly dotted key, with surrounding whitespace skipped. Stops before `=`, `]`, or anything else.
    mutating func parseKey() throws(TOMLError) -> [(String, TOMLPosition)] {
        var keys: [(String, TOMLPosition)] = []
        while true {
            skipWS()
            keys.append(try parseSimpleKey())
            skipWS()
            if peek() == 0x2E { i += 1; continue }
            return keys
        }
    }

    mutating func parseSimpleKey() throws(TOMLError) -> (String, TOMLPosition) {
        let p = here
        guard let c = peek() else { throw err("expected a key, found end of file") }
        if c == 0x22 {
            if peek(1) == 0x22 && peek(2) == 0x22 { throw err("a key cannot be a multi-line string") }
            return (try parseBasicString(), p)
        }
        if c == 0x27 {
            if peek(1) == 0x27 && peek(2) == 0x27 { throw err("a key cannot be a multi-line string") }
            return (try parseLiteralString(), p)
        }
        let s = i
        while i < b.count && isBareKeyByte(b[i]) { i += 1 }
        guard i > s else {
            throw err("expected a key (letters, digits, `_`, `-`, or a quoted string), found \(found())")
        }
        return (String(decoding: b[s..<i], as: UTF8.self), p)
    }

    /// `key = value` into `table`; returns the key for messages.
    @discardableResult
    mutating func parseKeyValue(into table: Node) throws(TOMLError) -> [(String, TOMLPosition)] {
        let keys = try parseKey()
        // The word is not known to be a key yet (it may be a pasted secret): not repeated.
        guard peek() == 0x3D else { throw err("expected `=` after a key, found \(found())") }
        i += 1
        skipWS()
        let value = try parseValue()
        try insert(keys, value, into: table)
        return keys
    }

    mutating func insert(_ keys: [(String, TOMLPosition)], _ value: TOMLValue, into table: Node) throws(TOMLError) {
        var t = table
        for (n, (k, p)) in keys.dropLast().enumerated() {
            if let item = t.items[k] {
                if case .table(let sub) = item.slot, sub.origin == .dotted {
                    t = sub
                    continue
                }
                let what: String
                if case .table(let sub) = item.slot, sub.origin == .header || sub.origin == .implicit {
                    what = "a table from a `[...]` header (line \(sub.position.line)); add keys under a header instead"
                } else {
                    what = "already \(describe(item.slot)) (line \(item.keyPosition.line), column \(item.keyPosition.column))"
                }
                throw err("cannot add to `\(keyPath(Array(keys[...n])))` with a dotted key: it is \(what)", p)
            }
            let sub = Node(.dotted, p)
            t.add(k, p, .table(sub))
            t = sub
        }
        let (k, p) = keys[keys.count - 1]
        if let item = t.items[k] {
            throw err("duplicate key `\(keyPath(keys))` (first defined at line \(item.keyPosition.line), "
                      + "column \(item.keyPosition.column))", p)
        }
        t.add(k, p, .value(value))
    }

    // MARK: values

    mutating func parseValue() throws(TOMLError) -> TOMLValue {
        let start = here
        let s = i
        guard let c = peek() else { throw err("expected a value, found end of file") }
        switch c {
        case 0x22: // "
            let str = (peek(1) == 0x22 && peek(2) == 0x22) ? try parseMultilineBasicString() : try parseBasicString()
            return TOMLValue(kind: .string(str), position: start, text: String(decoding: b[s..<i], as: UTF8.self))
        case 0x27: // '
            let str = (peek(1) == 0x27 && peek(2) == 0x27) ? try parseMultilineLiteralString() : try parseLiteralString()
            return TOMLValue(kind: .string(str), position: start, text: String(decoding: b[s..<i], as: UTF8.self))
        case 0x5B: // [
            return try parseArray()
        case 0x7B: // {
            return try parseInlineTable()
        case 0x2B, 0x2D, 0x30...0x39: // + - digits
            return try parseNumberOrDate()
        default:
            if isBareKeyByte(c) || c == 0x2E {
                // A bare word: true, false, inf, nan, or a mistake such as an unquoted string.
                while i < b.count && (isBareKeyByte(b[i]) || b[i] == 0x2E) { i += 1 }
                let word = String(decoding: b[s..<i], as: UTF8.self)
                switch word {
                case "true": return TOMLValue(kind: .boolean(true), position: start, text: word)
                case "false": return TOMLValue(kind: .boolean(false), position: start, text: word)
                case "inf": return TOMLValue(kind: .float(.infinity), position: start, text: word)
                case "nan": return TOMLValue(kind: .float(.nan), position: start, text: word)
                default:
                    if c == 0x2E { throw err("invalid number: write a digit before the decimal point (such as 0.5)", start) }
                    throw err("invalid value: an unquoted word of \(length(s, i)) (strings must be quoted, such as \"text\")", start)
                }
            }
            throw err("expected a value, found \(found())")
        }
    }

    mutating func parseArray() throws(TOMLError) -> TOMLValue {
        let start = here
        i += 1
        var elements: [TOMLValue] = []
        while true {
            try skipWSCommentsNewlines()
            guard let c = peek() else {
                throw err("unterminated array (opened at line \(start.line), column \(start.column)): expected `]`")
            }
            if c == 0x5D { i += 1; break }
            elements.append(try parseValue())
            try skipWSCommentsNewlines()
            guard let d = peek() else {
                throw err("unterminated array (opened at line \(start.line), column \(start.column)): expected `]`")
            }
            if d == 0x2C { i += 1; continue }
            if d == 0x5D { i += 1; break }
            throw err("expected `,` or `]` in array, found \(found())")
        }
        return TOMLValue(kind: .array(elements), position: start)
    }

    mutating func parseInlineTable() throws(TOMLError) -> TOMLValue {
        let start = here
        i += 1
        let node = Node(.inline, start)
        skipWS()
        if peek() == 0x7D {
            i += 1
            return TOMLValue(kind: .table(node.freeze()), position: start, isInlineTable: true)
        }
        while true {
            skipWS()
            if peek() == 0x0A || peek() == 0x0D {
                throw err("an inline table must be on one line (use a [table] header for longer tables)")
            }
            try parseKeyValue(into: node)
            skipWS()
            guard let c = peek() else { throw err("unterminated inline table: expected `}`") }
            if c == 0x2C {
                i += 1
                skipWS()
                if peek() == 0x7D { throw err("trailing comma is not allowed in an inline table") }
                continue
            }
            if c == 0x7D { i += 1; break }
            if c == 0x0A || c == 0x0D {
                throw err("an inline table must be on one line (use a [table] header for longer tables)")
            }
            throw err("expected `,` or `}` in inline table, found \(found())")
        }
        return TOMLValue(kind: .table(node.freeze()), position: start, isInlineTable: true)
    }

    // MARK: strings

    /// At `"`: a single-line basic string.
    mutating func parseBasicString() throws(TOMLError) -> String {
        let start = here
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw err("unterminated string: missing closing `\"`", start) }
            let c = b[i]
            if c == 0x22 { i += 1; break }
            if c == 0x0A || c == 0x0D { throw err("unterminated string: missing closing `\"` before end of line", start) }
            if c == 0x5C { try parseEscape(into: &out); continue }
            if (c < 0x20 && c != 0x09) || c == 0x7F {
                throw err("control character U+\(hex(UInt32(c), 4)) must be escaped in a string")
            }
            out.append(c)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// At `\`: one escape sequence.
    mutating func parseEscape(into out: inout [UInt8]) throws(TOMLError) {
        let escPos = here
        i += 1
        guard let e = peek() else { throw err("unterminated string", escPos) }
        i += 1
        switch e {
        case 0x62: out.append(0x08)   // \b
        case 0x74: out.append(0x09)   // \t
        case 0x6E: out.append(0x0A)   // \n
        case 0x66: out.append(0x0C)   // \f
        case 0x72: out.append(0x0D)   // \r
        case 0x22: out.append(0x22)   // \"
        case 0x5C: out.append(0x5C)   // \\
        case 0x75, 0x55:              // \uXXXX \UXXXXXXXX
            let n = e == 0x75 ? 4 : 8
            var v: UInt32 = 0
            for _ in 0..<n {
                guard let h = peek(), isHexDigit(h) else {
                    throw err("invalid escape: `\\\(e == 0x75 ? "u" : "U")` needs exactly \(n) hex digits", escPos)
                }
                v = v * 16 + UInt32(hexValue(h))
                i += 1
            }
            guard let scalar = Unicode.Scalar(v) else {
                throw err("invalid escape: U+\(hex(v, 4)) is not a Unicode scalar value", escPos)
            }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            i -= 1
            throw err("invalid escape sequence: a backslash followed by \(found()) "
                      + "(allowed: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)", escPos)
        }
    }

    /// At `"""`.
    mutating func parseMultilineBasicString() throws(TOMLError) -> String {
        let start = here
        i += 3
        _ = try newline() // a newline right after the opening delimiter is trimmed
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw err("unterminated multi-line string: missing closing `\"\"\"`", start) }
            let c = b[i]
            if c == 0x22 {
                var n = 0
                while peek(n) == 0x22 { n += 1 }
                if n >= 3 {
                    if n > 5 { throw err("too many quotes at the end of a multi-line string") }
                    out.append(contentsOf: repeatElement(0x22, count: n - 3))
                    i += n
                    break
                }
                out.append(contentsOf: repeatElement(0x22, count: n))
                i += n
                continue
            }
            if c == 0x5C {
                // A line-ending backslash trims the newline and all whitespace that follows.
                var k = i + 1
                while k < b.count && (b[k] == 0x20 || b[k] == 0x09) { k += 1 }
                if k < b.count && (b[k] == 0x0A || (b[k] == 0x0D && k + 1 < b.count && b[k + 1] == 0x0A)) {
                    i = k
                    while true {
                        skipWS()
                        if !(try newline()) { break }
                    }
                    continue
                }
                try parseEscape(into: &out)
                continue
            }
            if c == 0x0A || c == 0x0D {
                _ = try newline()
                out.append(0x0A)
                continue
            }
            if (c < 0x20 && c != 0x09) || c == 0x7F {
                throw err("control character U+\(hex(UInt32(c), 4)) must be escaped in a string")
            }
            out.append(c)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// At `'`.
    mutating func parseLiteralString() throws(TOMLError) -> String {
        let start = here
        i += 1
        let s = i
        while true {
            guard i < b.count else { throw err("unterminated string: missing closing `'`", start) }
            let c = b[i]
            if c == 0x27 { break }
            if c == 0x0A || c == 0x0D { throw err("unterminated string: missing closing `'` before end of line", start) }
            if (c < 0x20 && c != 0x09) || c == 0x7F {
                throw err("control character U+\(hex(UInt32(c), 4)) is not allowed in a literal string")
            }
            i += 1
        }
        let str = String(decoding: b[s..<i], as: UTF8.self)
        i += 1
        return str
    }

    /// At `'''`.
    mutating func parseMultilineLiteralString() throws(TOMLError) -> String {
        let start = here
        i += 3
        _ = try newline()
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw err("unterminated multi-line string: missing closing `'''`", start) }
            let c = b[i]
            if c == 0x27 {
                var n = 0
                while peek(n) == 0x27 { n += 1 }
                if n >= 3 {
                    if n > 5 { throw err("too many quotes at the end of a multi-line string") }
                    out.append(contentsOf: repeatElement(0x27, count: n - 3))
                    i += n
                    break
                }
                out.append(contentsOf: repeatElement(0x27, count: n))
                i += n
                continue
            }
            if c == 0x0A || c == 0x0D {
                _ = try newline()
                out.append(0x0A)
                continue
            }
            if (c < 0x20 && c != 0x09) || c == 0x7F {
                throw err("control character U+\(hex(UInt32(c), 4)) is not allowed in a literal string")
            }
            out.append(c)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: numbers and dates

    mutating func parseNumberOrDate() throws(TOMLError) -> TOMLValue {
        let start = here
        let s = i
        func isTokenByte(_ c: UInt8) -> Bool {
            isBareKeyByte(c) || c == 0x2B || c == 0x2E || c == 0x3A
        }
        while i < b.count && isTokenByte(b[i]) { i += 1 }
        // `1979-05-27 07:32:00`: a date, a space, and a time are one value.
        if i - s == 10 && i + 3 < b.count && b[i] == 0x20 && isDigit(b[i + 1]) && isDigit(b[i + 2]) && b[i + 3] == 0x3A
            && looksLikeDate(s) {
            i += 1
            while i < b.count && isTokenByte(b[i]) { i += 1 }
        }
        let tok = Array(b[s..<i])
        let text = String(decoding: tok, as: UTF8.self)
        if tok.contains(0x3A) || (tok.count >= 10 && looksLikeDate(s)) {
            guard let kind = dateTimeKind(tok, text) else {
                throw err("invalid date or time of \(length(s, i)) (expected e.g. 2024-10-01, 2024-10-01T00:00:00Z or 07:32:00)", start)
            }
            return TOMLValue(kind: kind, position: start, text: text)
        }
        // Numbers.
        var k = 0
        var negative = false
        var signed = false
        if tok.first == 0x2B || tok.first == 0x2D { negative = tok[0] == 0x2D; signed = true; k = 1 }
        let body = Array(tok[k...])
        let bodyText = String(decoding: body, as: UTF8.self)
        if bodyText == "inf" { return TOMLValue(kind: .float(negative ? -.infinity : .infinity), position: start, text: text) }
        if bodyText == "nan" { return TOMLValue(kind: .float(.nan), position: start, text: text) }
        if body.count >= 2 && body[0] == 0x30 && (body[1] == 0x78 || body[1] == 0x6F || body[1] == 0x62) {
            if signed { throw err("invalid number: a hexadecimal, octal or binary integer cannot have a sign", start) }
            let radix: Int64 = body[1] == 0x78 ? 16 : body[1] == 0x6F ? 8 : 2
            guard let v = parseRadix(Array(body[2...]), radix) else {
                throw err("invalid \(radix == 16 ? "hexadecimal" : radix == 8 ? "octal" : "binary") integer of \(length(s, i))", start)
            }
            return TOMLValue(kind: .integer(v), position: start, text: text)
        }
        guard let isFloat = validateDecimal(body) else {
            throw err("invalid number of \(length(s, i)) (strings must be quoted, such as \"text\")", start)
        }
        let clean = String(decoding: tok.filter { $0 != 0x5F }, as: UTF8.self)
        if isFloat {
            guard let d = Double(clean) else { throw err("invalid number of \(length(s, i))", start) }
            return TOMLValue(kind: .float(d), position: start, text: text)
        }
        guard let v = Int64(clean) else {
            throw err("integer out of range (-9223372036854775808 to 9223372036854775807)", start)
        }
        return TOMLValue(kind: .integer(v), position: start, text: text)
    }

    func looksLikeDate(_ s: Int) -> Bool {
        s + 10 <= b.count && isDigit(b[s]) && isDigit(b[s + 1]) && isDigit(b[s + 2]) && isDigit(b[s + 3])
            && b[s + 4] == 0x2D && isDigit(b[s + 5]) && isDigit(b[s + 6]) && b[s + 7] == 0x2D
            && isDigit(b[s + 8]) && isDigit(b[s + 9])
    }

    /// Validates `int [. digits] [e [+-] digits]` with TOML's underscore and leading-zero rules.
    /// Returns whether it is a float, or nil when malformed.
    func validateDecimal(_ t: [UInt8]) -> Bool? {
        var k = 0
        func digits() -> Int? {  // digits with single underscores between them; returns count of digits
            var n = 0
            var lastUnderscore = false
            while k < t.count {
                if isDigit(t[k]) { n += 1; lastUnderscore = false }
                else if t[k] == 0x5F { if n == 0 || lastUnderscore { return nil }; lastUnderscore = true }
                else { break }
                k += 1
            }
            if lastUnderscore || n == 0 { return nil }
            return n
        }
        let intStart = k
        guard let n = digits() else { return nil }
        if n > 1 && t[intStart] == 0x30 { return nil } // leading zero
        var isFloat = false
        if k < t.count && t[k] == 0x2E {
            k += 1
            guard digits() != nil else { return nil }
            isFloat = true
        }
        if k < t.count && (t[k] == 0x65 || t[k] == 0x45) {
            k += 1
            if k < t.count && (t[k] == 0x2B || t[k] == 0x2D) { k += 1 }
            guard digits() != nil else { return nil }
            isFloat = true
        }
        return k == t.count ? isFloat : nil
    }

    func parseRadix(_ t: [UInt8], _ radix: Int64) -> Int64? {
        var v: Int64 = 0
        var n = 0
        var lastUnderscore = false
        for c in t {
            if c == 0x5F {
                if n == 0 || lastUnderscore { return nil }
                lastUnderscore = true
                continue
            }
            guard isHexDigit(c) else { return nil }
            let d = Int64(hexValue(c))
            guard d < radix else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: radix)
            let (a, o2) = m.addingReportingOverflow(d)
            if o1 || o2 { return nil }
            v = a
            n += 1
            lastUnderscore = false
        }
        return n > 0 && !lastUnderscore ? v : nil
    }

    /// Classifies and validates a date/time token.
    func dateTimeKind(_ t: [UInt8], _ text: String) -> TOMLValue.Kind? {
        func num(_ at: Int, _ len: Int) -> Int? {
            guard at + len <= t.count else { return nil }
            var v = 0
            for k in at..<(at + len) { guard isDigit(t[k]) else { return nil }; v = v * 10 + Int(t[k] - 0x30) }
            return v
        }
        /// `HH:MM:SS[.frac]` at `at`; returns the index after it.
        func time(_ at: Int) -> Int? {
            guard let h = num(at, 2), at + 2 < t.count, t[at + 2] == 0x3A, let m = num(at + 3, 2),
                  at + 5 < t.count, t[at + 5] == 0x3A, let s = num(at + 6, 2), h < 24, m < 60, s <= 60 else { return nil }
            var k = at + 8
            if k < t.count && t[k] == 0x2E {
                k += 1
                let fs = k
                while k < t.count && isDigit(t[k]) { k += 1 }
                if k == fs { return nil }
            }
            return k
        }
        if t.count >= 3 && t[2] == 0x3A {
            guard let end = time(0), end == t.count else { return nil }
            return .localTime(text)
        }
        guard t.count >= 10, let y = num(0, 4), t[4] == 0x2D, let mo = num(5, 2), t[7] == 0x2D, let d = num(8, 2),
              mo >= 1, mo <= 12, d >= 1, d <= daysIn(month: mo, year: y) else { return nil }
        if t.count == 10 { return .localDate(text) }
        guard t[10] == 0x54 || t[10] == 0x74 || t[10] == 0x20, let end = time(11) else { return nil }
        if end == t.count { return .localDateTime(text) }
        if (t[end] == 0x5A || t[end] == 0x7A) && end + 1 == t.count { return .offsetDateTime(text) }
        if t[end] == 0x2B || t[end] == 0x2D {
            guard end + 6 == t.count, let oh = num(end + 1, 2), t[end + 3] == 0x3A, let om = num(end + 4, 2),
                  oh < 24, om < 60 else { return nil }
            return .offsetDateTime(text)
        }
        return nil
    }
}

/// The days of a month of the proleptic Gregorian calendar (RFC 3339's, and TOML's, dates).
private func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
}

@inline(__always) private func hexValue(_ c: UInt8) -> UInt8 {
    if c <= 0x39 { return c - 0x30 }
    if c <= 0x46 { return c - 0x41 + 10 }
    return c - 0x61 + 10
}

private func hex(_ v: UInt32, _ width: Int) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}
