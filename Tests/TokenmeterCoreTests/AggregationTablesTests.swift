import Testing
@testable import TokenmeterCore

/// The hand-written tables of the per-event path (`DedupSet`, `RowTable`, `Dimensions.internTags`)
/// checked against the plain dictionaries they replaced, on random operations that force growth,
/// collisions in the probe runs and (for `DedupSet`) deletions.
@Suite struct AggregationTablesTests {
    /// The previous dictionary-based `DedupSet`, kept here as the reference model.
    struct ReferenceDedup {
        let window: Int64
        var seen: [UInt64: EpochMillis] = [:]
        var order: [(UInt64, EpochMillis)] = []
        var head = 0
        mutating func insert(_ hash: UInt64, time: EpochMillis, streamTime: EpochMillis) -> Bool {
            let limit = max(time, streamTime) &- window
            while head < order.count, order[head].1 < limit {
                let (h, t) = order[head]
                if seen[h] == t { seen[h] = nil }
                head += 1
            }
            if let t = seen[hash], t >= time &- window, t <= time &+ window { return false }
            seen[hash] = time
            order.append((hash, time))
            return true
        }
        var entries: [(UInt64, EpochMillis)] { Array(order[head...]).filter { seen[$0.0] == $0.1 } }
    }

    @Test func dedupSetAgreesWithTheDictionaryModel() {
        var rng = SplitMix(seed: 7)
        // Few distinct hashes with colliding low bits (multiples of 1024) so probe runs are long and
        // deletions must shift entries back; times move forward with jitter so ids expire.
        var d = DedupSet(window: 1_000)
        var ref = ReferenceDedup(window: 1_000)
        var streamTime: EpochMillis = .min
        var time: EpochMillis = 1_000_000
        for step in 0..<200_000 {
            time += Int64(rng.next() % 7) - 2
            let hash = (rng.next() % 3_000) &* (step % 3 == 0 ? 1024 : 1) &+ (step % 5 == 0 ? 0 : 1)
            let a = d.insert(hash, time: time, streamTime: streamTime)
            let b = ref.insert(hash, time: time, streamTime: streamTime)
            #expect(a == b, "step \(step)")
            if a != b { return }
            streamTime = max(streamTime, time)
        }
        #expect(d.count == ref.seen.count)
        #expect(d.entries.map(\.0) == ref.entries.map(\.0) && d.entries.map(\.1) == ref.entries.map(\.1))

        var restored = DedupSet(window: 1_000)
        restored.restore(d.entries, from: 0)
        #expect(restored.count == d.count)
        for (h, t) in d.entries {
            let again = restored.insert(h, time: t, streamTime: streamTime)
            #expect(!again)
        }
    }

    @Test func rowTableAgreesWithADictionary() {
        var rng = SplitMix(seed: 11)
        for keyRange in [3, 9, 40, 5_000] {   // scanned only, just past the scan limit, indexed, big
            var t = RowTable()
            var ref: [SeriesKey: RollupCounters] = [:]
            for _ in 0..<20_000 {
                let k = SeriesKey(workflow: UInt32(rng.next() % UInt64(keyRange)), owner: UInt32(rng.next() % 2), model: 1,
                                  provider: SeriesKey.none, tags: 0)
                let n = Int64(rng.next() % 100)
                t.update(t.findOrInsert(k, hash: k.rowHash)) { $0.addUsage(TokenCounts(input: n), cost: nil, isError: false) }
                ref[k, default: RollupCounters()].addUsage(TokenCounts(input: n), cost: nil, isError: false)
            }
            #expect(t.count == ref.count)
            for (k, v) in ref { #expect(t[k] == v) }
            #expect(Dictionary(uniqueKeysWithValues: t.map { ($0.key, $0.value) }) == ref)
            #expect(RowTable(ref).count == ref.count)
            let missing = SeriesKey(workflow: 999_999, owner: 0, model: 1, provider: SeriesKey.none, tags: 0)
            #expect(t[missing] == nil)
        }
    }

    /// Rows stay in insertion order across chunks (a chunk holds `RowTable.chunkSize` rows), reserved
    /// room or not, and a save lists the rows changed since, each once, in the order of their first change.
    @Test func rowTableKeepsOrderAndSavesAcrossChunks() {
        var rng = SplitMix(seed: 5)
        for reserved in [0, 1_000] {
            var t = RowTable(minimumCapacity: reserved)
            var order: [SeriesKey] = []
            var ref: [SeriesKey: RollupCounters] = [:]
            func add(_ k: SeriesKey, _ n: Int64) {
                if ref[k] == nil { order.append(k) }
                t.update(t.findOrInsert(k, hash: k.rowHash)) { $0.addUsage(TokenCounts(input: n), cost: nil, isError: false) }
                ref[k, default: RollupCounters()].addUsage(TokenCounts(input: n), cost: nil, isError: false)
            }
            for _ in 0..<3_000 {
                add(SeriesKey(workflow: UInt32(rng.next() % 1_500), owner: 1, model: 1, provider: SeriesKey.none, tags: 0), 1)
            }
            #expect(t.count > 3 * RowTable.chunkSize)
            #expect(t.keys == order)
            #expect(t.values == order.map { ref[$0]! })
            t.markSaved()
            var changed: [SeriesKey] = []
            for _ in 0..<400 {
                let k = SeriesKey(workflow: UInt32(rng.next() % 2_000), owner: 1, model: 1, provider: SeriesKey.none, tags: 0)
                if !changed.contains(k) { changed.append(k) }
                add(k, 2)
            }
            var listed: [SeriesKey] = []
            t.forEachUnsaved { k, c in
                listed.append(k)
                #expect(c == ref[k])
            }
            #expect(listed == changed && t.unsavedCount == changed.count)
            #expect(t.keys == order)
            t.markSaved()
            #expect(!t.hasUnsaved)
        }
    }

    /// `PartitionWindows.prefetch` (called before pricing, with the hash `add` then gets) changes nothing:
    /// the same events, in and out of order, late, into windows of a few rows (no index) and of thousands,
    /// with prefetches for the right hash, another key's hash and times in no open window, leave the same
    /// open rows and close the same windows as plain `add(key:time:)`.
    @Test func prefetchingBeforeAddChangesNothing() {
        let sizes: [Int64] = [60_000, 3_600_000]
        var plain = PartitionWindows(sizes: sizes, grace: 5_000, lateHorizon: 86_400_000)
        var fetched = plain
        var rng = SplitMix(seed: 11)
        var closedPlain: [ClosedWindow] = [], closedFetched: [ClosedWindow] = []
        var time: EpochMillis = 1_800_000_000_000
        for n in 0..<20_000 {
            time += Int64(rng.next() % 40)
            let at = rng.next() % 50 == 0 ? time - Int64(rng.next() % 600_000) : time
            let range: UInt64 = n < 2_000 ? 3 : 5_000
            let key = SeriesKey(workflow: UInt32(rng.next() % range), owner: 1, model: UInt32(rng.next() % 3),
                                provider: SeriesKey.none, tags: 0)
            let other = SeriesKey(workflow: UInt32(rng.next() % range), owner: 2, model: 0, provider: SeriesKey.none, tags: 0)
            let tokens = TokenCounts(input: Int64(n % 97))
            let a = plain.add(key: key, time: at) { $0.addUsage(tokens, cost: nil, isError: false) }
            fetched.prefetch(hash: other.rowHash, time: at)
            fetched.prefetch(hash: key.rowHash, time: at + 7_200_000)
            fetched.prefetch(hash: key.rowHash, time: at)
            let b = fetched.add(key: key, hash: key.rowHash, time: at) { $0.addUsage(tokens, cost: nil, isError: false) }
            #expect(a == b)
            if n % 500 == 0 {
                closedPlain += plain.closeDue()
                closedFetched += fetched.closeDue()
            }
        }
        func rows(_ t: RowTable) -> [String] { (0..<t.count).map { "\(t.row($0).key) \(t.row($0).counters)" } }
        #expect(closedPlain.count == closedFetched.count && closedPlain.count > 10)
        for (x, y) in zip(closedPlain, closedFetched) {
            #expect(x.start == y.start && x.sizeIndex == y.sizeIndex && x.kind == y.kind && rows(x.rows) == rows(y.rows))
        }
        #expect(plain.open.map { $0.map { rows($0.rows) } } == fetched.open.map { $0.map { rows($0.rows) } })
        #expect(plain.openRowCount == fetched.openRowCount && plain.openRowCount > 1_000)
    }

    @Test func tagTuplesInternToStableIds() {
        var d = Dimensions(tagNames: ["environment", "customer"])
        var ids: [[UInt32]: UInt32] = [[SeriesKey.none, SeriesKey.none]: Dimensions.noTags]
        var rng = SplitMix(seed: 3)
        for _ in 0..<5_000 {
            let tuple = [UInt32(rng.next() % 40), rng.next() % 4 == 0 ? SeriesKey.none : UInt32(rng.next() % 30)]
            let id = d.internTags(tuple)
            if let want = ids[tuple] { #expect(id == want) } else { ids[tuple] = id }
            #expect(d.tagTuples[Int(id)] == tuple)
        }
        #expect(d.tagTuples.count == ids.count)
    }
}

/// A tiny deterministic generator for the tests above.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
