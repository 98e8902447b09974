import Testing
import TokenmeterTOML

/// TOML written by `TOMLText` reads back, through the parser, as the value it was written from.
@Suite("TOML text out")
struct TOMLTextTests {
    func readBack(_ written: String) throws -> String? {
        try TOMLParser.parse("k = " + written)["k"]?.string
    }

    @Test func everyControlCharacterIsEscapedAndReadsBack() throws {
        for v in Array(0x00...0x20) + [0x22, 0x5C, 0x7F] {
            let s = "x" + String(Unicode.Scalar(UInt8(v))) + "y"
            let written = TOMLText.string(s)
            #expect(!written.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(written.debugDescription)")
            #expect(try readBack(written) == s, "U+\(String(v, radix: 16)) as \(written)")
        }
        #expect(TOMLText.string("a\u{0}\u{8}\t\n\u{C}\r\u{1F}\u{7F}\"\\") == #""a\u0000\b\t\n\f\r\u001F\u007F\"\\""#)
    }

    @Test func textBeyondASCIIIsWrittenAsIs() throws {
        let s = "é ü 東京 \u{2028} 🙂"
        #expect(TOMLText.string(s) == "\"\(s)\"")
        #expect(try readBack(TOMLText.string(s)) == s)
        #expect(try TOMLParser.parse("k = " + TOMLText.strings(["a\"b", "c\nd"]))["k"]?.array?.compactMap(\.string) == ["a\"b", "c\nd"])
    }

    @Test func aCommentCannotBeEndedByItsText() throws {
        let comment = TOMLText.comment("path\nk = 1")
        #expect(!comment.contains("\n"))
        #expect(try TOMLParser.parse("# " + comment + "\n").isEmpty)
        #expect(TOMLText.comment("plain text") == "plain text")
    }
}
