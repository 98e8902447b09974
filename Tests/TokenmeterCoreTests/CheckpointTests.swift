import Testing
@testable import TokenmeterCore

@Suite struct CheckpointTests {
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
