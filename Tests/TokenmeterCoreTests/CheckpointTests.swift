import Testing
@testable import TokenmeterCore

@Suite struct CheckpointTests {
    /// Records encoded in kept buffers (as the daemon's pipeline encodes every checkpoint) are the bytes a
    /// fresh encoding gives; a record still held while the next is encoded keeps its bytes, and once let go
    /// its memory is what the next record is written in.
    @Test func recordsEncodedInKeptBuffersAreFreshRecordsAndReuseTheirMemory() {
        var d = Dimensions(tagNames: [])
        let make = { PartitionWindows(sizes: [60_000], grace: 0, lateHorizon: 86_400_000) }
        var a = PartitionState(topic: "u", partition: 0, nextOffset: 0, windows: make(), dedup: DedupSet(window: 60_000), lastMessageWall: 0)
        func add(_ n: Int) {
            for i in 0..<n {
                let key = SeriesKey(workflow: d.names.intern("wf-\(i)"), owner: d.names.intern("team"), model: d.names.intern("m"),
                                    provider: SeriesKey.none, tags: Dimensions.noTags)
                _ = a.windows.add(key: key, time: 1_800_000_000_000 + Int64(i)) { $0.addUsage(TokenCounts(input: 3, output: 1), cost: nil, isError: false) }
                a.nextOffset += 1
            }
        }
        func encode(_ buffers: inout Checkpoint.Buffers, _ sequence: UInt64) -> [UInt8] {
            Checkpoint.encode([(a, .whole)], dimensions: d, alertState: [1, 2, 3], sequence: sequence, base: 0,
                              includeDedup: true, buffers: &buffers)
        }
        var buffers = Checkpoint.Buffers()
        add(50)
        let first = encode(&buffers, 1)
        let firstBytes = first.map { $0 }
        #expect(first == Checkpoint.encode([a], dimensions: d, alertState: [1, 2, 3], sequence: 1))
        add(200)
        let second = encode(&buffers, 2)
        #expect(first == firstBytes, "a record held by its writer is not overwritten by the next")
        #expect(second == Checkpoint.encode([a], dimensions: d, alertState: [1, 2, 3], sequence: 2))
        #expect(buffers.retainedBytes >= second.count)
        func storage(_ b: [UInt8]) -> UnsafeRawPointer? { b.withUnsafeBytes { $0.baseAddress } }
        do {
            let third = encode(&buffers, 3)
            #expect(storage(third) == storage(buffers.output), "the record is the kept buffer, not a copy")
        }
        let kept = storage(buffers.output)
        let fourth = encode(&buffers, 4)
        #expect(kept != nil && storage(fourth) == kept, "the record let go is the next one's memory")
        #expect(fourth == Checkpoint.encode([a], dimensions: d, alertState: [1, 2, 3], sequence: 4))
    }

    /// A base, then deltas written as the daemon writes them (rows changed since the last save), applied in
    /// order, give what a base of the final state gives: rows updated and added, a window opened, windows
    /// closed, a late bucket flushed and opened again, a partition listed unchanged, a partition gone.
    @Test func aBaseWithItsDeltasRestoresWhatABaseOfTheFinalStateRestores() throws {
        var d = Dimensions(tagNames: ["environment"])
        let prod = d.names.intern("prod")
        let tags = d.internTags { $0[0] = prod }
        func key(_ wf: String) -> SeriesKey {
            SeriesKey(workflow: d.names.intern(wf), owner: d.names.intern("team"), model: d.names.intern("m"),
                      provider: d.names.intern("p"), tags: tags)
        }
        let make = { PartitionWindows(sizes: [60_000, 3_600_000], grace: 0, lateHorizon: 86_400_000) }
        let t0: EpochMillis = 1_800_000_000_000 - 1_800_000_000_000 % 3_600_000
        func part(_ p: Int32) -> PartitionState {
            PartitionState(topic: "u", partition: p, nextOffset: 0, windows: make(), dedup: DedupSet(window: 60_000), lastMessageWall: 0)
        }
        func add(_ s: inout PartitionState, _ wf: String, at t: EpochMillis, tokens: Int64) {
            _ = s.windows.add(key: key(wf), time: t) { $0.addUsage(TokenCounts(input: tokens, output: 1), cost: Money(femtos: Int128(tokens)), isError: false) }
            s.nextOffset += 1
        }
        var a = part(0), b = part(1), c = part(2)
        for i in 0..<20 { add(&a, "wf-\(i)", at: t0 + Int64(i) * 1_000, tokens: Int64(i + 1)) }
        add(&b, "wf-b", at: t0, tokens: 7)
        add(&c, "wf-c", at: t0, tokens: 9)
        var records = [Checkpoint.encode([a, b, c], dimensions: d, sequence: 1)]
        func save(_ states: [(PartitionState, Checkpoint.Entry)], _ sequence: UInt64) {
            records.append(Checkpoint.encode(states, dimensions: d, alertState: [], sequence: sequence, base: 1, includeDedup: false))
        }
        a.windows.markSaved(); b.windows.markSaved(); c.windows.markSaved()

        // Two rows updated, one added, in the open minute.
        add(&a, "wf-3", at: t0 + 30_000, tokens: 100)
        add(&a, "wf-4", at: t0 + 31_000, tokens: 100)
        add(&a, "wf-new", at: t0 + 32_000, tokens: 5)
        save([(a, .changes), (b, .unchanged), (c, .changes)], 2)
        a.windows.markSaved()
        // The minute closes (a new one opens); an event late for the closed minute; c is gone.
        add(&a, "wf-1", at: t0 + 61_000, tokens: 2)
        _ = a.windows.closeDue()
        add(&a, "wf-late", at: t0 + 5_000, tokens: 3)
        save([(a, .changes), (b, .unchanged)], 3)
        a.windows.markSaved()
        // The late bucket is flushed, then opened again with another row; b changes.
        add(&a, "wf-2", at: t0 + 122_000, tokens: 4)
        let flushed = a.windows.closeDue()
        #expect(flushed.contains { $0.isLate }, "the late bucket was flushed")
        add(&a, "wf-late-2", at: t0 + 6_000, tokens: 6)
        add(&b, "wf-b", at: t0 + 1_000, tokens: 1)
        save([(a, .changes), (b, .changes)], 4)
        #expect(records[1].count < records[0].count / 2, "a delta holds the changed rows, not all of them")

        func restored(_ bytes: [[UInt8]]) throws -> [String] {
            var fresh = Dimensions(tagNames: ["environment"])
            var chain = try Checkpoint.Chain(base: try Checkpoint.parse(bytes[0], dimensions: &fresh))
            for r in bytes.dropFirst() { try chain.apply(try Checkpoint.parse(r, dimensions: &fresh)) }
            let r = Checkpoint.fit(chain, dimensions: &fresh, makeWindows: make, dedupWindow: 60_000)
            #expect(r.sequence == UInt64(bytes.count == 1 ? 9 : bytes.count))
            // Every partition, window and row as text, sorted: the state whatever the order it was built in.
            var lines: [String] = []
            for p in r.partitions {
                lines.append("\(p.topic)/\(p.partition) next=\(p.nextOffset) stream=\(p.windows.streamTime) wm=\(p.windows.watermark)")
                for (i, ws) in p.windows.open.enumerated() {
                    for w in ws { for (k, c) in w.rows { lines.append("\(p.partition) open \(i) \(w.start) \(fresh.names[k.workflow]) \(fresh.tags(k.tags)) \(c.input) \(c.cost.femtos) \(c.requests)") } }
                }
                for (lk, rows) in p.windows.late {
                    for (k, c) in rows { lines.append("\(p.partition) late \(lk.sizeIndex) \(lk.start) \(fresh.names[k.workflow]) \(c.input) \(c.requests)") }
                }
            }
            return lines.sorted()
        }
        let final = Checkpoint.encode([a, b], dimensions: d, sequence: 9)
        let expected = try restored([final])
        #expect(expected.contains { $0.contains("late") && $0.contains("wf-late-2") })
        #expect(!expected.contains { $0.contains(" late ") && $0.contains("wf-late ") }, "the flushed late bucket is not restored")
        #expect(try restored(records) == expected)
        // Without the last delta: the state of the record before (b's second event not in it).
        #expect(try restored(Array(records.prefix(3))) != expected)
        // A delta out of order is refused, and a gap is not followed.
        var fresh = Dimensions(tagNames: ["environment"])
        var chain = try Checkpoint.Chain(base: try Checkpoint.parse(records[0], dimensions: &fresh))
        let third = try Checkpoint.parse(records[2], dimensions: &fresh)
        #expect(!chain.follows(third))
        #expect(throws: CheckpointFormatError.self) { try chain.apply(third) }
    }

    @Test func roundTripKeepsEveryCounterAndName() throws {
        var d = Dimensions(tagNames: ["environment", "customer"])
        let wf = d.names.intern("invoice-extraction"), owner = d.names.intern("finance-ops")
        let model = d.names.intern("gpt-4o"), provider = d.names.intern("openai"), prod = d.names.intern("prod")
        let outcome = d.names.intern("invoice_processed")
        let tags = d.internTags { $0[0] = prod }
        let key = SeriesKey(workflow: wf, owner: owner, model: model, provider: provider, tags: tags)
        let outcomeKey = SeriesKey(workflow: wf, owner: owner, model: SeriesKey.none, provider: SeriesKey.none, tags: 0)
        var windows = PartitionWindows(sizes: [60_000, 3_600_000], grace: 30_000, lateHorizon: 86_400_000)
        let t = RFC3339.parse("2026-11-29T10:00:05Z")!
        _ = windows.add(key: key, time: t) {
            $0.addUsage(TokenCounts(input: 1200, cacheRead: 400, cacheWrite: 10, output: 250, reasoning: 50),
                        cost: Money(femtos: 123_456_789_012_345_678_901), isError: true)
        }
        _ = windows.add(key: outcomeKey, time: t) { $0.addOutcome(name: outcome, count: 3, value: Money.parse("2.5")) }
        var dedup = DedupSet(window: 3_600_000)
        _ = dedup.insert(0xDEAD_BEEF, time: t, streamTime: t)
        let state = PartitionState(topic: "llm-usage", partition: 3, nextOffset: 1234, windows: windows, dedup: dedup, lastMessageWall: 0)
        let bytes = Checkpoint.encode([state], dimensions: d)

        var fresh = Dimensions(tagNames: ["environment", "customer"])
        _ = fresh.names.intern("something-else-first") // ids differ between processes
        let r = try Checkpoint.decode(bytes, dimensions: &fresh, makeWindows: {
            PartitionWindows(sizes: [60_000, 3_600_000], grace: 30_000, lateHorizon: 86_400_000)
        }, dedupWindow: 3_600_000)
        #expect(r.partitions.count == 1)
        let p = r.partitions[0]
        #expect(p.topic == "llm-usage" && p.partition == 3 && p.nextOffset == 1234)
        #expect(p.windows.streamTime == t)
        let rows = p.windows.open[1][0].rows
        let restoredKey = rows.keys.first { fresh.name($0.model) == "gpt-4o" }!
        #expect(fresh.names[restoredKey.workflow] == "invoice-extraction")
        #expect(fresh.tags(restoredKey.tags).map { "\($0.0)=\($0.1)" } == ["environment=prod"])
        let c = rows[restoredKey]!
        #expect(c.input == 1200 && c.cacheRead == 400 && c.cacheWrite == 10 && c.output == 250 && c.reasoning == 50)
        #expect(c.errors == 1 && c.requests == 1)
        #expect(c.cost == Money(femtos: 123_456_789_012_345_678_901))
        let oc = rows.first { $0.key.model == SeriesKey.none }!.value
        #expect(oc.outcomes.map { fresh.names[$0.name] } == ["invoice_processed"])
        #expect(oc.outcomeValue == Money.parse("2.5"))
        #expect(p.dedup.count == 1)
        // The restored dedup memory still recognises the id.
        var dd = p.dedup
        let again = dd.insert(0xDEAD_BEEF, time: t, streamTime: t)
        #expect(!again)
    }

    @Test func damagedCheckpointIsRefused() {
        let d = Dimensions(tagNames: [])
        let w = PartitionWindows(sizes: [60_000], grace: 0, lateHorizon: 1)
        var bytes = Checkpoint.encode([PartitionState(topic: "t", partition: 0, nextOffset: 5, windows: w,
                                                      dedup: DedupSet(window: 1), lastMessageWall: 0)], dimensions: d)
        bytes[bytes.count - 3] ^= 0xFF
        var fresh = Dimensions(tagNames: [])
        #expect(throws: CheckpointFormatError.self) {
            _ = try Checkpoint.decode(bytes, dimensions: &fresh, makeWindows: { PartitionWindows(sizes: [60_000], grace: 0, lateHorizon: 1) },
                                      dedupWindow: 1)
        }
    }
}

@Suite struct MoneyAndTimeTests {
    @Test func decimalParsingIsExact() {
        #expect(Money.parse("0.1")!.femtos == 100_000_000_000_000)
        #expect(Money.parse("2.5e-7")!.femtos == 250_000_000)
        #expect(Money.parse("-1.25")!.femtos == -1_250_000_000_000_000)
        #expect(PricePerMillion.parse("2.50")!.nanos == 2_500_000_000)
        #expect(PricePerMillion.parse("0.075")!.nanos == 75_000_000)
        #expect(Money.parse("1.2.3") == nil)
        #expect(Money.parse("") == nil)
    }

    @Test func printingRoundsHalfToEvenAtNineDecimals() {
        #expect(Money(femtos: 5_750_000_000_000_000).decimalString() == "5.75")
        #expect(Money(femtos: 4_800_000_000).decimalString() == "0.0000048")
        #expect(Money(femtos: 500_000).decimalString() == "0")          // 0.0000000005 -> 0 (half to even)
        #expect(Money(femtos: 1_500_000).decimalString() == "0.000000002")
        #expect(Money.zero.decimalString() == "0")
        #expect(Money.parse("4012.345")!.dollarsString() == "4012.34")
    }

    /// Amounts that fit 64 bits are printed with 64-bit arithmetic: the text must be the one a plain
    /// 128-bit rounding (half to even at nine decimals) gives, below, at and above the 64-bit limit.
    @Test func printingAgreesWithPlain128BitRoundingAcrossTheSixtyFourBitLimit() {
        func reference(_ femtos: Int128) -> String {
            let m = femtos.magnitude
            var q = m / 1_000_000
            let r = m % 1_000_000
            if r > 500_000 || (r == 500_000 && q % 2 == 1) { q += 1 }
            let whole = q / 1_000_000_000, frac = q % 1_000_000_000
            var f = String(frac)
            f = String(repeating: "0", count: 9 - f.count) + f
            while f.hasSuffix("0") { f.removeLast() }
            let sign = femtos < 0 && q != 0 ? "-" : ""
            return sign + String(whole) + (f.isEmpty ? "" : "." + f)
        }
        var rng = SplitMix(seed: 17)
        let limit = Int128(UInt64.max)
        var values: [Int128] = [0, 1, 499_999, 500_000, 1_500_000, 2_500_000, limit - 1, limit, limit + 1,
                                limit + 500_000, Int128(Int64.max), 10 * limit]
        for base in [Int128(1_000_000), limit - 10_000_000, limit, 1_000 * limit] {
            for _ in 0..<2_000 {
                let v = base + Int128(rng.next() % 20_000_000)
                values.append(v)
                values.append(-v)
                values.append(v / 1_000_000 * 1_000_000 + 500_000)   // a tie
            }
        }
        for v in values {
            #expect(Money(femtos: v).decimalString() == reference(v), "\(v)")
        }
    }

    @Test func rfc3339ParsesOffsetsFractionsAndDates() {
        #expect(RFC3339.parse("2026-11-29T10:00:00Z") == 1_795_946_400_000)
        #expect(RFC3339.parse("2026-11-29T12:00:00.250+02:00") == 1_795_946_400_250)
        #expect(RFC3339.parse("2026-11-29", allowDateOnly: true) == 1_795_910_400_000)
        #expect(RFC3339.parse("2026-11-29") == nil)
        #expect(RFC3339.parse("2026-02-30T00:00:00Z") == nil)
        #expect(RFC3339.parse("2026-11-29T10:00:00") == nil)
        #expect(RFC3339.format(1_795_946_400_000) == "2026-11-29T10:00:00Z")
        #expect(RFC3339.compact(1_795_946_400_000) == "20261129T100000Z")
        #expect(RFC3339.format(-1) == "1969-12-31T23:59:59Z")
    }

    @Test func durations() {
        #expect(DurationSpec.parse("30s")?.millis == 30_000)
        #expect(DurationSpec.parse("1h30m")?.millis == 5_400_000)
        #expect(DurationSpec.parse("7d")?.millis == 604_800_000)
        #expect(DurationSpec.parse("500ms")?.millis == 500)
        #expect(DurationSpec.parse("5") == nil)
        #expect(DurationSpec.parse("5x") == nil)
    }
}
