#if canImport(Glibc)
import Glibc
#endif
import TokenmeterCore
import TokenmeterKafka

/// The checkpoint sequence: every flush goes through the steps of `CheckpointStep` in their order, each a
/// call that can fail; a failed step ends the attempt (retried at the next interval) with nothing after it
/// done. See `CheckpointStep` for why a crash between any two steps is harmless.
extension Daemon {
    var checkpointPath: String { local.path }

    /// Puts the last checkpoint's state of `partitions` back into `restored`.
    func reloadFromCheckpoint(_ partitions: Set<TopicPartition>) {
        do {
            guard let r = try local.read(pipeline, restoreAlerts: false) else { return }
            for st in r.partitions {
                let tp = TopicPartition(topic: st.topic, partition: st.partition)
                if partitions.contains(tp) { ownership.restored[tp] = st }
            }
        } catch {
            log.error("cannot re-read the checkpoint after a lost assignment", metadata: ["error": "\(error)"])
        }
    }

    func restoreCheckpoint() throws {
        guard let r = try local.read(pipeline, restoreAlerts: true) else {
            log.info("no checkpoint; starting fresh", metadata: ["path": "\(checkpointPath)"])
            return
        }
        if !r.droppedSizes.isEmpty {
            log.warning("checkpoint has window sizes no longer configured; their open rows are dropped",
                        metadata: ["sizes_ms": "\(r.droppedSizes.sorted())"])
        }
        if changelogMode {
            // The changelog is the truth about partitions: whoever held them last may have been another instance.
            for s in r.partitions { ownership.localCache[TopicPartition(topic: s.topic, partition: s.partition)] = s }
            log.info("checkpoint restored (partitions come from the changelog; the local copy serves those it has no record of)",
                     metadata: ["partitions": "\(r.partitions.count)"])
            return
        }
        for s in r.partitions { ownership.restored[TopicPartition(topic: s.topic, partition: s.partition)] = s }
        log.info("checkpoint restored", metadata: ["partitions": "\(r.partitions.count)",
                                                    "open_rows": "\(r.partitions.reduce(0) { $0 + $1.windows.openRowCount })"])
    }

    /// Runs the checkpoint sequence; true when every step succeeded (the offsets are committed).
    @discardableResult
    func checkpoint(reason: String) -> Bool {
        // After a fatal condition nothing durable may happen: the restart resumes from what is durable now.
        guard loop.fatal == nil else { return false }
        loop.lastCheckpoint = clock.monotonicMillis()
        let t0 = clock.monotonicNanos()
        let cpu0 = threadCPUSeconds()
        defer { ops.checkpoints.cpuSeconds += threadCPUSeconds() - cpu0 }
        let ok: Bool
        do {
            ok = try checkpointSteps(reason: reason)
        } catch {
            fail(error)
            return false
        }
        if ok {
            ops.checkpoints.lastWall = clock.now()
            ops.checkpoints.lastSeconds = Double(clock.monotonicNanos() - t0) / 1e9
            // The final one at shutdown writes every open window and holds no poll back: not counted.
            if reason != "shutdown" { ops.checkpoints.longestSeconds = max(ops.checkpoints.longestSeconds, ops.checkpoints.lastSeconds) }
            ops.checkpoints.count += 1
        } else {
            ops.checkpoints.failures += 1
        }
        return ok
    }

    private func checkpointSteps(reason: String) throws(DaemonFailure) -> Bool {
        let urgent = reason == "shutdown" || reason == "rebalance"
        guard publishAlerts() else { return false }
        try completed(.alertsInOutbox)
        flushFiles()
        guard pipeline.pending.isEmpty else { return false }
        try completed(.rollupFiles)
        // A checkpoint past a bad message whose dead letter is still only in the producer's memory would
        // lose that dead letter on a crash: wait for delivery, briefly (the loop must keep polling through
        // a broker outage), and otherwise postpone.
        guard deadLetters.delivered(timeoutMs: reason == "shutdown" ? 5_000 : 200) else {
            postpone("dead letters not yet delivered (broker unreachable?); checkpoints and commits wait for them",
                     outstanding: deadLetters.outstanding)
            return false
        }
        try completed(.deadLettersDelivered)
        // Dead letters refused by the topic (seen in the delivery reports just served) are in the spill file.
        guard deadLetters.writeSpill() else { return false }
        try completed(.deadLettersSpilled)
        if changelog != nil {
            guard try writeChangelog(timeoutMs: urgent ? 10_000 : 2_000) else {
                postpone("changelog records not yet acknowledged (broker unreachable?); checkpoints and commits wait for them", outstanding: nil)
                return false
            }
            try completed(.changelogAcknowledged)
        }
        compactNamesIfDue()
        try completed(.namesCompacted)
        do {
            try DurableFile.makeDirectories(config.state.dir)
            try local.write(pipeline, held: ownership.held, includeAssigned: !changelogMode) { () throws(DaemonFailure) in
                try loop.faults?.compactingCheckpoint()
            }
        } catch let failure as DaemonFailure {
            throw failure
        } catch {
            stateWriteFailed("the checkpoint", error)
            return false
        }
        // In changelog mode the assigned partitions' ids and rows were saved with their records.
        if !changelogMode { pipeline.markSaved() }
        ownership.markSaved()
        if loop.checkpointPostponed {
            log.notice("dead letters and changelog records delivered; checkpoints and commits resume")
            loop.checkpointPostponed = false
        }
        stateWriteSucceeded()
        try completed(.checkpointWritten)
        alerting.publisher.checkpointed()
        try completed(.outboxCleared)
        commitAssigned()
        try completed(.offsetsCommitted)
        do {
            try local.removeExpiredIds(pipeline, held: ownership.held, includeAssigned: !changelogMode) { _ in
                try loop.faults?.removingExpiredIds()
            }
        } catch let failure as DaemonFailure {
            throw failure
        } catch {
            // Only disk space is lost (the files are read again and deleted at the next checkpoint).
            log.warning("cannot delete expired de-duplication ids", metadata: ["error": "\(error)"])
        }
        try completed(.expiredIdsRemoved)
        return true
    }

    /// The polling thread's CPU time (the cost of a checkpoint, whatever else the machine does).
    private func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private func completed(_ step: CheckpointStep) throws(DaemonFailure) {
        try loop.faults?.completed(step)
    }

    private func postpone(_ message: String, outstanding: Int?) {
        if !loop.checkpointPostponed {
            log.warning("\(message)", metadata: outstanding.map { ["outstanding": "\($0)"] } ?? [:])
        }
        loop.checkpointPostponed = true
    }

    /// Moves new alerts (the pipeline's and the alert shards') into the outbox and onto the producer;
    /// false when the outbox cannot be written (then no checkpoint may be taken, or a restart would forget
    /// the alerts).
    @discardableResult
    func publishAlerts(consumedNanos: Int64? = nil) -> Bool {
        do {
            try alerting.publish(pipelineEngine: pipeline.alerts, consumedNanos: consumedNanos)
            return true
        } catch {
            // The outbox is in the state folder: the same trouble as a checkpoint that cannot be written.
            stateWriteFailed("alerts to the outbox", error)
            return false
        }
    }

    /// Every partition this instance consumes, with its next offset (-1: not known yet) and its windows'
    /// watermark (`.min` for the spend topic, which has no windows): the usage partitions in the pipeline
    /// and, in spend mode, the spend-topic partitions of its alert shards.
    var heldPartitions: [(tp: TopicPartition, next: Int64, watermark: EpochMillis)] {
        var out = pipeline.assigned.map { (TopicPartition(topic: config.kafka.topics[$0.topicIndex], partition: $0.state.partition),
                                           $0.state.nextOffset, $0.state.windows.watermark) }
        if let spendTopic = config.kafka.spendTopic {
            for s in alerting.shards.byIndex.values { out.append((TopicPartition(topic: spendTopic, partition: s.index), s.nextOffset, .min)) }
        }
        return out
    }

    func commitAssigned(only: Set<TopicPartition>? = nil) {
        guard let consumer else { return }
        var offsets: [TopicPartitionOffset] = []
        var metadata: [String] = []
        // At shutdown the claim says the rows wait in our checkpoint.
        let claim = loop.shuttingDown ? OwnershipClaim.checkpointed(pipeline.instance) : .owned(pipeline.instance)
        for (tp, next, watermark) in heldPartitions {
            if let only, !only.contains(tp) { continue }
            // At shutdown the metadata changes to "checkpointed" even when the offset did not move.
            guard next >= 0, loop.shuttingDown || ownership.committed[tp] != next else { continue }
            offsets.append(TopicPartitionOffset(tp, offset: next))
            metadata.append(claim.metadata(watermark: watermark))
        }
        guard !offsets.isEmpty else { return }
        do {
            try consumer.commit(offsets, metadata: metadata)
            for o in offsets { ownership.committed[TopicPartition(topic: o.topic, partition: o.partition)] = o.offset }
            if loop.shuttingDown { loop.refusedShutdownCommit = nil }
        } catch {
            log.warning("offset commit failed; retried at the next checkpoint", metadata: ["error": "\(error)"])
            // Only a refusal for a rebalance is worth staying in the group for: the member takes part in it
            // and commits once it rejoined. With the brokers out of reach, waiting would only delay the stop.
            if loop.shuttingDown && (error as? KafkaError)?.code == KafkaError.rebalanceInProgress {
                loop.refusedShutdownCommit = (offsets, metadata)
            }
        }
    }

    func publishProgress() {
        let metrics = pipeline.metrics
        let assigned = pipeline.assignedCount
        let open = pipeline.openRowCount
        let internedNames = pipeline.internedNames, internedBytes = pipeline.internedBytes, dedupIds = pipeline.dedupIdCount
        let stateBytes = loop.stateBytes, memoryPaused = flow.memoryOver
        let pending = pipeline.pending.count
        let cp = ops.checkpoints
        let publisher = alerting.publisher
        let alertsPublished = publisher.published, alertsFailed = publisher.failed, alertsRejected = publisher.rejected
        let spill = deadLetters.spill
        let spilled = spill.spilled, spillDropped = spill.dropped, spillBytes = spill.bytes
        let outboxDepth = publisher.outboxDepth, lastAlert = publisher.lastAlert
        let alertLatency = publisher.latency
        let openWindows = pipeline.openWindowCount
        let clRecords = changelog?.store.recordsWritten ?? 0, clBytes = changelog?.store.bytesWritten ?? 0
        let shards = alerting.shards
        let flow = flow
        let spendSeries = pipeline.spendSeries
        let (budgets, outcomeLimits) = ruleGauges()
        progress.update {
            if $0.spend.seriesVersion != spendSeries.version || $0.spend.series.labelNames.isEmpty {
                $0.spend.series = spendSeries.snapshot()
                $0.spend.seriesVersion = spendSeries.version
            }
            $0.spend.budgets = budgets
            $0.spend.outcomeLimits = outcomeLimits
            $0.scaleOut.changelogRecords = clRecords
            $0.scaleOut.changelogBytes = clBytes
            $0.scaleOut.alertShards = shards.byIndex.count
            $0.scaleOut.spendApplied = shards.applied
            $0.scaleOut.spendSkipped = shards.skipped
            $0.pipeline.metrics = metrics
            $0.consumer.assignedPartitions = assigned
            $0.pipeline.openRows = open
            $0.memory.internedNames = internedNames
            $0.memory.internedBytes = internedBytes
            $0.memory.dedupIds = dedupIds
            $0.memory.stateBytes = stateBytes
            $0.memory.paused = memoryPaused
            $0.pipeline.pendingFiles = pending
            $0.checkpoint.written = cp.count
            $0.alerts.published = alertsPublished
            $0.alerts.failed = alertsFailed
            $0.alerts.rejected = alertsRejected
            $0.deadLetters.spilled = spilled
            $0.deadLetters.dropped = spillDropped
            $0.deadLetters.bytes = spillBytes
            $0.alerts.outboxDepth = Int64(outboxDepth)
            $0.alerts.last = lastAlert
            $0.alerts.latencySeconds = alertLatency
            $0.consumer.joined = assigned > 0 || $0.consumer.joined
            $0.pipeline.openWindows = openWindows
            $0.disk.rollupFailing = flow.rollupFailing
            $0.disk.rollupFailures = flow.rollupFailures
            $0.disk.stateFailing = flow.stateFailing
            $0.disk.stateFailures = flow.stateFailures
            fillOperations(&$0)
        }
    }

    /// The budgets and outcome limits this instance judges: the pipeline's engine, or in spend mode only
    /// the alert shards it owns (each rule lives in one shard, so `sum by (rule)` over instances is right).
    private func ruleGauges() -> ([BudgetGauge], [OutcomeLimitGauge]) {
        let rules = alerting.rules
        guard !rules.budgets.isEmpty || !rules.outcomeLimits.isEmpty else { return ([], []) }
        let now = clock.now()
        if !pipeline.spendMode {
            return (pipeline.alerts.budgetGauges(now: now), pipeline.alerts.outcomeLimitGauges(now: now))
        }
        var b: [BudgetGauge] = [], o: [OutcomeLimitGauge] = []
        for shard in alerting.shards.byIndex.values.sorted(by: { $0.index < $1.index }) {
            b += shard.engine.budgetGauges(now: now)
            o += shard.engine.outcomeLimitGauges(now: now)
        }
        return (b, o)
    }
}
