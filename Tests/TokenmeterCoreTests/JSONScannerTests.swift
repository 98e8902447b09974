import Testing
@testable import TokenmeterCore

/// Validates `bytes` as one JSON document; nil = valid.
func validateJSON(_ bytes: [UInt8]) -> JSONError? {
    bytes.withUnsafeBytes { JSONScanner.validate($0) }
}

func validateJSON(_ text: String) -> JSONError? { validateJSON(Array(text.utf8)) }

/// Reads the single top-level string of `text`, unescaped.
func readJSONString(_ text: String) throws -> [UInt8] {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBytes { p throws -> [UInt8] in
        var s = JSONScanner(p)
        var out: [UInt8] = []
        let span = try s.readString()
        try s.finish()
        s.appendUnescaped(span, to: &out)
        return out
    }
}

@Suite("JSONScanner")
struct JSONScannerTests {
    @Test(arguments: [
        "{}", "[]", "0", "-0", "1.5e-3", "-12.0E+2", "\"\"", "true", "false", "null", " \n\t\r{} \n",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}", "[[[[]]]]", "\"\\u00e9\\n\\t\\\"\\\\\\/\\b\\f\\r\"",
        "\"\\ud83d\\ude00\"", "\"héllo ✓ 😀\"", "{\"\":0}", "123456789012345678901234567890",
    ])
    func acceptsValidJSON(_ text: String) {
        #expect(validateJSON(text) == nil, "\(text)")
    }

    @Test(arguments: [
        ("", JSONError.Kind.unexpectedEnd), ("   ", .unexpectedEnd), ("{", .unexpectedEnd), ("{\"a\"", .unexpectedEnd),
        ("{\"a\":}", .unexpectedByte), ("{\"a\" 1}", .unexpectedByte), ("{\"a\":1,}", .unexpectedByte),
        ("[1,]", .unexpectedByte), ("[1 2]", .unexpectedByte), ("{'a':1}", .unexpectedByte), ("{a:1}", .unexpectedByte),
        ("{} x", .trailingData), ("{}{}", .trailingData), ("1 2", .trailingData), ("nul", .unexpectedByte),
        ("tru", .unexpectedByte), ("nulx", .unexpectedByte), ("True", .unexpectedByte), ("01", .trailingData),
        ("1.", .invalidNumber), (".5", .unexpectedByte), ("+1", .unexpectedByte), ("1e", .invalidNumber),
        ("-", .unexpectedEnd), ("-a", .invalidNumber), ("NaN", .unexpectedByte), ("Infinity", .unexpectedByte),
        ("\"abc", .unexpectedEnd), ("\"a\\x\"", .invalidEscape), ("\"\\u12\"", .invalidEscape),
        ("\"\\u12g4\"", .invalidEscape), ("\"\\ud800\"", .loneSurrogate), ("\"\\udc00\"", .loneSurrogate),
        ("\"\\ud800\\u0041\"", .loneSurrogate), ("\"\\ud800x\"", .loneSurrogate), ("/* c */{}", .unexpectedByte),
    ])
    func rejectsInvalidJSON(_ text: String, _ kind: JSONError.Kind) {
        let e = validateJSON(text)
        #expect(e?.kind == kind, "\(text): \(String(describing: e))")
    }

    @Test func rejectsControlCharactersInStrings() {
        for c: UInt8 in [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] {
            #expect(validateJSON([0x22, 0x61, c, 0x22])?.kind == .controlCharacter)
        }
        #expect(validateJSON([0x22, 0x7F, 0x22]) == nil)   // DEL is allowed
    }

    @Test func validatesUTF8InStrings() {
        let bad: [[UInt8]] = [
            [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xC2], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xE2, 0x82], [0xC3, 0x28],
        ]
        for seq in bad {
            #expect(validateJSON([0x22] + seq + [0x22])?.kind == .invalidUTF8, "\(seq)")
        }
        let good: [[UInt8]] = [
            [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80],
            [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xE2, 0x82, 0xAC],
        ]
        for seq in good {
            #expect(validateJSON([0x22] + seq + [0x22]) == nil, "\(seq)")
        }
        // Non-ASCII outside strings is a syntax error.
        #expect(validateJSON([0x7B, 0xC3, 0xA9, 0x7D]) != nil)
    }

    @Test func skipsByteOrderMark() {
        #expect(validateJSON([0xEF, 0xBB, 0xBF] + Array("{}".utf8)) == nil)
    }

    @Test func limitsNesting() {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(validateJSON(ok) == nil)
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(validateJSON(deep)?.kind == .tooDeep)
        let deepObj = String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(validateJSON(deepObj)?.kind == .tooDeep)
        // Very deep input fails fast without blowing the stack.
        let huge = String(repeating: "[", count: 200_000)
        #expect(validateJSON(huge)?.kind == .tooDeep)
    }

    @Test func unescapesStrings() throws {
        #expect(try readJSONString("\"plain\"") == Array("plain".utf8))
        #expect(try readJSONString("\"a\\\"b\\\\c\\/d\\n\\t\\r\\b\\f\"") == Array("a\"b\\c/d\n\t\r\u{08}\u{0C}".utf8))
        #expect(try readJSONString("\"\\u00e9t\\u00E9\"") == Array("été".utf8))
        #expect(try readJSONString("\"\\u20ac\"") == Array("€".utf8))
        #expect(try readJSONString("\"\\ud83d\\ude00!\"") == Array("😀!".utf8))
        #expect(try readJSONString("\"\\u0000\"") == [0])
        #expect(try readJSONString("\"raw é 😀\"") == Array("raw é 😀".utf8))
    }

    @Test func walksObjectsKeyByKey() throws {
        let text = Array(#" { "a" : 1 , "b":[true,false,null], "c":{"d":"e"}, "f": -2.5e3 } "#.utf8)
        try text.withUnsafeBytes { p in
            var s = JSONScanner(p)
            var keys: [String] = []
            var numbers: [String] = []
            do {
                try s.beginObject()
                while let k = try s.nextKey() {
                    let key = String(decoding: s.bytes(k), as: UTF8.self)
                    keys.append(key)
                    switch try s.peekKind() {
                    case .number: numbers.append(String(decoding: s.bytes(try s.readNumber()), as: UTF8.self))
                    case .array:
                        try s.beginArray()
                        var bools = 0
                        while try s.nextElement() {
                            if try s.peekKind() == .bool { _ = try s.readBool(); bools += 1 } else { try s.skipValue() }
                        }
                        #expect(bools == 2)
                    default: try s.skipValue()
                    }
                }
                try s.finish()
            } catch {
                Issue.record("\(error)")
            }
            #expect(keys == ["a", "b", "c", "f"])
            #expect(numbers == ["1", "-2.5e3"])
            #expect(s.depth == 0)
        }
    }

    @Test func exactIntegerText() {
        func int(_ t: String, _ limit: Int64 = 1_000_000_000) -> NumberText.IntegerResult {
            Array(t.utf8).withUnsafeBytes { NumberText.integer($0, limit: limit) }
        }
        #expect(int("0") == .ok(0))
        #expect(int("-0") == .ok(0))
        #expect(int("123") == .ok(123))
        #expect(int("1000000000") == .ok(1_000_000_000))
        #expect(int("1000000001") == .tooLarge)
        #expect(int("99999999999999999999999") == .tooLarge)
        #expect(int("100.0") == .ok(100))
        #expect(int("1e3") == .ok(1000))
        #expect(int("1.5e1") == .ok(15))
        #expect(int("1500e-2") == .ok(15))
        #expect(int("1.5") == .fractional)
        #expect(int("15e-1") == .fractional)
        #expect(int("-5") == .negative)
        #expect(int("1e400") == .tooLarge)
        #expect(int("0.0e5") == .ok(0))
    }

    @Test func exactMoneyText() {
        func femtos(_ t: String) -> Int128? { Array(t.utf8).withUnsafeBytes { NumberText.femtos($0) } }
        #expect(femtos("0") == 0)
        #expect(femtos("5") == 5_000_000_000_000_000)
        #expect(femtos("0.05") == 50_000_000_000_000)
        #expect(femtos("2.5e-7") == 250_000_000)
        #expect(femtos("-1.5") == -1_500_000_000_000_000)
        #expect(femtos("0.0000000000000005") == 0)      // half to even: 0.5 femto -> 0
        #expect(femtos("0.0000000000000015") == 2)      // 1.5 femto -> 2
        #expect(femtos("0.00000000000000051") == 1)
        #expect(femtos("1e-400") == 0)
        #expect(femtos("1e13") == nil)                  // over 10^12 USD
        #expect(femtos("abc") == nil)
        // Agrees with Money.parse on ordinary amounts.
        for t in ["0.0004095", "3.059784", "0.00009435", "123.456789123456789", "7E-3"] {
            #expect(femtos(t) == Money.parse(t)?.femtos, "\(t)")
        }
    }
}
