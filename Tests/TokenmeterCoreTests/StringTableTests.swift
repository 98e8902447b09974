import Testing
@testable import TokenmeterCore

/// The name table's lookups compare raw bytes a word at a time, the last partial word as an overlapping
/// load: every length and every position of a difference must still tell names apart.
@Suite struct StringTableTests {
    /// A name of every length 0 to `maximum` (`abc...`), each followed by its copies with the byte at one
    /// position replaced by each of `changes(byte)`, for every position.
    static func names(upTo maximum: Int, _ changes: (UInt8) -> [UInt8]) -> [[UInt8]] {
        var names: [[UInt8]] = []
        for length in 0...maximum {
            let base = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            names.append(base)
            for position in 0..<length {
                for byte in changes(base[position]) {
                    var changed = base
                    changed[position] = byte
                    names.append(changed)
                }
            }
        }
        return names
    }

    /// Names of every length 0-40 and, for each, the same name with one byte changed at every position:
    /// all get distinct ids, and interning or looking any of them up again finds its own.
    @Test func namesDifferingInOneByteAtAnyPositionAndLengthStayApart() {
        var table = StringTable()
        let names = Self.names(upTo: 40) { [$0 ^ 0x20] }
        let ids = names.map { n in n.withUnsafeBytes { table.intern($0) } }
        #expect(Set(ids).count == names.count)
        for (n, id) in zip(names, ids) {
            #expect(n.withUnsafeBytes { table.intern($0) } == id)
            #expect(n.withUnsafeBytes { table.lookup($0) } == id)
            #expect(Array(table[id].utf8) == n)
        }
        #expect([UInt8]("zz-not-interned".utf8).withUnsafeBytes { table.lookup($0) } == nil)
    }

    /// The table's order, brought up to date after each of several rounds of new names (some sorting
    /// before every old one, some after, some between), ranks names exactly as their bytes compare.
    @Test func ranksFollowTheBytesAcrossRoundsOfNewNames() {
        var table = StringTable()
        var rng = SystemRandomNumberGenerator()
        let all = Self.names(upTo: 12) { [$0 &+ 1, 0x21, 0x7E] }.shuffled(using: &rng)
        var start = 0
        for round in [0, 1, 5, 200, 1_000, all.count] where round > start {
            for n in all[start..<min(round, all.count)] { _ = n.withUnsafeBytes { table.intern($0) } }
            start = round
            #expect(!table.isOrdered)
            table.updateOrder()
            #expect(table.isOrdered)
            let ids = (0..<UInt32(table.count)).map { $0 }
            let byRank = ids.sorted { table.rank($0) < table.rank($1) }
            let byBytes = ids.sorted { Array(table[$0].utf8).lexicographicallyPrecedes(Array(table[$1].utf8)) }
            #expect(byRank == byBytes)
            #expect(Set(ids.map { table.rank($0) }).count == ids.count)
        }
        table.updateOrder()   // nothing new: unchanged
        #expect(table.isOrdered)
    }

    @Test func byteComparisonAgreesWithArrayEqualityAtEveryLengthAndPosition() {
        for length in 0...40 {
            let a = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(a.withUnsafeBytes { x in a.withUnsafeBytes { y in length == 0 || memcmpBytes(x.baseAddress!, y.baseAddress!, length) } })
            for position in 0..<length {
                var b = a
                b[position] &+= 1
                #expect(!a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmpBytes(x.baseAddress!, y.baseAddress!, length) } },
                        "length \(length), difference at \(position)")
            }
        }
    }

    /// The rows of a rollup file are sorted by `precedes`: its word-at-a-time comparison must order names as
    /// their bytes do, for every pair of lengths 0-20 and a difference at every position (bytes above 0x7F
    /// included: a signed comparison would put them first).
    @Test func orderIsTheBytesOrderAtEveryLengthAndPosition() {
        var table = StringTable()
        let names = Self.names(upTo: 20) { [$0 &+ 1, $0 &- 1, $0 &+ 0x80, $0 &- 0x80] }
        var unique: [[UInt8]] = []
        for n in names where !unique.contains(n) { unique.append(n) }
        let ids = unique.map { n in n.withUnsafeBytes { table.intern($0) } }
        for (i, a) in unique.enumerated() {
            for (j, b) in unique.enumerated() {
                #expect(table.precedes(ids[i], ids[j]) == a.lexicographicallyPrecedes(b), "\(a) vs \(b)")
            }
        }
    }

    /// De-duplication ids are saved by `StringTable.hash`: it must not change with the table's own hash.
    @Test func theSavedIdHashKeepsItsValues() {
        let h = [UInt8]("evt-0".utf8).withUnsafeBytes { StringTable.hash($0) }
        let reference: UInt64 = {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ 5
            for b in "evt-0".utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
            h ^= h >> 33; h = h &* 0xff51_afd7_ed55_8ccd; h ^= h >> 33
            return h
        }()
        #expect(h == reference)
    }
}
