import Foundation
import Testing
import TokenmeterCore
import TokenmeterKafka
@testable import TokenmeterDaemon

/// The daemon run in-process against an in-memory broker and a manual clock: the consume loop, the
/// checkpoint sequence, the hand-over protocol, changelog restore, disk trouble and reloads, in seconds.
/// The end-to-end suite runs the same daemon against a real broker process as the outer check.
@Suite("Daemon in-process")
struct DaemonInProcessTests {
    // MARK: Exactly once through crashes

    @Test func everyEventIsCountedOnceAndOffsetsAreCommittedAtStop() throws {
        let h = DaemonHarness()
        let produced = h.produceEvents(150)
        try h.startDaemon()
        h.assignAll()
        try h.drainAndStop()
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
        #expect(h.totals(window: "1m") == DaemonHarness.expected(produced))
        for p in h.partitions {
            #expect(h.committed(p)?.offset == 150)
            #expect(h.claim(p) == .checkpointed("t"))
        }
    }

    /// The files of a run that crashes right after `step` of its second checkpoint and restarts are the
    /// files of a run that never crashed, byte for byte, and add up to the events.
    @Test(arguments: CheckpointStep.allCases.filter { $0 != .changelogAcknowledged })
    func aCrashAfterAnyCheckpointStepLosesAndDoublesNothing(step: CheckpointStep) throws {
        try crashAndRestart(after: step, changelog: false)
    }

    /// The same with the partitions' state in the changelog topic: the restart restores it from there.
    @Test(arguments: CheckpointStep.allCases)
    func aCrashAfterAnyCheckpointStepInChangelogModeLosesAndDoublesNothing(step: CheckpointStep) throws {
        try crashAndRestart(after: step, changelog: true)
    }

    private func crashAndRestart(after step: CheckpointStep, changelog: Bool) throws {
        let (reference, produced) = try DaemonHarness.uninterruptedRun(events: 150, changelog: changelog)
        #expect(!reference.isEmpty)
        #expect(DaemonHarness.totals(of: reference, window: "1h") == DaemonHarness.expected(produced))

        let h = DaemonHarness(changelog: changelog)
        h.produceEvents(150)
        let d = try h.startDaemon()
        d.faults = CrashAfter(step, nth: 2)
        h.assignAll()
        var crashed: DaemonFailure?
        do { try h.consumeAll() } catch let f as DaemonFailure { crashed = f }
        #expect(crashed == .injectedCrash(after: step))
        h.crash()

        try h.startDaemon()
        h.assignAll()
        try h.drainAndStop()
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
        #expect(h.totals(window: "1m") == DaemonHarness.expected(produced))
        let files = h.rollupFiles()
        let differing = Set(files.keys).union(reference.keys).filter { files[$0] != reference[$0] }.sorted()
        #expect(differing.isEmpty, "files differ after a crash after \(step): \(differing)")
    }

    @Test func aCrashBeforeTheFirstCheckpointReplaysFromTheStart() throws {
        let h = DaemonHarness()
        let produced = h.produceEvents(60)
        let d = try h.startDaemon()
        d.faults = CrashAfter(.alertsInOutbox, nth: 1)
        h.assignAll()
        #expect(throws: DaemonFailure.injectedCrash(after: .alertsInOutbox)) { try h.consumeAll() }
        #expect(h.claim(0) == .owned("t"), "only the claim was committed")
        h.crash()
        try h.startDaemon()
        h.assignAll()
        try h.drainAndStop()
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
    }

    @Test func aRestartResumesFromTheCheckpointNotFromTheCommit() throws {
        // Crash after the checkpoint is written but before the commit: the checkpoint is ahead of Kafka.
        let h = DaemonHarness()
        let produced = h.produceEvents(150)
        let d = try h.startDaemon()
        d.faults = CrashAfter(.checkpointWritten, nth: 2)
        h.assignAll()
        #expect(throws: DaemonFailure.self) { try h.consumeAll() }
        let committedBefore = h.committed(0)?.offset ?? 0
        h.crash()
        let restarted = try h.startDaemon()
        #expect(!restarted.ownership.restored.isEmpty, "the checkpoint's partitions wait for their assignment")
        let fromCheckpoint = restarted.ownership.restored[TopicPartition(topic: "usage", partition: 0)]?.nextOffset ?? -1
        #expect(fromCheckpoint > committedBefore)
        h.assignAll()
        try h.drainAndStop()
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
    }

    // MARK: Hand-over between instances

    @Test func aPartitionClaimedByASilentOwnerWaitsForTheHandoverTimeout() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(20)
        // Another instance consumed up to 5 and still claims the partition.
        h.broker.committed["g"] = [TopicPartition(topic: "usage", partition: 0): (5, "owned:other")]
        try h.startDaemon()
        h.assignAll()
        try h.iterate(stepMs: 1_000, limit: 29)
        #expect(h.daemon.pipeline.assigned.isEmpty, "not fetched while the other instance may still hand over")
        #expect(h.consumer.positions.isEmpty)
        try h.iterate(stepMs: 1_000, limit: 2)
        #expect(h.claim(0) == .owned("t"), "claimed once the previous owner is taken for dead")
        try h.consumeAll()
        #expect(h.daemon.pipeline.metrics.messages == 15, "started at the committed offset")
    }

    @Test func aLateReleaseStartsThePartitionWhereThePreviousOwnersRowsEnd() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(20)
        h.broker.committed["g"] = [TopicPartition(topic: "usage", partition: 0): (4, "owned:other")]
        try h.startDaemon()
        h.assignAll()
        try h.iterate(stepMs: 1_000, limit: 3)
        #expect(h.daemon.pipeline.assigned.isEmpty)
        // The previous owner wrote its partial rows and commits `released` at 7.
        try h.broker.commit(group: "g", [TopicPartitionOffset(topic: "usage", partition: 0, offset: 7)], metadata: "released:other")
        try h.iterate(stepMs: 100, limit: 5)
        #expect(h.claim(0) == .owned("t"))
        try h.consumeAll()
        #expect(h.daemon.pipeline.metrics.messages == 13)
    }

    @Test func ourOwnClaimOnRecordStartsAtOnce() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(10)
        h.broker.committed["g"] = [TopicPartition(topic: "usage", partition: 0): (3, "owned:t")]
        try h.startDaemon()
        h.assignAll()
        try h.iterate(stepMs: 10, limit: 1)
        #expect(h.consumer.positions[TopicPartition(topic: "usage", partition: 0)] != nil)
        #expect(h.daemon.ownership.awaitingHandover.isEmpty)
    }

    @Test func aRevokedPartitionIsWrittenAsPartialRowsAndReleased() throws {
        let h = DaemonHarness(partitions: [0, 1])
        let produced = h.produceEvents(40)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll()
        h.consumer.revoke([TopicPartition(topic: "usage", partition: 1)])
        try h.iterate(limit: 1)
        #expect(h.claim(1) == .released("t"))
        #expect(h.committed(1)?.offset == 40)
        #expect(h.rollupFiles().keys.contains { $0.contains("-part-o40") }, "the open windows of the partition as partial rows")
        try h.drainAndStop()
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
    }

    /// Partition 1 of 30 events revoked while the broker refuses commits: its release waits, and the group
    /// will be back (partition 0 assigned again) at the next poll.
    private func revokedWithTheReleaseRefused() throws -> DaemonHarness {
        let h = DaemonHarness(partitions: [0, 1])
        h.produceEvents(30)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll()
        h.broker.refuseCommits = true
        h.consumer.revoke([TopicPartition(topic: "usage", partition: 1)])
        try h.iterate(limit: 1)
        #expect(h.claim(1) == .owned("t"), "the release was refused")
        #expect(h.daemon.ownership.unreleased[TopicPartition(topic: "usage", partition: 1)]?.offset == 30)
        h.broker.refuseCommits = false
        h.consumer.assign([TopicPartition(topic: "usage", partition: 0)])
        return h
    }

    @Test func aReleaseTheBrokerRefusedIsSentOnceTheGroupIsBack() throws {
        let h = try revokedWithTheReleaseRefused()
        try h.iterate(limit: 1)
        #expect(h.claim(1) == .released("t"))
        #expect(h.committed(1)?.offset == 30)
        #expect(h.daemon.ownership.unreleased.isEmpty)
    }

    @Test func aStopDuringTheRebalanceWaitsForTheGroupToSendTheRefusedRelease() throws {
        let h = try revokedWithTheReleaseRefused()
        // The stop comes before the group is back.
        try h.daemon.finish()
        h.daemon.operationsFinish()
        #expect(h.claim(1) == .released("t"), "the next owner of partition 1 starts where its rows end")
        #expect(h.committed(1)?.offset == 30)
        #expect(h.daemon.ownership.unreleased.isEmpty)
    }

    /// The group gives a partition back while the broker still refuses the `released` commit of its hand-over
    /// (the mock broker refuses commits during a rebalance; seen in the three-instance test): the group's
    /// committed offset is older and still carries our claim, but our rows up to the hand-over are in
    /// partial files. The partition continues where they end, and nothing is read twice.
    @Test func aPartitionBackBeforeItsReleaseIsCommittedContinuesWhereItsRowsEnd() throws {
        var (h, produced) = try Self.consumedPastARefusedCommit()
        let p1 = TopicPartition(topic: "usage", partition: 1)
        // An eager rebalance: everything is revoked, then assigned again.
        let both = [TopicPartition(topic: "usage", partition: 0), p1]
        h.consumer.revoke(both)
        try h.iterate(limit: 1)
        #expect(h.committed(1)?.offset == 30 && h.claim(1) == .owned("t"), "the release was refused")
        #expect(h.daemon.ownership.unreleased[p1]?.offset == 60)
        h.consumer.assign(both)
        try h.iterate(limit: 1)
        #expect(h.daemon.pipeline.state(topicIndex: 0, partition: 1)?.nextOffset == 60)
        #expect(h.daemon.ownership.unreleased.isEmpty, "an older release committed now would move the partition back")
        produced = Self.sum(produced, h.produceEvents(30, startIndex: 60))
        h.broker.refuseCommits = false
        try h.drainAndStop()
        #expect(h.daemon.pipeline.metrics.duplicates == 0, "nothing read twice (the retained ids would hide it in the totals)")
        #expect(h.daemon.pipeline.metrics.messages == 180)
        #expect(h.committed(1)?.offset == 90)
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
        #expect(h.totals(window: "1m") == DaemonHarness.expected(produced))
    }

    /// A partition handed over and given back to the same process continues its event time: an
    /// out-of-order event first in the new stretch, of a minute closed in the first one, is a late row. It
    /// must not reopen that minute and close it again into a final file of the same name, which would
    /// replace the first one's rows.
    @Test func aPartitionBackInTheSameProcessKeepsItsClosedWindowsClosed() throws {
        try handOverAndGetBackWithAnOutOfOrderEventFirst(laterRun: false)
    }

    /// The same in a later run: the first handed the partition over (its release carries the watermark)
    /// and its checkpoint no longer holds it, so the only memory of the windows it closed is that watermark,
    /// which the claim of the next run passes on and its fresh state starts from.
    @Test func aPartitionBackInALaterRunKeepsTheWindowsClosedByTheFirst() throws {
        try handOverAndGetBackWithAnOutOfOrderEventFirst(laterRun: true)
    }

    /// Partition 0 consumed (minutes closed), revoked and released; `laterRun`: the process is then
    /// dropped and a new one started on the same folder. Given the partition back, its next events are one
    /// in the first (closed) minute and one on time.
    private func handOverAndGetBackWithAnOutOfOrderEventFirst(laterRun: Bool) throws {
        let h = DaemonHarness(partitions: [0])
        let p0 = TopicPartition(topic: "usage", partition: 0)
        var produced = h.produceEvents(90)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll()
        let watermark = try #require(h.daemon.pipeline.state(topicIndex: 0, partition: 0)?.windows.watermark)
        h.consumer.revoke([p0])
        try h.iterate(limit: 1)
        #expect(h.committed(0)?.offset == 90 && h.committed(0)?.metadata == "released:t;watermark=\(watermark)")
        let finals = h.rollupFiles().filter { $0.key.hasPrefix("1m/") && !$0.key.contains("-part-") && !$0.key.contains("-late") }
        #expect(finals.count >= 1, "minutes closed before the hand-over")
        if laterRun { h.crash() }
        // The second event's time (in the first minute, closed), with an id of its own; then one on time.
        produced = Self.sum(produced, h.produceEvents(1, startIndex: 1_000, firstMs: h.firstEventMs + 1_000 - 1_000_000))
        produced = Self.sum(produced, h.produceEvents(1, startIndex: 95))
        if laterRun { try h.startDaemon() }
        h.consumer.assign([p0])
        try h.iterate(limit: 2)
        #expect(h.committed(0)?.metadata == "owned:t;watermark=\(watermark)", "the claim passes the watermark on")
        try h.drainAndStop()
        let after = h.rollupFiles()
        for (name, bytes) in finals {
            #expect(after[name].map { String(decoding: $0, as: UTF8.self) } == String(decoding: bytes, as: UTF8.self), "\(name) was replaced")
        }
        #expect(after.keys.contains { $0.hasPrefix("1m/") && $0.contains("-late") }, "the out-of-order event is a late row")
        #expect(h.totals(window: "1m") == DaemonHarness.expected(produced))
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
    }

    /// A stop while the broker refuses commits (a rebalance under way) leaves the group's commit at our
    /// claim's older offset while the checkpoint holds rows up to a later one. Restarted and given other
    /// partitions, the instance writes those rows as partial files and releases the partition at the
    /// checkpoint's offset: the instance the group gave it to starts there, instead of waiting for
    /// `kafka.handover_timeout` and counting the stretch in between a second time.
    @Test func aRestartReleasesTheCheckpointedPartitionsItsStopCouldNotCommit() throws {
        var (h, produced) = try Self.consumedPastARefusedCommit()
        let p0 = TopicPartition(topic: "usage", partition: 0), p1 = TopicPartition(topic: "usage", partition: 1)
        try h.daemon.finish()
        h.daemon.operationsFinish()
        #expect(h.committed(1)?.offset == 30 && h.claim(1) == .owned("t"), "the stop's commit was refused")
        h.broker.refuseCommits = false

        // The other instance is given partition 1 and waits for the claim on record to be released.
        let other = DaemonHarness(partitions: [0, 1], broker: h.broker, clock: h.clock)
        try other.startDaemon(instance: "u")
        other.consumer.assign([p1])
        try other.iterate(limit: 2)
        #expect(other.daemon.pipeline.assigned.isEmpty)
        // We restart and are given partition 0 only.
        try h.startDaemon()
        h.consumer.assign([p0])
        try h.iterate(limit: 1)
        #expect(h.committed(1)?.offset == 60 && h.claim(1) == .released("t"))
        #expect(h.rollupFiles().keys.contains { $0.contains("-t-p1-part-o60") })
        produced = Self.sum(produced, h.produceEvents(30, startIndex: 60))
        try other.iterate(limit: 3)
        #expect(other.daemon.pipeline.state(topicIndex: 0, partition: 1)?.nextOffset ?? -1 >= 60, "started where the rows end, at once")
        try other.drainAndStop()
        try h.drainAndStop()
        #expect(other.daemon.pipeline.metrics.messages == 30)
        let files = h.rollupFiles().merging(other.rollupFiles()) { a, _ in a }
        #expect(DaemonHarness.totals(of: files, window: "1h") == DaemonHarness.expected(produced))
        #expect(DaemonHarness.totals(of: files, window: "1m") == DaemonHarness.expected(produced))
    }

    /// A stop whose commit is refused (a rebalance under way) stays in the group and sends it again until the
    /// broker takes it: the claim on record then says where the checkpoint's rows end, and the partitions'
    /// next owner starts there at once instead of taking the stopped instance for dead and counting again
    /// what its checkpoint holds. Nothing polled while it waits is counted.
    @Test func aStopWhoseCommitIsRefusedStaysUntilTheBrokerTakesIt() throws {
        let (h, _) = try Self.consumedPastARefusedCommit()
        let counted = h.daemon.pipeline.metrics.messages
        h.produceEvents(20, startIndex: 60)
        // The shutdown's commit is refused; the rebalance under way then revokes both partitions and gives
        // one back, and from then on (the next attempt) commits are taken.
        h.broker.acceptCommitsFromAttempt = h.broker.commitAttempts + 2
        let p0 = TopicPartition(topic: "usage", partition: 0)
        h.consumer.revoke([p0, TopicPartition(topic: "usage", partition: 1)])
        h.consumer.assign([p0])
        try h.daemon.finish()
        h.daemon.operationsFinish()
        #expect(h.committed(0)?.offset == 60 && h.claim(0) == .checkpointed("t"))
        #expect(h.committed(1)?.offset == 60 && h.claim(1) == .checkpointed("t"))
        #expect(h.daemon.pipeline.metrics.messages == counted, "nothing counted after the shutdown checkpoint")
    }

    /// Partitions 0 and 1: 30 events each consumed and committed, then 30 more consumed while the broker
    /// refuses commits (left refusing). Returns the harness and what was produced.
    private static func consumedPastARefusedCommit() throws -> (DaemonHarness, (requests: Int, input: Int64, output: Int64)) {
        let h = DaemonHarness(partitions: [0, 1])
        var produced = h.produceEvents(30)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll()
        try h.iterate(until: { h.committed(1)?.offset == 30 }, stepMs: 500, limit: 4)
        h.broker.refuseCommits = true
        produced = sum(produced, h.produceEvents(30, startIndex: 30))
        try h.consumeAll()
        return (h, produced)
    }

    private static func sum(_ a: (requests: Int, input: Int64, output: Int64), _ b: (requests: Int, input: Int64, output: Int64))
        -> (requests: Int, input: Int64, output: Int64) {
        (a.requests + b.requests, a.input + b.input, a.output + b.output)
    }

    @Test func aRefusedCommitIsRetriedAtTheNextCheckpoint() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(30)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll()
        h.broker.refuseCommits = true
        try h.iterate(stepMs: 500, limit: 4)
        #expect(h.committed(0)?.offset != 30)
        let attempts = h.broker.commitAttempts
        #expect(attempts > 1)
        h.broker.refuseCommits = false
        try h.iterate(until: { h.committed(0)?.offset == 30 }, stepMs: 500, limit: 4)
        #expect(h.committed(0)?.offset == 30)
        #expect(h.claim(0) == .owned("t"))
    }

    @Test func aLostAssignmentCommitsNothingAndResumesFromTheCheckpoint() throws {
        let h = DaemonHarness(partitions: [0])
        let produced = h.produceEvents(50)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll()
        try h.iterate(stepMs: 500, limit: 3)
        let attempts = h.broker.commitAttempts
        h.consumer.revoke([TopicPartition(topic: "usage", partition: 0)], lost: true)
        try h.iterate(limit: 1)
        #expect(h.broker.commitAttempts == attempts, "nothing may be committed for a lost partition")
        #expect(h.daemon.ownership.restored[TopicPartition(topic: "usage", partition: 0)] != nil)
        h.assignAll()
        try h.drainAndStop()
        #expect(h.totals(window: "1h") == DaemonHarness.expected(produced))
    }

    // MARK: Dead letters

    @Test func aRejectedMessageGoesToTheDeadLetterTopicWithItsReason() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(5)
        h.broker.append("usage", partition: 0, value: Array(#"{"workflow":"w"}"#.utf8))
        try h.startDaemon()
        h.assignAll()
        try h.drainAndStop()
        let dlq = h.broker.records("dlq", 0)
        #expect(dlq.count == 1)
        #expect(dlq.first?.value == Array(#"{"workflow":"w"}"#.utf8))
        let reason = dlq.first?.headers.first { $0.0 == "tokenmeter-error" }.map { String(decoding: $0.1, as: UTF8.self) }
        #expect(reason?.contains("owner") == true, "\(reason ?? "no reason")")
    }

    @Test func unacknowledgedDeadLettersHoldTheCheckpointAndTheCommit() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(5)
        h.broker.append("usage", partition: 0, value: Array("not json".utf8))
        try h.startDaemon()
        h.assignAll()
        h.broker.holdAcknowledgements = true
        try h.iterate(until: { h.daemon.pipeline.metrics.messages == 6 })
        try h.iterate(stepMs: 500, limit: 6)
        #expect((h.committed(0)?.offset ?? 0) < 6, "no commit past a dead letter still only in memory")
        #expect(h.daemon.loop.checkpointPostponed)
        h.broker.holdAcknowledgements = false
        try h.iterate(until: { h.committed(0)?.offset == 6 }, stepMs: 500, limit: 6)
        #expect(h.committed(0)?.offset == 6)
        #expect(h.broker.records("dlq", 0).count == 1)
    }

    @Test func aDeadLetterTheTopicRefusesIsKeptInTheSpillFile() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(3)
        h.broker.append("usage", partition: 0, value: Array("{broken".utf8))
        h.broker.refuseProduce = ["dlq"]
        try h.startDaemon()
        h.assignAll()
        try h.drainAndStop()
        let spill = FileManager.default.contents(atPath: h.stateDir + "/dead-letters/spill").map { String(decoding: $0, as: UTF8.self) }
        #expect(spill?.contains("{broken") == true)
        #expect(h.committed(0)?.offset == 4)
    }

    // MARK: Disk trouble

    @Test func aRollupFolderThatCannotBeWrittenPausesConsumingUntilItCan() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(200)
        try h.startDaemon()
        // A file where the rollup folder should be: every write fails (root included).
        FileManager.default.createFile(atPath: h.rollupDir, contents: Data("x".utf8))
        h.assignAll()
        try h.iterate(until: { h.daemon.flow.rollupFailing })
        #expect(h.daemon.flow.paused)
        #expect(!h.consumer.paused.isEmpty)
        let committedWhileFailing = h.committed(0)?.offset
        try h.iterate(stepMs: 1_000, limit: 5)
        #expect(h.committed(0)?.offset == committedWhileFailing, "no commit while closed windows are only in memory")
        try FileManager.default.removeItem(atPath: h.rollupDir)
        try h.iterate(until: { !h.daemon.flow.paused })
        #expect(h.consumer.paused.isEmpty)
        #expect(h.daemon.flow.rollupFailures > 0)
        try h.drainAndStop()
        #expect(h.totals(window: "1h") == DaemonHarness.expected((200, 20_100, 40_200)))
    }

    @Test func aStateFolderThatCannotBeWrittenStopsCommitsUntilItCan() throws {
        let h = DaemonHarness(partitions: [0])
        let produced = h.produceEvents(50)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll()
        try h.iterate(stepMs: 500, limit: 3)
        // The checkpoint's names taken by folders: the base's atomic rename and the delta's append fail.
        for name in ["checkpoint.bin", "checkpoint.log"] {
            try? FileManager.default.removeItem(atPath: h.stateDir + "/" + name)
            try FileManager.default.createDirectory(atPath: h.stateDir + "/\(name)/x", withIntermediateDirectories: true)
        }
        h.produceEvents(10, startIndex: 50)
        try h.iterate(until: { h.daemon.flow.stateFailing }, stepMs: 500, limit: 20)
        #expect(h.daemon.flow.paused)
        let committed = h.committed(0)?.offset
        try h.iterate(stepMs: 1_000, limit: 3)
        #expect(h.committed(0)?.offset == committed)
        for name in ["checkpoint.bin", "checkpoint.log"] { try FileManager.default.removeItem(atPath: h.stateDir + "/" + name) }
        try h.iterate(until: { !h.daemon.flow.stateFailing }, stepMs: 500, limit: 10)
        #expect(!h.daemon.flow.paused)
        try h.drainAndStop()
        var all = produced
        all.requests += 10
        all.input += (51...60).reduce(0) { $0 + Int64($1) }
        all.output += (51...60).reduce(0) { $0 + 2 * Int64($1) }
        #expect(h.totals(window: "1h") == DaemonHarness.expected(all))
    }

    // MARK: Memory ceiling

    @Test func overTheMemoryCeilingConsumingPausesAndWindowsCloseByTheClock() throws {
        let h = DaemonHarness(partitions: [0], extraConfig: "")
        var c = try h.config()
        c.state.maxMemory = try #require(ByteSize.parse("1KiB"))
        h.produceEvents(30)
        try h.startDaemon(config: c)
        h.assignAll()
        try h.iterate(until: { h.daemon.flow.memoryOver })
        #expect(h.daemon.flow.paused)
        #expect(!h.consumer.paused.isEmpty)
    }

    // MARK: Rollup files

    /// Closed windows wait for the checkpoint and are written by it, together, not after each poll batch
    /// (where every file cost a create, an fsync, a rename and its folder's fsync on its own).
    @Test func closedWindowsAreWrittenByTheCheckpointNotAfterEachBatch() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(150)   // a second apart: the minute windows 0-60 s and 60-120 s close
        let d = try h.startDaemon()
        h.assignAll()
        try h.iterate(until: { d.pipeline.metrics.messages == 150 }, stepMs: 1, limit: 50)
        #expect(d.pipeline.metrics.messages == 150)
        #expect(d.pipeline.pending.count == 2, "two minute windows closed")
        #expect(d.pipeline.pendingRows == d.pipeline.pending.reduce(0) { $0 + $1.window.rows.count })
        #expect(h.rollupFiles().isEmpty, "nothing written before the checkpoint")
        #expect((h.committed(0)?.offset ?? 0) == 0, "no offset committed past windows not yet on disk")

        try h.iterate(stepMs: 1_000, limit: 1)   // the checkpoint interval (1 s) has passed
        #expect(d.pipeline.pending.isEmpty)
        #expect(d.pipeline.pendingRows == 0)
        #expect(h.rollupFiles().keys.filter { $0.hasPrefix("1m/") }.count == 2)
        #expect(h.committed(0)?.offset == 150, "committed after the files it passes")
    }

    // MARK: Idle close and the clock

    @Test func quietPartitionsCloseTheirWindowsByTheManualClock() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(10)
        try h.startDaemon()
        h.assignAll()
        try h.consumeAll()
        let before = h.rollupFiles().keys.filter { $0.hasPrefix("1h/") }
        #expect(before.isEmpty, "the hour is still open")
        try h.iterate(stepMs: 1_000, limit: 6)
        #expect(!h.rollupFiles().keys.filter { $0.hasPrefix("1h/") }.isEmpty, "closed once idle_close passed on the clock")
    }

    // MARK: Reload

    @Test func aReloadAppliesPricesAndRulesAtOnceAndKeepsRestartOnlyKeys() throws {
        let h = DaemonHarness(partitions: [0])
        try h.startDaemon()
        var new = try h.config()
        new.kafka.brokers = "elsewhere:9092"
        new.state.checkpointInterval = try #require(DurationSpec.parse("7s"))
        let reloaded = try ConfigLoader.parse(text: h.configText() + """

            [[budget]]
            name = "b"
            amount_usd = 10
            period = "day"
            """, file: "r.toml").get()
        new.budgets = reloaded.budgets
        h.daemon.apply(reloaded: new)
        #expect(h.daemon.config.kafka.brokers == "in-memory:9092", "restart-only: kept")
        #expect(h.daemon.config.state.checkpointInterval.millis == 7_000, "reloadable: applied")
        #expect(h.daemon.rules.budgets.count == 1)
        #expect(h.daemon.ops.reload.success)
    }

    // MARK: Readiness

    @Test func readyOnceTheGroupIsJoinedAndAPartitionHeld() throws {
        let h = DaemonHarness(partitions: [0])
        h.produceEvents(3)
        try h.startDaemon()
        try h.iterate(limit: 2)
        #expect(h.daemon.progress.snapshot.readiness.ready == false)
        h.assignAll()
        try h.iterate(until: { h.daemon.progress.snapshot.readiness.ready }, limit: 20)
        #expect(h.daemon.progress.snapshot.readiness.ready)
    }

    // MARK: Fatal conditions are errors, not exits

    @Test func anUnreadableChangelogRecordStopsTheDaemonWithExit75() throws {
        let h = DaemonHarness(partitions: [0], extraConfig: "")
        var c = try h.config()
        c.kafka.changelogTopic = "changelog"
        h.broker.createTopic("changelog", partitions: 1)
        // A record whose header is sound (offset 2) but whose state this version cannot read.
        let bad = ChangelogRecord(nextOffset: 2, state: [0xde, 0xad, 0xbe, 0xef]).encode()
        h.broker.append("changelog", partition: 0, key: Array("g/usage/0".utf8), value: bad)
        h.produceEvents(3)
        try h.startDaemon(config: c)
        h.assignAll()
        var failure: DaemonFailure?
        do { try h.iterate(limit: 10) } catch let f as DaemonFailure { failure = f }
        #expect(failure?.exitCode == 75)
        #expect(h.daemon.pipeline.metrics.messages == 0, "nothing of the partition was fetched")
        #expect(h.committed(0)?.offset == nil || h.claim(0) == .owned("t"))
    }

    @Test func aChangelogRestoreTakesTheRecordWithTheHighestOffset() throws {
        // A first instance writes records as it goes; a second restores from the changelog.
        let broker = InMemoryBroker()
        let first = DaemonHarness(partitions: [0], broker: broker)
        var c = try first.config()
        c.kafka.changelogTopic = "changelog"
        broker.createTopic("changelog", partitions: 1)
        let produced = first.produceEvents(40)
        try first.startDaemon(config: c)
        first.assignAll()
        try first.consumeAll()
        try first.iterate(stepMs: 500, limit: 4)
        let records = broker.records("changelog", 0)
        #expect(records.count >= 1)
        // A stale record re-appended after the newest (a zombie's late write) must not win.
        if let oldest = records.first { broker.append("changelog", partition: 0, key: oldest.key, value: oldest.value) }
        first.crash()

        let second = DaemonHarness(partitions: [0], broker: broker, clock: first.clock)
        var c2 = try second.config(instance: "t2")
        c2.kafka.changelogTopic = "changelog"
        try second.startDaemon(config: c2)
        second.assignAll()
        try second.iterate(until: { !second.daemon.pipeline.assigned.isEmpty }, limit: 20)
        #expect(second.daemon.pipeline.assigned.first?.state.nextOffset == 40, "restored from the newest record")
        try second.drainAndStop()
        #expect(second.daemon.pipeline.metrics.messages == 0, "nothing replayed: the record held it all")
        // The windows the first instance had open went on in the second: the two folders add up exactly.
        var both = first.totals(window: "1h")
        let more = second.totals(window: "1h")
        both.requests += more.requests; both.input += more.input; both.output += more.output; both.costNanos += more.costNanos
        #expect(both == DaemonHarness.expected(produced))
    }
}
