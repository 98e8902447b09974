import Foundation
import Testing
@testable import TokenmeterCore

/// The byte formatters the rollup encoder uses instead of `String`s, checked against independent
/// references (Swift's own integer printing, Foundation's date formatter, decimal arithmetic on digits).
@Suite struct ByteFormattingTests {
    /// The straightforward decimal formatting the byte version replaced: digits of the rounded value as
    /// a String, split at the scale, trailing zeros trimmed.
    static func reference(_ value: Int128, scale: Int, maxDecimals: Int, minDecimals: Int) -> String {
        var v = value.magnitude
        var s = scale
        if scale > maxDecimals {
            var div: UInt128 = 1
            for _ in 0..<(scale - maxDecimals) { div *= 10 }
            let q = v / div, r = v % div
            v = q
            if r > div / 2 || (r == div / 2 && q % 2 == 1) { v += 1 }
            s = maxDecimals
        }
        var digits = String(v)
        if digits.count <= s { digits = String(repeating: "0", count: s - digits.count + 1) + digits }
        var frac = Substring(digits.suffix(s))
        while frac.count > minDecimals, frac.last == "0" { frac = frac.dropLast() }
        return (value < 0 && v != 0 ? "-" : "") + digits.prefix(digits.count - s) + (frac.isEmpty ? "" : "." + frac)
    }

    @Test func decimalsMatchTheReferenceOnEdgesAndRandomValues() {
        var values: [Int128] = [0, 1, -1, 5, 9, 10, 499_999, 500_000, 500_001, 1_500_000, 2_500_000,
                                999_999_999_999_999_999, 1_000_000_000_000_000_000, 1_000_000_000_000_000_001,
                                Int128(Int64.max), Int128(Int64.min), Int128.max, Int128.min + 1]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let magnitude = Int128(UInt64.random(in: 0...UInt64.max, using: &rng)) * Int128(Int.random(in: 0...1_000_000, using: &rng))
            values.append(Bool.random(using: &rng) ? magnitude : -magnitude)
            values.append(Int128(Int64.random(in: -10_000_000...10_000_000, using: &rng)))
        }
        for v in values {
            for (scale, maxD, minD) in [(15, 9, 0), (15, 2, 2), (9, 9, 0), (15, 15, 0), (0, 0, 0), (6, 3, 1)] {
                let got = FixedDecimal.format(v, scale: scale, maxDecimals: maxD, minDecimals: minD)
                let want = ByteFormattingTests.reference(v, scale: scale, maxDecimals: maxD, minDecimals: minD)
                #expect(got == want, "\(v) scale \(scale) max \(maxD) min \(minD)")
            }
        }
        #expect(Money(femtos: 5_750_000_000_000_000).decimalString() == "5.75")
        #expect(Money(femtos: 4_800_000_000).decimalString() == "0.0000048")
        #expect(Money(femtos: -500_000).decimalString() == "0")
        #expect(Money(femtos: -1_500_000).decimalString() == "-0.000000002")
    }

    @Test func integersMatchSwiftsOwnPrinting() {
        var values: [Int64] = [0, 1, -1, 9, 10, 99, 100, Int64.max, Int64.min, 1_000_000_000_000_000_000]
        for _ in 0..<5000 { values.append(Int64.random(in: Int64.min...Int64.max)) }
        for v in values {
            var out: [UInt8] = [UInt8(ascii: "x")]
            appendInteger(v, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == "x" + String(v))
        }
    }

    @Test func timesMatchFoundationsFormatter() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        var times: [Int64] = [0, 951_782_400_000, 4_102_444_799_999, 1_764_374_400_000]
        for _ in 0..<2000 { times.append(Int64.random(in: 0...4_102_444_799_999) / 1000 * 1000) }
        for ms in times {
            let want = f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
            #expect(RFC3339.format(ms) == want)
            #expect(RFC3339.compact(ms) == want.replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: ""))
            #expect(RFC3339.day(ms) == String(want.prefix(10)))
            #expect(RFC3339.parse(RFC3339.format(ms, fraction: true)) == ms)
        }
        #expect(RFC3339.format(1_764_374_400_123, fraction: true) == "2025-11-29T00:00:00.123Z")
    }
}

@Suite struct DurableBatchTests {
    func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "durable-batch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    func listing(_ dir: String) throws -> [String] {
        try FileManager.default.subpathsOfDirectory(atPath: dir).sorted()
    }

    @Test(arguments: [1, DurableBatch.fsyncEachLimit, DurableBatch.fsyncEachLimit + 1, 300])
    func everyStagedFileAppearsWholeAndNoTemporaryRemains(files: Int) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let batch = DurableBatch()
        var want: [String: [UInt8]] = [:]
        for i in 0..<files {
            let path = "\(dir)/f\(i % 3)/sub/file-\(i).jsonl"
            let bytes = Array("row \(i)\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: i)
            try batch.stage(bytes, to: path)
            want[path] = bytes
        }
        // Nothing is visible under its final name before the commit.
        #expect(try listing(dir).filter { $0.hasSuffix(".jsonl") }.isEmpty)
        try batch.commit()
        #expect(batch.count == 0)
        for (path, bytes) in want { #expect(FileManager.default.contents(atPath: path) == Data(bytes)) }
        #expect(try listing(dir).filter { $0.hasSuffix(".tmp") }.isEmpty)
        #expect(try listing(dir).filter { $0.hasSuffix(".jsonl") }.count == files)
    }

    /// Paths are built as bytes: every kind of file, and a late stamp's milliseconds zero-padded.
    @Test func rollupFileNamesSpellEveryKindOfFile() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = RollupFileWriter(dir: dir, windows: [DurationSpec(millis: 60_000, label: "1m"), DurationSpec(millis: 3_600_000, label: "1h")])
        let start = try #require(RFC3339.parse("2026-11-29T10:00:00Z"))
        let stamp = try #require(RFC3339.parse("2026-11-29T12:00:00Z"))
        func name(_ kind: ClosedWindow.Kind, size: Int = 1) -> String {
            writer.relativePath(ClosedWindow(sizeIndex: size, start: start, rows: RowTable(), kind: kind), writer: "host1-p3")
        }
        let base = "1h/2026-11-29/20261129T100000Z-host1-p3"
        #expect(name(.final) == base + ".jsonl")
        #expect(name(.final, size: 0) == "1m/2026-11-29/20261129T100000Z-host1-p3.jsonl")
        #expect(name(.late(stamp: stamp)) == base + "-late-20261129T120000Z.jsonl")
        #expect(name(.late(stamp: stamp + 5)) == base + "-late-20261129T120000.005Z.jsonl")
        #expect(name(.late(stamp: stamp + 50)) == base + "-late-20261129T120000.050Z.jsonl")
        #expect(name(.late(stamp: stamp + 999)) == base + "-late-20261129T120000.999Z.jsonl")
        #expect(name(.lateIdle(offset: 9)) == base + "-late-idle-o9.jsonl")
        #expect(name(.partial(offset: 12_501)) == base + "-part-o12501.jsonl")
        #expect(name(.latePartial(offset: 0)) == base + "-late-part-o0.jsonl")
        // The file is written where the name says.
        var rows = [SeriesKey: RollupCounters]()
        var d = Dimensions(tagNames: [])
        rows[SeriesKey(workflow: d.names.intern("wf"), owner: d.names.intern("team"), model: SeriesKey.none, provider: SeriesKey.none,
                       tags: Dimensions.noTags)] = RollupCounters()
        let w = ClosedWindow(sizeIndex: 1, start: start, rows: RowTable(rows), kind: .late(stamp: stamp + 5))
        let path = try writer.write(w, writer: "host1-p3", dimensions: d)
        #expect(path == dir + "/" + base + "-late-20261129T120000.005Z.jsonl")
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test func aFailedStageLeavesNoTemporaryFilesAndNothingRenamed() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("in the way".utf8).write(to: URL(fileURLWithPath: dir + "/blocked"))
        var batch = DurableBatch()
        for i in 0..<40 { try batch.stage(Array("ok\n".utf8), to: "\(dir)/good/\(i).jsonl") }
        #expect(throws: FileError.self) { try batch.stage(Array("no\n".utf8), to: dir + "/blocked/x.jsonl") }
        #expect(try listing(dir).filter { $0.hasSuffix(".tmp") }.count == 40)
        // The caller gives up on the batch: the temporaries go with it and nothing appears.
        batch = DurableBatch()
        #expect(try listing(dir).filter { $0.hasSuffix(".tmp") || $0.hasSuffix(".jsonl") }.isEmpty)
    }

    @Test func replacingAnExistingFileKeepsItsNameWithTheNewContent() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DurableFile.write(Array("old\n".utf8), to: dir + "/a.jsonl")
        try DurableFile.write(Array("new\n".utf8), to: dir + "/a.jsonl")
        #expect(FileManager.default.contents(atPath: dir + "/a.jsonl") == Data("new\n".utf8))
        #expect(try listing(dir) == ["a.jsonl"])
    }
}

@Suite struct RollupRowOrderTests {
    /// Rows come out in the order of (workflow, owner, model, provider, tag pairs) compared as text, which
    /// for ASCII names is `[String]`'s lexicographic order; a missing model sorts first. The same whether
    /// the name table's order is up to date (rows sorted by ranks, the order brought up to date once in the
    /// middle and once at the end, as the pipeline does between batches) or not (names' bytes compared).
    @Test(arguments: [false, true]) func rowsAreOrderedByTheirNamesNotByTheirIds(ranked: Bool) {
        var d = Dimensions(tagNames: ["environment", "team"])
        var rng = SystemRandomNumberGenerator()
        let words = ["b", "a", "B", "ab", "a-b", "zz", "a0", "Z", "aa", "b-", "aaaaaaaaab", "aaaaaaaaa", "é", ""]
        var rows: [SeriesKey: RollupCounters] = [:]
        var expectedKeys: [[String]] = []
        for i in 0..<300 {
            if ranked && i == 150 { d.names.updateOrder() }
            let w = words.randomElement(using: &rng)!, o = words.randomElement(using: &rng)!
            let model = Bool.random(using: &rng) ? words.randomElement(using: &rng)! : nil
            let env = Bool.random(using: &rng) ? words.randomElement(using: &rng)! : nil
            let team = Bool.random(using: &rng) ? words.randomElement(using: &rng)! : nil
            let envId = env.map { d.names.intern($0) } ?? SeriesKey.none
            let teamId = team.map { d.names.intern($0) } ?? SeriesKey.none
            let tags = d.internTags([envId, teamId])
            let key = SeriesKey(workflow: d.names.intern(w), owner: d.names.intern(o),
                                model: model.map { d.names.intern($0) } ?? SeriesKey.none,
                                provider: model == nil ? SeriesKey.none : d.names.intern("p"), tags: tags)
            if rows[key] != nil { continue }
            var c = RollupCounters()
            c.requests = 1
            rows[key] = c
            var k = [w, o, model ?? "", model == nil ? "" : "p"]
            if let env { k += ["environment", env] }
            if let team { k += ["team", team] }
            expectedKeys.append(k)
        }
        if ranked { d.names.updateOrder() }
        #expect(d.names.isOrdered == ranked)
        let window = ClosedWindow(sizeIndex: 0, start: 0, rows: RowTable(rows), kind: .final)
        let text = String(decoding: RollupEncoder().encode(window, label: "1h", size: 3_600_000, dimensions: d), as: UTF8.self)
        let got: [[String]] = text.split(separator: "\n").map { line in
            let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            var k = [o["workflow"] as! String, o["owner"] as! String, (o["model"] as? String) ?? "", (o["provider"] as? String) ?? ""]
            let tags = o["tags"] as! [String: String]
            for name in ["environment", "team"] { if let v = tags[name] { k += [name, v] } }
            return k
        }
        #expect(got == expectedKeys.sorted { $0.lexicographicallyPrecedes($1) })
    }
}

@Suite struct RollupEncoderBoundTests {
    /// The encoder writes rows through a pointer into memory sized by `rowBound`: rows at the extremes
    /// (names that escape to six bytes a byte, one row longer than the scratch block, numbers at their
    /// longest, every tag and many outcomes) must come out whole and read back as what went in.
    @Test func rowsAtTheirLongestComeOutWholeAndReadBackExactly() throws {
        var d = Dimensions(tagNames: ["environment", "team", "region"])
        let control = String(repeating: "\u{01}\"\\\n", count: 75)           // 300 bytes, every one escaped
        let huge = String(repeating: "\u{02}", count: 12_000)                 // 72 KB escaped: past the scratch block
        var rows: [SeriesKey: RollupCounters] = [:]
        var expected: [String: (owner: String, requests: Int64, outcomes: [String: Int64])] = [:]
        for i in 0..<400 {
            let workflow = (i == 7 ? huge : control) + "-\(i)"
            let owner = "owner-é-\(i)"
            let tags = d.internTags([d.names.intern(control), d.names.intern("t\(i)"), d.names.intern("r")])
            let key = SeriesKey(workflow: d.names.intern(workflow), owner: d.names.intern(owner),
                                model: d.names.intern(control), provider: SeriesKey.none, tags: tags)
            var c = RollupCounters()
            c.requests = Int64.min + Int64(i)
            c.errors = Int64.max; c.input = Int64.max; c.cacheRead = Int64.min; c.cacheWrite = Int64.max
            c.output = Int64.max; c.reasoning = Int64.max; c.unpricedRequests = Int64.min
            c.cost = Money(femtos: Int128.min + 1)
            c.outcomeValue = Money(femtos: Int128.max)
            var outcomes: [String: Int64] = [:]
            for j in 0..<20 {
                let name = control + "o\(j)"
                c.outcomes.append(OutcomeCount(name: d.names.intern(name), count: Int64.min + Int64(j)))
                outcomes[name] = Int64.min + Int64(j)
            }
            rows[key] = c
            expected[workflow] = (owner, c.requests, outcomes)
        }
        let window = ClosedWindow(sizeIndex: 0, start: 0, rows: RowTable(rows), kind: .final)
        var out: [UInt8] = []
        RollupEncoder().encode(window, label: "1m", size: 60_000, dimensions: d, into: &out)
        #expect(out.count > 4 * 65_536)
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 401 && lines.last == "")

        // The row with the least room to spare: empty names, no model, no tags, integers at their longest:
        // nearly all of its bound is the literal text (a `rowLiteralBytes` too small stops here).
        var bare = RollupCounters()
        bare.requests = Int64.min; bare.errors = Int64.min; bare.input = Int64.min; bare.cacheRead = Int64.min
        bare.cacheWrite = Int64.min; bare.output = Int64.min; bare.reasoning = Int64.min; bare.unpricedRequests = Int64.min
        let bareKey = SeriesKey(workflow: d.names.intern(""), owner: d.names.intern(""), model: SeriesKey.none,
                                provider: SeriesKey.none, tags: Dimensions.noTags)
        let bareLine = String(decoding: RollupEncoder().encode(ClosedWindow(sizeIndex: 0, start: 0, rows: RowTable([bareKey: bare]), kind: .late(stamp: 0)),
                                                               label: "1m", size: 60_000, dimensions: d), as: UTF8.self)
        #expect(bareLine.hasSuffix(#""outcome_value_usd":0,"late":true}"# + "\n"))
        var seen = 0
        for line in lines.dropLast() {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let workflow = try #require(o["workflow"] as? String)
            let want = try #require(expected[workflow])
            #expect(o["owner"] as? String == want.owner)
            #expect(o["model"] as? String == control)
            #expect(o["provider"] is NSNull)
            #expect((o["tags"] as? [String: String])?["environment"] == control)
            #expect((o["requests"] as? NSNumber)?.int64Value == want.requests)
            #expect((o["outcomes"] as? [String: NSNumber])?.mapValues(\.int64Value) == want.outcomes)
            // Amounts past Double's precision: compare the text itself.
            #expect(line.contains(#","cost_usd":-170141183460469231731687.303715884"#))
            #expect(line.contains(#""outcome_value_usd":170141183460469231731687.303715884"#))
            seen += 1
        }
        #expect(seen == 400)
    }
}
