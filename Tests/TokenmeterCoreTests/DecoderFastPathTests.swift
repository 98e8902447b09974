import Testing
@testable import TokenmeterCore

/// The decoder's short cuts against the general code they stand in for: a plain integer's value read
/// while its digits are scanned (against `NumberText` on the text), short strings copied with word moves
/// (every length, plain and escaped), the tag filter's flat name buffer, and whitespace between tokens
/// (the one-comparison skip).
@Suite("EventDecoder: fast paths agree with the general code")
struct DecoderFastPathTests {
    static let numberTexts = [
        "0", "7", "10", "42", "100", "1500", "999999999", "1000000000", "1000000001", "253402300799999",
        "253402300800000", "99999999999999999", "999999999999999999", "1000000000000000000", "12345678901234567890",
        "-0", "-5", "0.0", "100.0", "1.5", "1e3", "1E3", "5e-1", "0e0", "01", "007", "1.", "-", "1e", "1e+", ".5",
    ]

    @Test(arguments: numberTexts, ["", ",", "}", " ", "]", "x"])
    func plainIntegerValueAgreesWithItsText(_ text: String, _ after: String) {
        let bytes = Array((text + after).utf8)
        bytes.withUnsafeBytes { p in
            var general = JSONScanner(p)
            var fast = JSONScanner(p)
            let expected: Result<JSONSpan, JSONError>
            do throws(JSONError) { expected = .success(try general.readNumber()) } catch { expected = .failure(error) }
            do throws(JSONError) {
                let (span, value) = try fast.readNumberValue()
                guard case .success(let want) = expected else {
                    Issue.record("\(text + after): read as \(span) where readNumber failed"); return
                }
                #expect(span == want, "\(text + after)")
                #expect(fast.position == general.position, "\(text + after)")
                if value >= 0 {
                    let limit: Int64 = 999_999_999_999_999_999
                    #expect(NumberText.integer(general.bytes(want), limit: limit) == .ok(value), "\(text + after)")
                }
            } catch {
                #expect(expected == .failure(error), "\(text + after): \(error)")
            }
        }
    }

    /// A token count read through the fast path gives the same verdict as the same count written as a
    /// string of digits (which goes through `NumberText`).
    @Test(arguments: ["0", "1", "999999999", "1000000000", "1000000001", "18446744073709551616", "01"])
    func tokenCountVerdictsMatchTheDigitString(_ text: String) {
        let asNumber = EventDecoder().decode(#"{\#(wo),"input_tokens":\#(text)}"#)
        let asString = EventDecoder().decode(#"{\#(wo),"input_tokens":"\#(text)"}"#)
        if text == "01" {
            #expect(asNumber?.code == .invalidJSON)
        } else {
            #expect(asNumber?.code == asString?.code, "\(text): \(asNumber?.description ?? "ok") / \(asString?.description ?? "ok")")
        }
    }

    @Test func everyStringLengthIsCopiedExactly() throws {
        let d = EventDecoder()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-_.ABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for n in 0...70 {
            let id = String(decoding: (0..<n).map { alphabet[($0 * 7 + n) % alphabet.count] }, as: UTF8.self)
            let model = String(id.reversed())
            // Escaped the same text: `\u0041` for A, `\/` for the slash-free text's first character.
            let escaped = id.replacingOccurrences(of: "A", with: "\\u0041")
            try #require(decodeOK(d, #"{"id":"\#(id)","workflow":"w\#(escaped)","owner":"o","model":"\#(model)","tags":{"k\#(id)":"\#(model)"}}"#))
            #expect(d.string(d.event.id) == id)
            #expect(d.string(d.event.workflow) == "w" + id)
            #expect(d.string(d.event.contributions[0].model) == model)
            #expect(d.string(d.event.tags[0].name) == "k" + id)
            #expect(d.string(d.event.tags[0].value) == model)
        }
    }

    @Test func tagFilterKeepsExactNamesOnly() throws {
        let d = EventDecoder(tagNames: ["env", "environment", "customer-segment-of-the-account", ""])
        try #require(decodeOK(d, #"""
            {"workflow":"w","owner":"o","tags":{"en":"1","envx":"2","environmenT":"3","env":"4","environment":"5",
             "customer-segment-of-the-accounT":"6","customer-segment-of-the-account":"7","":"8","e\u006ev":"9"}}
            """#))
        let kept = d.event.tags.map { (d.string($0.name)!, d.string($0.value)!) }
        #expect(kept.map(\.0) == ["env", "environment", "customer-segment-of-the-account", ""])
        #expect(kept.map(\.1) == ["9", "5", "7", "8"])
    }

    @Test func whitespaceBetweenEveryTokenDecodesTheSame() throws {
        let compact = #"{"id":"e1","timestamp":1764410400000,"workflow":"w","owner":"o","model":"gpt-4o","usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":2}},"tags":{"a":"b"},"status":"ok"}"#
        var spaced = ""
        var inString = false
        for c in compact {
            if c == "\"" { inString.toggle() }
            spaced.append(c)
            if !inString && "{}[],:\"".contains(c) { spaced += " \n\t\r " }
        }
        let a = EventDecoder(), b = EventDecoder()
        try #require(decodeOK(a, compact))
        try #require(decodeOK(b, " \t" + spaced + "\n"))
        #expect(a.event.contributions == b.event.contributions)
        #expect(a.event.timestamp == b.event.timestamp)
        #expect(a.string(a.event.id) == b.string(b.event.id))
        #expect(a.string(a.event.provider) == b.string(b.event.provider))
        #expect(a.event.tags.count == 1 && b.event.tags.count == 1)
    }
}
