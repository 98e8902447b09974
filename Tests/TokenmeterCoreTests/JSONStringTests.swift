import Foundation
import Testing
@testable import TokenmeterCore

/// The one JSON string escaping (`jsonString` / `appendString`), which rollup rows, alerts and reports share.
@Suite struct JSONStringTests {
    @Test func shortFormsAndUnicodeEscapesAreTheDocumentedOnes() {
        #expect(jsonString("a\"b\\c") == #""a\"b\\c""#)
        #expect(jsonString("\n\r\t") == #""\n\r\t""#)
        #expect(jsonString("\u{0}\u{1}\u{8}\u{c}\u{1f}") == #""\u0000\u0001\u0008\u000c\u001f""#)
        // DEL and non-ASCII are valid in a JSON string: copied as they are.
        #expect(jsonString("\u{7f}é€\u{2028}") == "\"\u{7f}é€\u{2028}\"")
        #expect(jsonString("") == #""""#)
    }

    /// Every character below U+0100 and a few beyond, read back by Foundation's parser (an independent reader).
    @Test func everyCharacterReadsBackAsItself() throws {
        var text = String(String.UnicodeScalarView((0..<0x100).compactMap(Unicode.Scalar.init)))
        text += "€😀\u{2028}"
        let json = "[" + jsonString(text) + "]"
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String]
        #expect(parsed == [text])
    }

    /// The alert writer quotes through the same helper: its bytes are `jsonString`'s.
    @Test func theAlertWriterQuotesLikeTheRollupWriter() {
        let hostile = "model\n\"x\"\\\u{1b}[31m"
        var writer = JSONTextWriter()
        writer.string(hostile)
        var bytes: [UInt8] = []
        appendString(&bytes, hostile)
        #expect(writer.text == jsonString(hostile))
        #expect(writer.text == String(decoding: bytes, as: UTF8.self))
        #expect(writer.text == #""model\n\"x\"\\\u001b[31m""#)
    }

    /// Rollup rows quote names straight from the string table's bytes, copying the runs that need no
    /// escape whole: the same bytes as `jsonString`, wherever the escapes fall (first, last, adjacent).
    @Test func namesQuotedFromTheStringTableMatchJSONString() throws {
        var table = StringTable()
        let names = ["invoice-extraction", "", "\"", "\"lead", "trail\\", "mid\ndle\tx", "\u{1}\u{1f}", "é€😀", "a\"\"b\\\\c\u{0}"]
        let ids = names.map { table.intern($0) }
        var all: [UInt8] = []
        for (name, id) in zip(names, ids) {
            var out: [UInt8] = Array("x".utf8)   // appends: what was there stays
            table.appendJSON(id, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == "x" + jsonString(name), "\(name.debugDescription)")
            all += out.dropFirst() + [UInt8(ascii: ",")]
        }
        let parsed = try JSONSerialization.jsonObject(with: Data(("[" + String(decoding: all.dropLast(), as: UTF8.self) + "]").utf8)) as? [String]
        #expect(parsed == names)
    }

    /// Kafka keys use the JSON `\u00XX` form for control characters, C1 controls (two UTF-8 bytes) included.
    @Test func kafkaKeysEscapeC0AndC1Controls() {
        #expect(Alert.escapedKey("a\u{1b}b\u{85}c\u{7f}\\") == #"a\u001bb\u0085c\u007f\\"#)
    }
}
