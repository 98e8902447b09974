import Testing
@testable import TokenmeterTOML

private func parse(_ s: String) throws -> TOMLTable { try TOMLParser.parse(s) }

private func pos(_ line: Int, _ column: Int) -> TOMLPosition { TOMLPosition(line: line, column: column) }

/// The error `text` raises, as `LINE:COL: message`.
private func failure(_ text: String) -> String? {
    do {
        _ = try TOMLParser.parse(text)
        return nil
    } catch {
        return error.description
    }
}

@Suite("TOML parser")
struct TOMLParserTests {
    @Test func strings() throws {
        let t = try parse(#"""
        basic = "tab\there \"q\" back\\slash \u00e9 \U0001F600"
        literal = 'C:\path\no escapes'
        empty = ""
        ml = """
        line one
          line two \
            joined"""
        ml_quotes = """a "quoted" ""two"" end"""""
        lit_ml = '''
        raw \n 'quoted' '''
        "quoted key" = 1
        'literal key' = 2
        "" = 3
        """#)
        #expect(t["basic"]?.string == "tab\there \"q\" back\\slash é 😀")
        #expect(t["literal"]?.string == #"C:\path\no escapes"#)
        #expect(t["empty"]?.string == "")
        #expect(t["ml"]?.string == "line one\n  line two joined")
        #expect(t["ml_quotes"]?.string == #"a "quoted" ""two"" end"""#)
        #expect(t["lit_ml"]?.string == #"raw \n 'quoted' "#)
        #expect(t["quoted key"]?.integer == 1)
        #expect(t["literal key"]?.integer == 2)
        #expect(t[""]?.integer == 3)
        #expect(t["literal"]?.text == #"'C:\path\no escapes'"#)
    }

    @Test func integersKeepValueAndText() throws {
        let t = try parse("""
        a = 42
        b = +17
        c = -0
        d = 1_000_000
        e = 0xDEAD_beef
        f = 0o755
        g = 0b1101
        h = -9223372036854775808
        """)
        #expect(t["a"]?.integer == 42)
        #expect(t["b"]?.integer == 17)
        #expect(t["c"]?.integer == 0)
        #expect(t["d"]?.integer == 1_000_000)
        #expect(t["d"]?.text == "1_000_000")
        #expect(t["e"]?.integer == 0xDEADBEEF)
        #expect(t["e"]?.text == "0xDEAD_beef")
        #expect(t["f"]?.integer == 0o755)
        #expect(t["g"]?.integer == 13)
        #expect(t["h"]?.integer == Int64.min)
    }

    @Test func floatsKeepTheirText() throws {
        let t = try parse("""
        a = 2.50
        b = 1e-1
        c = -6.626e-34
        d = 1_000.000_1
        e = inf
        f = -inf
        g = nan
        h = 3E+2
        """)
        #expect(t["a"]?.text == "2.50")
        #expect(t["a"]?.kind == .float(2.5))
        #expect(t["b"]?.text == "1e-1")
        #expect(t["c"]?.text == "-6.626e-34")
        #expect(t["d"]?.text == "1_000.000_1")
        #expect(t["e"]?.kind == .float(.infinity))
        #expect(t["f"]?.kind == .float(-.infinity))
        if case .float(let v)? = t["g"]?.kind { #expect(v.isNaN) } else { Issue.record("nan is not a float") }
        #expect(t["h"]?.kind == .float(300))
        #expect(t["a"]?.isNumber == true)
    }

    @Test func booleansAndDates() throws {
        let t = try parse("""
        yes = true
        no = false
        odt = 1979-05-27T07:32:00Z
        odt2 = 1979-05-27 00:32:00.999999-07:00
        ldt = 1979-05-27T07:32:00
        ld = 2024-10-01
        lt = 07:32:00.5
        """)
        #expect(t["yes"]?.bool == true)
        #expect(t["no"]?.bool == false)
        #expect(t["odt"]?.kind == .offsetDateTime("1979-05-27T07:32:00Z"))
        #expect(t["odt2"]?.kind == .offsetDateTime("1979-05-27 00:32:00.999999-07:00"))
        #expect(t["ldt"]?.kind == .localDateTime("1979-05-27T07:32:00"))
        #expect(t["ld"]?.kind == .localDate("2024-10-01"))
        #expect(t["lt"]?.kind == .localTime("07:32:00.5"))
    }

    @Test func positionsOfKeysAndValues() throws {
        let t = try parse("""
        # comment
        name   =   "x"   # trailing comment
        "é" = 1
        """)
        let e = try #require(t.entry("name"))
        #expect(e.keyPosition == pos(2, 1))
        #expect(e.value.position == pos(2, 12))
        // Columns count characters, not bytes: `é` is two bytes, one column.
        let acc = try #require(t.entry("é"))
        #expect(acc.keyPosition == pos(3, 1))
        #expect(acc.value.position == pos(3, 7))
    }

    @Test func tablesDottedKeysAndArraysOfTables() throws {
        let t = try parse("""
        top = 1
        [server]
        host = "a"
        [server.tls]
        on = true
        [a.b.c]
        d.e = 2
        [[price]]
        model = "x"

        [[price]]
          model = "y"
        [[price.tier]]
        n = 1
        """)
        let server = try #require(t["server"]?.table)
        #expect(server.position == pos(2, 1))
        #expect(server["host"]?.string == "a")
        #expect(server["tls"]?.table?["on"]?.bool == true)
        #expect(server.entry("tls")?.keyPosition == pos(4, 9))
        let c = try #require(t["a"]?.table?["b"]?.table?["c"]?.table)
        #expect(c["d"]?.table?["e"]?.integer == 2)
        #expect(t.entry("a")?.keyPosition == pos(6, 2))
        let prices = try #require(t["price"])
        #expect(prices.isArrayOfTables)
        #expect(prices.position == pos(8, 1))
        #expect(t.entry("price")?.keyPosition == pos(8, 3))
        let list = try #require(prices.array)
        #expect(list.count == 2)
        #expect(list[0].position == pos(8, 1))
        #expect(list[1].position == pos(11, 1))
        #expect(list[1].table?["model"]?.string == "y")
        #expect(list[1].table?.entry("model")?.keyPosition == pos(12, 3))
        #expect(list[1].table?["tier"]?.array?.first?.table?["n"]?.integer == 1)
        #expect(t.keys == ["top", "server", "a", "price"])
    }

    @Test func implicitTableMayBeDefinedLater() throws {
        let t = try parse("""
        [x.y.z]
        a = 1
        [x]
        b = 2
        """)
        #expect(t["x"]?.table?["b"]?.integer == 2)
        #expect(t["x"]?.table?.position == pos(3, 1))
    }

    @Test func multiLineArrays() throws {
        let t = try parse("""
        windows = [
          "1m",   # one minute
          "1h",
          # a comment line
          "1d",   # trailing comma next
        ]
        nested = [[1, 2], ["a"], []]
        mixed = [1, "two", 3.0, { x = 1 }]
        """)
        let w = try #require(t["windows"]?.array)
        #expect(w.map(\.string) == ["1m", "1h", "1d"])
        #expect(w.map(\.position) == [pos(2, 3), pos(3, 3), pos(5, 3)])
        #expect(t["windows"]?.position == pos(1, 11))
        #expect(t["nested"]?.array?.count == 3)
        #expect(t["nested"]?.array?[1].array?.first?.string == "a")
        #expect(t["mixed"]?.array?[3].table?["x"]?.integer == 1)
        #expect(t["mixed"]?.array?[3].isInlineTable == true)
    }

    @Test func inlineTables() throws {
        let t = try parse(#"point = { x = 1, y.z = "two", "q k" = [1,2] }"#)
        let p = try #require(t["point"]?.table)
        #expect(p["x"]?.integer == 1)
        #expect(p["y"]?.table?["z"]?.string == "two")
        #expect(p["q k"]?.array?.count == 2)
        #expect(p.entry("y")?.keyPosition == pos(1, 18))
        #expect(t["point"]?.position == pos(1, 9))
        #expect(try parse("e = {}")["e"]?.table?.isEmpty == true)
    }

    @Test func crlfAndBOM() throws {
        let t = try TOMLParser.parse(bytes: [0xEF, 0xBB, 0xBF] + Array("a = 1\r\nb = 'x'\r\n".utf8))
        #expect(t["a"]?.integer == 1)
        #expect(t.entry("b")?.keyPosition == pos(2, 1))
    }

    @Test func syntaxErrorsHaveExactPositions() {
        #expect(failure("a = 1\na = 2") == "2:1: duplicate key `a` (first defined at line 1, column 1)")
        #expect(failure("[t]\nx = 1\n[t]") == "3:2: table `[t]` is defined twice (first at line 1)")
        #expect(failure("a = \"abc\nb = 1") == "1:5: unterminated string: missing closing `\"` before end of line")
        #expect(failure(#"a = "x\qy""#) == #"1:7: invalid escape sequence: a backslash followed by a letter (allowed: \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX)"#)
        #expect(failure("\n  name \"x\"") == "2:8: expected `=` after a key, found `\"`")
        #expect(failure("a = hello") == "1:5: invalid value: an unquoted word of 5 characters (strings must be quoted, such as \"text\")")
        #expect(failure("a = .5") == "1:5: invalid number: write a digit before the decimal point (such as 0.5)")
        #expect(failure("a = 012") == "1:5: invalid number of 3 characters (strings must be quoted, such as \"text\")")
        #expect(failure("a = 1__0") == "1:5: invalid number of 4 characters (strings must be quoted, such as \"text\")")
        #expect(failure("a = 1 b = 2") == "1:7: expected a newline after the value of `a`, found a letter")
        #expect(failure("a = [1, 2\nb = 3") == "2:1: expected `,` or `]` in array, found a letter")
        #expect(failure("a = [1,\n 2,\n") == "3:1: unterminated array (opened at line 1, column 5): expected `]`")
        #expect(failure("a = { x = 1, }") == "1:14: trailing comma is not allowed in an inline table")
        #expect(failure("a = { x = 1\n}") == "1:12: an inline table must be on one line (use a [table] header for longer tables)")
        #expect(failure("[a\nb = 1") == "1:3: expected `]` to close the table header, found end of line")
        #expect(failure("a = 2024-13-01") == "1:5: invalid date or time of 10 characters (expected e.g. 2024-10-01, 2024-10-01T00:00:00Z or 07:32:00)")
        #expect(failure("a = 9223372036854775808") == "1:5: integer out of range (-9223372036854775808 to 9223372036854775807)")
        #expect(failure("a = \"\"\"\nnever closed") == "1:5: unterminated multi-line string: missing closing `\"\"\"`")
        #expect(failure("a = ") == "1:5: expected a value, found end of file")
        #expect(failure("x = 1 # ok\n\"é\" = \"\u{1}\"") == "2:8: control character U+0001 must be escaped in a string")
        #expect(failure("a = \"\\uD800\"") == "1:6: invalid escape: U+D800 is not a Unicode scalar value")
        #expect(failure("a = +0x10") == "1:5: invalid number: a hexadecimal, octal or binary integer cannot have a sign")
    }

    /// A value is never repeated in a syntax error: an unquoted password is one, and the message reaches a
    /// terminal, a CI log or the journal (on a SIGHUP reload).
    @Test func syntaxErrorsNeverRepeatAValue() {
        let secret = "Zq7hunter2Pw"
        let cases = [
            "sasl.password = \(secret)",              // unquoted word
            "sasl.password = 9\(secret)",             // looks like a number
            "sasl.password = 2024-01-01\(secret)",    // looks like a date
            "sasl.password = 0x\(secret)",            // looks like a hexadecimal integer
            "sasl.password = .\(secret)",             // looks like a fraction
            "sasl.password = \"\(secret)\" \(secret)",  // a second word after a quoted value
            "[kafka.properties]\n\(secret)",           // a pasted line on its own
            "a = [\"x\" \(secret)]",                   // inside an array
            "a = { b = 1 \(secret) }",                // inside an inline table
            "a = \"\(secret)\\\(secret)\"",           // an invalid escape inside a quoted secret
        ]
        for text in cases {
            let message = failure(text)
            #expect(message != nil, "\(text)")
            for part in [secret, "Zq7", "hunter", "Pw", "q7"] {
                #expect(message?.contains(part) == false, "\(text) -> \(message ?? "")")
            }
        }
    }

    @Test func structureErrors() {
        #expect(failure("a.b = 1\n[a]") == "2:2: table `[a]` was already defined by dotted keys (line 1, column 1)")
        #expect(failure("a = 1\n[a.b]") == "2:2: cannot define a table under `a`: it is already an integer (line 1, column 1)")
        #expect(failure("[[a]]\n[a]") == "2:2: cannot define `[a]`: it is already an array of tables (`[[a]]`, line 1)")
        #expect(failure("[a]\n[[a]]") == "2:3: cannot define `[[a]]`: `a` is already a table (line 1, column 2)")
        #expect(failure("a = [1]\n[[a]]") == "2:3: cannot define `[[a]]`: `a` is already an array (line 1, column 1)")
        #expect(failure("a = {x = 1}\n[a.y]") == "2:2: cannot define a table under `a`: it is already a table (line 1, column 1)")
        #expect(failure("[a.b]\nx = 1\n[a]\nb.y = 2") == "4:1: cannot add to `b` with a dotted key: it is a table from a `[...]` header (line 1); add keys under a header instead")
        #expect(failure("p = {a.b = 1, a.b = 2}") == "1:17: duplicate key `a.b` (first defined at line 1, column 8)")
    }
}

@Suite("TOML parser robustness")
struct TOMLParserRobustnessTests {
    /// Every truncation of a document full of TOML features parses or fails cleanly (never traps), and every
    /// error position lies inside the text.
    @Test func truncatedDocumentsNeverCrash() {
        let doc = #"""
        # comment é
        a = "x\u00e9\"" # c
        b = 'lit'
        c = """
        multi \
          line"""
        d = '''raw'''
        e = [1, 2.5e3, -0x1, +inf, 0b1, 0o7, true, 1979-05-27T07:32:00Z, 1979-05-27 07:32:00, 2024-10-01, 07:32:00.1]
        f = { g = 1, h.i = "j", k = [ { l = 2 } ] }
        "q k".r = 3
        [t.u]
        v = [
          "w", # x
        ]
        [[y.z]]
        n = 1_000
        """#
        let bytes = Array(doc.utf8)
        let lines = doc.split(separator: "\n", omittingEmptySubsequences: false).count
        for n in 0...bytes.count {
            do {
                _ = try TOMLParser.parse(bytes: Array(bytes[0..<n]))
            } catch {
                #expect(error.position.line >= 1 && error.position.line <= lines && error.position.column >= 1)
            }
            // A byte removed anywhere.
            if n < bytes.count {
                var cut = bytes
                cut.remove(at: n)
                _ = try? TOMLParser.parse(bytes: cut)
            }
        }
    }
}
