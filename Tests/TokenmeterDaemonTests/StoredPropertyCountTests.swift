import Foundation
import Testing

/// Each type of the daemon module holds at most 15 stored properties: past that a type has more than one job
/// and every method can change any of its fields. Counted: stored instance properties (`let`/`var` directly
/// in the type's braces, `lazy` and observed ones included, any access level); not counted: computed
/// properties, `static`/`class` properties (they belong to the type, not to each instance), enum cases.
@Suite("Stored properties per type")
struct StoredPropertyCountTests {
    static let limit = 15

    static let daemonSources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/TokenmeterDaemon")

    static func countDaemonModule() throws -> StoredPropertyCounter {
        // Every Swift file of the module, in subfolders too.
        let files = (FileManager.default.subpaths(atPath: daemonSources.path) ?? []).filter { $0.hasSuffix(".swift") }.sorted()
        var counter = StoredPropertyCounter()
        for file in files {
            counter.add(source: try String(contentsOf: daemonSources.appendingPathComponent(file), encoding: .utf8))
        }
        return counter
    }

    @Test func noTypeOfTheDaemonHoldsMoreThanFifteen() throws {
        let counter = try Self.countDaemonModule()
        if ProcessInfo.processInfo.environment["TOKENMETER_LIST_STORED_PROPERTIES"] == "1" {
            // scripts/count-stored-properties.sh: the whole table, largest first.
            for (name, stored) in counter.types.sorted(by: { ($1.value.count, $0.key) < ($0.value.count, $1.key) }) {
                print("\(stored.count)\t\(name)\t\(stored.joined(separator: " "))")
            }
        }
        // The counter found the module: its best-known types are there.
        for name in ["Daemon", "DaemonProgress.Snapshot", "MetricsRenderer", "HTTPServer", "AlertPublisher"] {
            #expect(counter.types[name] != nil, "\(name) not found in \(Self.daemonSources.path)")
        }
        for (name, stored) in counter.types.sorted(by: { $0.key < $1.key }) {
            #expect(stored.count <= Self.limit,
                    "\(name) has \(stored.count) stored properties (at most \(Self.limit)): \(stored.joined(separator: ", "))")
        }
    }

    // The counter itself, on sources whose answer is known.

    @Test func storedComputedObservedAndStatic() {
        var counter = StoredPropertyCounter()
        counter.add(source: """
            public final class Box: Sendable {
                let a: Int
                public private(set) var b = [1, 2], c: [String: Int] = [:]
                lazy var d = Foo { x in x + 1 }
                var e: Int = 0 { didSet { print("{") } }
                var f: Int { a + 1 }
                var g: Int {
                    get { a }
                    set { }
                }
                static let h = 1
                class var i: Int { 2 }
                private static var j = 3
                var k: Dictionary<String, Int> = [:]
                var n: Int? // { not a body }
                let o = "let p = 1 /* var q */ \\(a + 1)"
                func work() { var r = 0; let s = 1; r += s }
                init() { a = 0 }
            }
            """)
        #expect(counter.types["Box"] == ["a", "b", "c", "d", "e", "k", "n", "o"])
    }

    @Test func nestedTypesAndExtensions() {
        var counter = StoredPropertyCounter()
        counter.add(source: """
            struct Outer {
                var x = 0
                struct Inner { var y = 0; var z = "}"; enum Deepest { case a } }
                enum Kind { case one, two }
                class func make() -> Outer { Outer() }
            }
            extension Outer {
                var doubled: Int { x * 2 }
                static var shared = Outer()
                struct Added {
                    let w: Int
                }
            }
            protocol Shape { var sides: Int { get } }
            """)
        #expect(counter.types["Outer"] == ["x"])
        #expect(counter.types["Outer.Inner"] == ["y", "z"])
        #expect(counter.types["Outer.Inner.Deepest"] == [])
        #expect(counter.types["Outer.Kind"] == [])
        #expect(counter.types["Outer.Added"] == ["w"])
        #expect(counter.types["Shape"] == [])
        #expect(counter.types.count == 6)
    }
}

/// Stored instance properties per type in Swift source, by a small lexer rather than the compiler: comments and
/// string literals are blanked out, then every `let`/`var` directly inside a type's braces is a declaration
/// of that type. It is stored unless it has a body of its own (`{ get }`, `{ a + b }`) without an initial
/// value (`= ...`) and without `willSet`/`didSet`; `static`/`class` ones belong to the type, not to its
/// instances, and are not counted. `let a = 0, b = 0` is two; a tuple pattern (`let (a, b) = ...`) is not
/// read (the module has none). Extensions add to the type they extend; nested types are `Outer.Inner`.
struct StoredPropertyCounter {
    /// Type name (nested types as `Outer.Inner`) → its stored instance properties, in source order.
    private(set) var types: [String: [String]] = [:]

    mutating func add(source: String) {
        let tokens = Self.tokens(Self.blankingCommentsAndStrings(Array(source.utf8)))
        enum Scope { case type(String), other }
        var scopes: [Scope] = []
        var pendingType: String?
        for (i, token) in tokens.enumerated() {
            switch token {
            case "struct", "class", "enum", "actor", "protocol", "extension":
                // `class func`, `class var`: a modifier. A declaration is followed by its (capitalised) name.
                if i + 1 < tokens.count, let first = tokens[i + 1].first, first.isUppercase || first == "_" {
                    var name = tokens[i + 1]
                    var j = i + 2
                    while j + 1 < tokens.count, tokens[j] == "." { name += "." + tokens[j + 1]; j += 2 }
                    pendingType = name
                }
            case "{":
                if let name = pendingType {
                    let outer = scopes.last { if case .type = $0 { true } else { false } }
                    let path = if case .type(let outerPath)? = outer { outerPath + "." + name } else { name }
                    scopes.append(.type(path))
                    if types[path] == nil { types[path] = [] }
                    pendingType = nil
                } else {
                    scopes.append(.other)
                }
            case "}":
                if !scopes.isEmpty { scopes.removeLast() }
            case "let", "var":
                if case .type(let path)? = scopes.last, !Self.isStatic(tokens, before: i) {
                    types[path, default: []] += Self.storedBindings(tokens, after: i)
                }
            default:
                break
            }
        }
    }

    /// `static` or `class` among the modifiers on the declaration's line.
    static func isStatic(_ tokens: [String], before index: Int) -> Bool {
        var j = index - 1
        while j >= 0, !["\n", ";", "{", "}"].contains(tokens[j]) {
            if tokens[j] == "static" || tokens[j] == "class" { return true }
            j -= 1
        }
        return false
    }

    /// The names a `let`/`var` at `index` declares that hold storage.
    static func storedBindings(_ tokens: [String], after index: Int) -> [String] {
        var names: [String] = []
        var depth = 0
        var segment: [String] = []
        var j = index + 1
        func finish() {
            defer { segment = [] }
            // A binding starts with its name, then `:`, `=`, `,` or the end; a piece of a generic argument
            // list split at its comma (`Int>`) does not.
            guard let name = segment.first, name.first?.isLetter == true || name.first == "_" || name.first == "`" else { return }
            if segment.count > 1, ![":", "="].contains(segment[1]) { return }
            // A body without an initial value is computed unless it only observes (`willSet`, `didSet`).
            if let brace = segment.firstIndex(of: "{"), !segment[..<brace].contains("=") {
                let inside = segment[(brace + 1)...].first { $0 != "\n" }
                guard inside == "willSet" || inside == "didSet" else { return }
            }
            names.append(name)
        }
        while j < tokens.count {
            let t = tokens[j]
            if depth == 0 && (t == "\n" || t == ";") {
                // The declaration goes on when its body opens on this line and closes later (depth > 0) only.
                break
            }
            switch t {
            case "(", "[", "{": depth += 1
            case ")", "]", "}":
                if depth == 0 { finish(); return names }   // the type's closing brace
                depth -= 1
            default: break
            }
            if depth == 0 && t == "," { finish() } else { segment.append(t) }
            j += 1
        }
        finish()
        return names
    }

    /// Identifiers, single punctuation characters and newlines.
    static func tokens(_ bytes: [UInt8]) -> [String] {
        var out: [String] = []
        var i = 0
        func isWord(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x24 || b >= 0x80
        }
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x20 || b == 0x09 || b == 0x0D { i += 1; continue }
            if b == 0x0A { out.append("\n"); i += 1; continue }
            if b == 0x60 {   // `name`
                var j = i + 1
                while j < bytes.count, bytes[j] != 0x60, bytes[j] != 0x0A { j += 1 }
                out.append(String(decoding: bytes[(i + 1)..<min(j, bytes.count)], as: UTF8.self))
                i = j + 1
                continue
            }
            if isWord(b) {
                var j = i
                while j < bytes.count, isWord(bytes[j]) { j += 1 }
                out.append(String(decoding: bytes[i..<j], as: UTF8.self))
                i = j
                continue
            }
            out.append(String(UnicodeScalar(b)))
            i += 1
        }
        return out
    }

    /// The source with comments and the text of string literals replaced by spaces (newlines kept), so
    /// that braces and keywords in them do not count; interpolated code (`\(...)`) is blanked too.
    static func blankingCommentsAndStrings(_ source: [UInt8]) -> [UInt8] {
        var b = source
        let quote: UInt8 = 0x22, slash: UInt8 = 0x2F, star: UInt8 = 0x2A, backslash: UInt8 = 0x5C, hash: UInt8 = 0x23
        func blank(_ range: Range<Int>) {
            for k in range where b[k] != 0x0A { b[k] = 0x20 }
        }
        func at(_ k: Int, _ s: [UInt8]) -> Bool { k + s.count <= b.count && Array(b[k..<(k + s.count)]) == s }
        // Code from `start` to the `)` that closes an interpolation (or the end); returns the index after it.
        func skipCode(from start: Int, untilParen: Bool) -> Int {
            var k = start, parens = 0
            while k < b.count {
                if at(k, [slash, slash]) {
                    let s = k
                    while k < b.count, b[k] != 0x0A { k += 1 }
                    blank(s..<k)
                } else if at(k, [slash, star]) {
                    let s = k
                    var nesting = 0
                    while k < b.count {
                        if at(k, [slash, star]) { nesting += 1; k += 2 }
                        else if at(k, [star, slash]) { nesting -= 1; k += 2; if nesting == 0 { break } }
                        else { k += 1 }
                    }
                    blank(s..<k)
                } else if b[k] == quote || (b[k] == hash && (at(k, [hash, quote]) || at(k, [hash, hash]))) {
                    var hashes = 0
                    while k < b.count, b[k] == hash { hashes += 1; k += 1 }
                    guard k < b.count, b[k] == quote else { continue }
                    k = skipString(from: k, hashes: hashes)
                } else if untilParen && b[k] == 0x28 {
                    parens += 1; k += 1
                } else if untilParen && b[k] == 0x29 {
                    if parens == 0 { return k + 1 }
                    parens -= 1; k += 1
                } else {
                    k += 1
                }
            }
            return k
        }
        // A literal whose opening quote is at `start`; returns the index after its closing delimiter.
        func skipString(from start: Int, hashes: Int) -> Int {
            let multiline = at(start, [quote, quote, quote])
            let close = (multiline ? [quote, quote, quote] : [quote]) + Array(repeating: hash, count: hashes)
            var k = start + (multiline ? 3 : 1)
            var textStart = k
            while k < b.count {
                if at(k, [backslash] + Array(repeating: hash, count: hashes)) {
                    let after = k + 1 + hashes
                    if after < b.count, b[after] == 0x28 {
                        blank(textStart..<k)
                        k = skipCode(from: after + 1, untilParen: true)
                        let code = (after + 1)..<max(after + 1, k - 1)
                        blank(code)
                        textStart = k
                        continue
                    }
                    k = after + 1
                } else if at(k, close) {
                    blank(textStart..<k)
                    return k + close.count
                } else if !multiline && b[k] == 0x0A {
                    return k   // not a literal after all; stop at the line's end
                } else {
                    k += 1
                }
            }
            blank(textStart..<k)
            return k
        }
        _ = skipCode(from: 0, untilParen: false)
        return b
    }
}
