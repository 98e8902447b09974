import Foundation
import Testing
import TokenmeterCore
import TokenmeterKafka
@testable import TokenmeterDaemon

/// What a checkpoint writes is what changed since the previous one, not what the state holds: the
/// de-duplication ids (the bulk of the state) are written once each, locally in segments and in changelog
/// mode as id chunks, open rows as deltas of the rows changed on a base written now and then; a restore
/// puts them all back.
@Suite("State persistence")
struct StatePersistenceTests {
    /// Bytes one checkpoint writes: the local segments and checkpoint file, or the changelog records.
    private func bytesOfOneCheckpoint(_ h: DaemonHarness, changelog: Bool, _ work: () throws -> Void) throws -> Int64 {
        let d = h.daemon!
        func written() -> Int64 {
            changelog ? (d.changelog?.store.bytesWritten ?? 0) : d.local.bytesWritten
        }
        #expect(d.checkpoint(reason: "test"))
        let before = written()
        try work()
        #expect(d.checkpoint(reason: "test"))
        return written() - before
    }

    @Test(arguments: [false, true])
    func aCheckpointAfterNNewEventsWritesAboutNIdsWhateverTheStateHolds(changelog: Bool) throws {
        // 200,000 ids inside a one-hour window (10 ms apart: 2,000 s of event time), one partition.
        let h = DaemonHarness(partitions: [0], extraConfig: "[dedup]\nwindow = \"1h\"", changelog: changelog)
        let held = 200_000
        let first = h.firstEventMs
        h.produceEvents(held, spacingMs: 10, firstMs: first)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll(limit: 100_000)
        let d = h.daemon!
        #expect(d.pipeline.assigned.first?.state.dedup.count == held)

        let n = 1_000
        let bytes = try bytesOfOneCheckpoint(h, changelog: changelog) {
            h.produceEvents(n, startIndex: held, spacingMs: 10, firstMs: first)
            try h.consumeAll()
        }
        // A full snapshot of the ids alone would be 16 bytes x 201,000 = 3.2 MB. What was written is the
        // 1,000 new ids (16 bytes each), the offsets and the few open rows, and framing.
        #expect(bytes > Int64(n) * 16, "the new ids were written")
        #expect(bytes < Int64(n) * 16 + 8_192, "wrote \(bytes) bytes for \(n) events with \(held + n) ids held")

        // The restart restores every id: a repeat of the first event is still a duplicate.
        try h.daemon.finish()
        h.daemon.operationsFinish()
        h.produceEvents(1, startIndex: 0, spacingMs: 10, firstMs: first)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll(limit: 100_000)
        #expect(h.daemon.pipeline.assigned.first?.state.dedup.count == held + n)
        #expect(h.daemon.pipeline.metrics.duplicates == 1)
    }

    @Test(arguments: [false, true])
    func aCheckpointAfterNChangedRowsWritesAboutNRowsWhateverIsOpen(changelog: Bool) throws {
        // 5,000 keys open in one partition's 1m and 1h windows (10,000 rows).
        let h = DaemonHarness(partitions: [0], changelog: changelog)
        let keys = 5_000
        let first = h.firstEventMs
        var produced = (requests: 0, input: Int64(0), output: Int64(0))
        func add(_ e: (requests: Int, input: Int64, output: Int64)) {
            produced.requests += e.requests; produced.input += e.input; produced.output += e.output
        }
        for k in 0..<keys { add(h.produceEvents(1, startIndex: k, workflow: "workflow-\(k)", spacingMs: 1, firstMs: first)) }
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll(limit: 100_000)
        let d = h.daemon!
        #expect(d.pipeline.openRowCount == 2 * keys)

        // The first checkpoint holds every row (a base); the next one, after 100 events on 100 of the keys
        // (in the same windows), the 200 rows they changed.
        let n = 100
        var base: Int64 = 0
        let bytes = try bytesOfOneCheckpoint(h, changelog: changelog) {
            base = changelog ? (d.changelog?.store.bytesWritten ?? 0) : d.local.bytesWritten
            for k in 0..<n { add(h.produceEvents(1, startIndex: keys + k, workflow: "workflow-\(k)", spacingMs: 1, firstMs: first)) }
            try h.consumeAll()
        }
        #expect(base > Int64(2 * keys) * 15, "the base holds every open row (\(base) bytes)")
        // Per event: its id (16 bytes), two rows of about 30 bytes with their names; plus framing.
        #expect(bytes < Int64(n) * (16 + 2 * 40) + 8_192, "wrote \(bytes) bytes for \(n) events with \(2 * keys) rows open")
        #expect(d.pipeline.openRowCount == 2 * keys)

        // A crash now, and a restart: the base and the delta give back every row, counted once.
        h.crash()
        try h.startDaemon()
        h.assignAll()
        try h.drainAndStop()
        #expect(h.daemon.pipeline.metrics.duplicates == 0)
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
        #expect(h.totals(window: "1m") == DaemonHarness.expected(produced))
    }

    /// kill -9 between a new base and the deletion of the deltas it replaces (the middle of a compaction),
    /// then a restart (local) or a takeover on another host (changelog): the same files as a run without a
    /// crash, exact totals.
    @Test(arguments: [false, true])
    func aCrashInTheMiddleOfACompactionLosesAndDoublesNothing(changelog: Bool) throws {
        let (reference, produced) = try DaemonHarness.uninterruptedRun(events: 400, changelog: changelog)
        #expect(DaemonHarness.totals(of: reference, window: "1h") == DaemonHarness.expected(produced))

        let broker = InMemoryBroker()
        broker.maxPerPoll = 5
        let h = DaemonHarness(changelog: changelog, broker: broker)
        h.produceEvents(400)
        let d = try h.startDaemon()
        // A new base as soon as the deltas weigh what the base does: a few checkpoints apart.
        if changelog { d.changelog?.compactAfter = 0 } else { d.local.compactAfter = 0 }
        let crash = CrashInCompaction(.replacingDeltas, nth: 2)
        d.faults = crash
        h.assignAll()
        #expect(throws: DaemonFailure.injectedCrash(after: .checkpointWritten)) { try h.consumeAll() }
        if !changelog {
            let log = try #require(try DurableFile.read(d.local.logPath))
            #expect(Checkpoint.recordLength(log[...]) != nil, "deltas before the new base were left behind")
        } else {
            let records = (0..<2).flatMap { broker.records("changelog", Int32($0)) }
            let deltas = records.filter { $0.key.map { String(decoding: $0, as: UTF8.self).contains("/rows/") } ?? false }
            #expect(deltas.contains { !$0.value.isEmpty } && !deltas.contains { $0.value.isEmpty },
                    "deltas were written and the crash came before their deletion")
        }
        h.crash()

        let next = changelog ? DaemonHarness(changelog: true, broker: broker, clock: h.clock) : h
        try next.startDaemon()
        next.assignAll()
        try next.drainAndStop()
        var files = h.rollupFiles()
        if changelog {
            files.merge(next.rollupFiles()) { a, b in
                #expect(a == b, "a window closed on both hosts has the same bytes")
                return a
            }
        }
        #expect(DaemonHarness.totals(of: files, window: "1h") == DaemonHarness.expected(produced))
        #expect(DaemonHarness.totals(of: files, window: "1m") == DaemonHarness.expected(produced))
        let differing = Set(files.keys).union(reference.keys).filter { files[$0] != reference[$0] }.sorted()
        #expect(differing.isEmpty, "files differ after a crash in a compaction: \(differing)")
    }

    /// Of the chains a restore finds for a partition, the one whose last record reaches the highest source
    /// offset; its deltas in order up to the first gap; every other delta found is stale.
    @Test func aRestoreTakesTheChainReachingTheHighestOffset() throws {
        let d = Dimensions(tagNames: [])
        func state(_ sequence: UInt64, base: UInt64) -> [UInt8] {
            let windows = PartitionWindows(sizes: [60_000], grace: 0, lateHorizon: 1)
            let p = PartitionState(topic: "u", partition: 0, nextOffset: 0, windows: windows, dedup: DedupSet(window: 1), lastMessageWall: 0)
            return Checkpoint.encode([(p, base == 0 ? .whole : .changes)], dimensions: d, alertState: [], sequence: sequence, base: base, includeDedup: false)
        }
        func record(_ chain: UInt64, _ sequence: UInt64, base: UInt64, offset: Int64) -> ChangelogRecord {
            var r = ChangelogRecord(nextOffset: offset, state: state(sequence, base: base))
            r.chain = chain
            return r
        }
        // Chain 7: base 10 at offset 100, deltas 11 and 12 (up to 300). Chain 9 (a base
        // written later, at offset 250, by an instance cut off from the group): delta 15 up to 260.
        let bases = [record(7, 10, base: 0, offset: 100), record(9, 14, base: 0, offset: 250)]
        var deltas: [UInt64: ChangelogRecord] = [:]
        deltas[11] = record(7, 11, base: 10, offset: 200)
        deltas[12] = record(7, 12, base: 10, offset: 300)
        deltas[13] = record(8, 13, base: 10, offset: 900)   // another chain's number: not followed
        deltas[15] = record(9, 15, base: 14, offset: 260)
        let chosen = try #require(ChangelogStore.chain(bases: bases, deltas: deltas))
        #expect(chosen.chain == 7 && chosen.head.nextOffset == 300)
        #expect(chosen.deltas.map(\.nextOffset) == [200, 300])
        #expect(chosen.staleDeltas == [13, 15])
        // Without delta 12 the later base reaches further.
        deltas[12] = nil
        let other = try #require(ChangelogStore.chain(bases: bases, deltas: deltas))
        #expect(other.chain == 9 && other.head.nextOffset == 260 && other.staleDeltas == [11, 13])
        // Key parsing: deltas and chunks are told apart from the partition's own key.
        #expect(ChangelogStore.owner("g/u/0/rows/12", infix: ChangelogRecord.deltaInfix)! == ("g/u/0", 12))
        #expect(ChangelogStore.owner("g/u/0/ids/12", infix: ChangelogRecord.deltaInfix) == nil)
        #expect(ChangelogStore.owner("g/u/0", infix: ChangelogRecord.deltaInfix) == nil)
    }

    /// A crash while expired id segments are being deleted (after the first of several), then a restart:
    /// the same files as a run without a crash, exact totals, and repeats of recent events still dropped.
    @Test func aCrashInTheMiddleOfDeletingExpiredIdsLosesAndDoublesNothing() throws {
        let config = "[dedup]\nwindow = \"2m\""
        let (reference, produced) = try DaemonHarness.uninterruptedRun(events: 400, extraConfig: config)
        #expect(DaemonHarness.totals(of: reference, window: "1h") == DaemonHarness.expected(produced))

        let h = DaemonHarness(extraConfig: config)
        let first = h.firstEventMs
        h.produceEvents(400, firstMs: first)
        let d = try h.startDaemon()
        // A segment per checkpoint, so that several are expired at once.
        d.local.ids.rollAppends = 1
        let crash = CrashInCompaction(.removingExpiredIds, nth: 2)
        d.faults = crash
        h.assignAll()
        var crashed: DaemonFailure?
        do { try h.consumeAll() } catch let f as DaemonFailure { crashed = f }
        #expect(crashed == .injectedCrash(after: .expiredIdsRemoved), "crashed while deleting expired ids")
        #expect(crash.calls == 2)
        h.crash()

        // Repeats of the last minute's events (inside the 2-minute window) arrive after the restart.
        h.produceEvents(40, startIndex: 360, firstMs: first)
        try h.startDaemon().local.ids.rollAppends = 1
        h.assignAll()
        try h.drainAndStop()
        #expect(h.daemon.pipeline.metrics.duplicates >= 80, "the repeats were recognised after the restart")
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
        #expect(h.totals(window: "1m") == DaemonHarness.expected(produced))
        let files = h.rollupFiles()
        let differing = Set(files.keys).union(reference.keys).filter { files[$0] != reference[$0] }.sorted()
        #expect(differing.isEmpty, "files differ after a crash while deleting expired ids: \(differing)")
        #expect(h.daemon.local.ids.filesRemoved > 0, "expired segments were deleted after the restart")
    }

    /// Changelog mode: id chunks whose ids left the window are deleted with tombstones; a restart on another
    /// host (an empty state folder) after a crash rebuilds the partitions from the records and the live
    /// chunks: the same files as a run without a crash, and repeats of recent events still dropped.
    @Test func aTakeoverAfterExpiredIdChunksWereDeletedLosesAndDoublesNothing() throws {
        let config = "[dedup]\nwindow = \"2m\""
        let (reference, produced) = try DaemonHarness.uninterruptedRun(events: 400, extraConfig: config, changelog: true)

        let broker = InMemoryBroker()
        broker.maxPerPoll = 5
        let h = DaemonHarness(extraConfig: config, changelog: true, broker: broker)
        let first = h.firstEventMs
        h.produceEvents(400, firstMs: first)
        let d = try h.startDaemon()
        d.faults = CrashAfter(.checkpointWritten, nth: 15)
        h.assignAll()
        #expect(throws: DaemonFailure.injectedCrash(after: .checkpointWritten)) { try h.consumeAll() }
        // The records written before the crash are past the repeats sent below (events 290-329).
        let recorded = d.pipeline.assigned.map(\.state.nextOffset)
        #expect(recorded.count == 2 && recorded.allSatisfy { $0 >= 330 }, "records at \(recorded)")
        let changelog = (0..<2).flatMap { broker.records("changelog", Int32($0)) }
        let chunks = changelog.filter { $0.key.map { String(decoding: $0, as: UTF8.self).contains("/ids/") } ?? false }
        #expect(chunks.contains { !$0.value.isEmpty }, "ids went out as chunks")
        #expect(chunks.contains { $0.value.isEmpty }, "expired chunks were deleted with tombstones")
        h.crash()

        // Another host: same broker, an empty state folder. Repeats of events the records already hold, still
        // inside the window when they arrive, come after the takeover: only the restored ids can catch them.
        let other = DaemonHarness(extraConfig: config, changelog: true, broker: broker, clock: h.clock)
        other.produceEvents(40, startIndex: 290, firstMs: first)
        try other.startDaemon()
        other.assignAll()
        try other.drainAndStop()
        #expect(other.daemon.pipeline.metrics.duplicates >= 80, "the repeats were recognised after the takeover")
        var files = h.rollupFiles()
        files.merge(other.rollupFiles()) { a, b in
            #expect(a == b, "a window closed on both hosts has the same bytes")
            return a
        }
        #expect(DaemonHarness.totals(of: files, window: "1h") == DaemonHarness.expected(produced))
        let differing = Set(files.keys).union(reference.keys).filter { files[$0] != reference[$0] }.sorted()
        #expect(differing.isEmpty, "files differ after a takeover: \(differing)")
    }
}

/// Stops the daemon in the middle of a compaction: at the `nth` segment of expired ids about to be
/// deleted, or at the `nth` new base about to replace deltas (before their deletion).
final class CrashInCompaction: DaemonFaults {
    enum Point { case removingExpiredIds, replacingDeltas }
    let point: Point
    let nth: Int
    private(set) var calls = 0
    init(_ point: Point, nth: Int) { self.point = point; self.nth = nth }
    func completed(_ s: CheckpointStep) throws(DaemonFailure) {}
    func removingExpiredIds() throws(DaemonFailure) { try reached(.removingExpiredIds, after: .expiredIdsRemoved) }
    func compactingCheckpoint() throws(DaemonFailure) { try reached(.replacingDeltas, after: .checkpointWritten) }
    private func reached(_ p: Point, after step: CheckpointStep) throws(DaemonFailure) {
        guard p == point else { return }
        calls += 1
        if calls == nth { throw .injectedCrash(after: step) }
    }
}
