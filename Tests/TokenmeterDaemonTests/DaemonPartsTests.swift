import Testing
import TokenmeterKafka
@testable import TokenmeterDaemon

/// The daemon's decision parts alone, as values: no broker, no files, no clock but the numbers given.
@Suite("Daemon parts")
struct DaemonPartsTests {
    // MARK: FlowControl

    @Test func aFailingRollupFolderPausesOnceAndResumesOnRecovery() {
        var f = FlowControl()
        let v1 = f.rollupWriteFailed()
        #expect(v1, "the first failure is the one to log")
        let v2 = f.rollupWriteFailed()
        #expect(!v2, "the next ones only count")
        #expect(f.rollupFailures == 2)
        let v3 = f.settle(now: 1_000, rebalanceCount: 3)
        #expect(v3 == .pause)
        #expect(f.pausedAtRebalance == 3)
        let v4 = f.settle(now: 1_100, rebalanceCount: 3)
        #expect(v4 == .none, "already paused")
        let v5 = f.rollupWriteSucceeded()
        #expect(v5)
        let v6 = f.settle(now: 1_200, rebalanceCount: 3)
        #expect(v6 == .resume)
        #expect(!f.paused)
    }

    @Test func consumingResumesOnlyWhenEveryFolderIsWritable() {
        var f = FlowControl()
        _ = f.rollupWriteFailed()
        _ = f.stateWriteFailed()
        let v7 = f.settle(now: 0, rebalanceCount: 0)
        #expect(v7 == .pause)
        _ = f.rollupWriteSucceeded()
        let v8 = f.settle(now: 10, rebalanceCount: 0)
        #expect(v8 == .none, "the state folder still fails")
        let v9 = f.stateWriteSucceeded()
        #expect(v9)
        let v10 = f.settle(now: 20, rebalanceCount: 0)
        #expect(v10 == .resume)
    }

    @Test func aFailingDiskIsRemindedOfOnceAMinute() {
        var f = FlowControl()
        _ = f.stateWriteFailed()
        _ = f.settle(now: 0, rebalanceCount: 0)
        let v11 = f.diskReminderDue(now: 59_999)
        #expect(!v11)
        let v12 = f.diskReminderDue(now: 60_000)
        #expect(v12)
        let v13 = f.diskReminderDue(now: 60_001)
        #expect(!v13)
        let v14 = f.diskReminderDue(now: 120_000)
        #expect(v14)
        _ = f.stateWriteSucceeded()
        let v15 = f.diskReminderDue(now: 500_000)
        #expect(!v15, "no reminder once it works again")
    }

    @Test func theMemoryCeilingPausesAboveAndResumesUnderNinetyPercent() {
        var f = FlowControl()
        let v16 = f.memory(stateBytes: 1_000, ceiling: 1_000, now: 0)
        #expect(v16 == .unchanged, "at the ceiling is within it")
        let v17 = f.memory(stateBytes: 1_001, ceiling: 1_000, now: 0)
        #expect(v17 == .over)
        #expect(f.wantsPause)
        let v18 = f.memory(stateBytes: 950, ceiling: 1_000, now: 1_000)
        #expect(v18 == .unchanged, "95% is not low enough to resume")
        let v19 = f.memory(stateBytes: 950, ceiling: 1_000, now: 60_000)
        #expect(v19 == .stillOver)
        let v20 = f.memory(stateBytes: 899, ceiling: 1_000, now: 61_000)
        #expect(v20 == .recovered(reason: "under 90% of state.max_memory"))
        #expect(!f.wantsPause)
    }

    @Test func removingTheMemoryCeilingByReloadResumes() {
        var f = FlowControl()
        _ = f.memory(stateBytes: 5_000, ceiling: 1_000, now: 0)
        let v21 = f.memory(stateBytes: 5_000, ceiling: nil, now: 1)
        #expect(v21 == .recovered(reason: "state.max_memory removed"))
        let v22 = f.memory(stateBytes: 5_000, ceiling: nil, now: 2)
        #expect(v22 == .unchanged)
    }

    // MARK: Ownership and hand-over

    @Test func ownershipClaimsRoundTripThroughCommitMetadata() {
        for claim in [OwnershipClaim.owned("a"), .released("b-1"), .checkpointed("host:9"), .none] {
            #expect(OwnershipClaim(metadata: claim.metadata) == claim)
        }
        #expect(OwnershipClaim(metadata: nil) == OwnershipClaim.none)
        #expect(OwnershipClaim(metadata: "something else") == OwnershipClaim.none)
    }

    @Test func aClaimCarriesTheWatermarkAfterTheInstance() {
        let m = OwnershipClaim.released("b-1").metadata(watermark: 1_795_251_600_000)
        #expect(m == "released:b-1;watermark=1795251600000")
        #expect(OwnershipClaim(metadata: m) == .released("b-1"))
        #expect(OwnershipClaim.watermark(in: m) == 1_795_251_600_000)
        #expect(OwnershipClaim.owned("a").metadata(watermark: .min) == "owned:a", "no window closed yet: no watermark")
        #expect(OwnershipClaim.watermark(in: "owned:a") == nil)
        #expect(OwnershipClaim.watermark(in: "owned:a;watermark=x") == nil)
        #expect(OwnershipClaim.watermark(in: "owned:a;watermark=-5;later=1") == -5)
    }

    @Test func theHandoverViewSortsPartitionsByWhoseClaimIsOnRecord() {
        let tps = (0..<5).map { TopicPartition(topic: "u", partition: Int32($0)) }
        let view = HandoverView(tps, committed: [
            (10, "owned:me;watermark=7"), (20, "owned:other"), (30, "released:other;watermark=9"), (40, "checkpointed:other"), (nil, nil),
        ], instance: "me")
        #expect(view.mine == [tps[0]])
        #expect(view.waiting == [tps[1]])
        #expect(view.released == [tps[2]: 30])
        #expect(view.committed == [tps[0]: 10, tps[1]: 20, tps[2]: 30, tps[3]: 40])
        #expect(view.watermarks == [tps[0]: 7, tps[2]: 9])
    }

    @Test func unreadableCommittedOffsetsLeaveTheCheckpointToDecide() {
        let tps = [TopicPartition(topic: "u", partition: 0)]
        let view = HandoverView(unreadable: tps)
        #expect(view.mine == Set(tps))
        #expect(view.waiting.isEmpty && view.released.isEmpty && view.committed.isEmpty)
    }

    @Test func anAwaitedPartitionStartsWhenNobodyClaimsItOrAtItsDeadline() {
        var o = PartitionOwnership()
        let a = TopicPartition(topic: "u", partition: 0), b = TopicPartition(topic: "u", partition: 1)
        o.awaitingHandover = [a: 5_000, b: 5_000]
        var r = o.startable(waiting: [a, b], now: 4_999)
        #expect(r.ready.isEmpty)
        r = o.startable(waiting: [a], now: 4_999)
        #expect(r.ready == [b] && r.timedOut.isEmpty, "b's claim is gone: it starts")
        r = o.startable(waiting: [a, b], now: 5_000)
        #expect(r.ready == [a, b] && r.timedOut == [a, b], "past the deadline the previous owner is taken for dead")
        o.forget([a])
        #expect(o.awaitingHandover.keys.sorted(by: TopicPartition.ordered) == [b])
    }

    // MARK: Readiness

    @Test func readyMeansConsumingWithAGraceForShortInterruptions() {
        var r = Readiness()
        let v23 = r.problem(held: 1, mono: 0, grace: 10_000, graceLabel: "10s")
        #expect(v23 == "joining the consumer group")
        r.joinedGroup = true
        let v24 = r.problem(held: 1, mono: 0, grace: 10_000, graceLabel: "10s")
        #expect(v24 == nil)
        let v25 = r.problem(held: 0, mono: 1_000, grace: 10_000, graceLabel: "10s")
        #expect(v25 == nil, "within the grace")
        let v26 = r.problem(held: 0, mono: 11_000, grace: 10_000, graceLabel: "10s")
        #expect(v26 == "no partition assigned for 10 s (kafka.ready_grace 10s)")
        r.brokersDown = true
        let v27 = r.problem(held: 3, mono: 12_000, grace: 10_000, graceLabel: "10s")
        #expect(v27?.hasPrefix("no broker reachable") == true)
        r.brokersDown = false
        let v28 = r.problem(held: 3, mono: 13_000, grace: 10_000, graceLabel: "10s")
        #expect(v28 == nil)
        #expect(r.notConsumingSince == nil)
    }

    // MARK: The checkpoint sequence

    @Test func theCheckpointStepsAreInTheirDurableOrder() {
        // Alerts before files (the checkpoint records crossings as published), files and dead letters
        // before the changelog and the checkpoint, the checkpoint before the commit.
        let order = CheckpointStep.allCases
        func before(_ a: CheckpointStep, _ b: CheckpointStep) -> Bool { order.firstIndex(of: a)! < order.firstIndex(of: b)! }
        #expect(before(.alertsInOutbox, .checkpointWritten))
        #expect(before(.rollupFiles, .checkpointWritten))
        #expect(before(.deadLettersDelivered, .deadLettersSpilled))
        #expect(before(.deadLettersSpilled, .changelogAcknowledged))
        #expect(before(.changelogAcknowledged, .checkpointWritten))
        #expect(before(.checkpointWritten, .offsetsCommitted))
        #expect(before(.outboxCleared, .offsetsCommitted))
        // Expired ids go only once the checkpoint that no longer needs them is durable.
        #expect(before(.checkpointWritten, .expiredIdsRemoved))
        #expect(order.map(\.rawValue) == Array(1...10))
    }

    @Test func fatalConditionsExitWithTempFail() {
        let all: [DaemonFailure] = [.changelogBroken("x"), .unreadableChangelogRecord(partition: "u[0]", reason: "r"),
                                    .spendShardsUnknown("x"), .spendDeltasNotQueued("x"), .injectedCrash(after: .rollupFiles)]
        #expect(all.allSatisfy { $0.exitCode == 75 })
        #expect(all.allSatisfy { !$0.description.isEmpty })
    }
}
