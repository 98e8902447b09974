import TokenmeterCore
import TokenmeterKafka

/// Rebalances: partitions arrive (ownership.restored from the checkpoint, handed over by their previous owner, or
/// fresh) and leave (handed over as partial rows, kept in the checkpoint at shutdown, or lost). All of it
/// runs on the polling thread, inside librdkafka's rebalance callback or the loop.
extension Daemon: RebalanceHandler {

    public func partitionsAssigned(_ partitions: [TopicPartition]) -> [Int64?] {
        // A shutdown waiting for its refused commit (`awaitRefusedShutdownCommit`): its last checkpoint is
        // written and nothing more is counted, so the assignment is left alone (no state, no checkpoint).
        if loop.shuttingDown {
            retryRefusedShutdownCommit()
            return []
        }
        ops.readiness.joinedGroup = true
        ops.readiness.brokersDown = false
        commitUnreleased()
        ownership.awaitingHandover.removeAll()
        let view = handoverState(partitions)
        let (waiting, mine) = (view.waiting, view.mine)
        let deadline = clock.monotonicMillis() + config.kafka.handoverTimeout.millis
        // Only partitions whose committed metadata already names us start now. Every other one is first
        // claimed (`owned:<us>` committed, see `resolveHandovers`) and only then fetched: a member that
        // consumed without a claim on record could be revoked before it commits, and its late `released`
        // commit would then arrive after the next owner had read the offsets and started from the old
        // ones (seen: rows counted twice in the three-instance test).
        // In changelog mode every partition is deferred: it starts once its changelog records are read
        // (retried from the loop when the changelog cannot be read yet), never inside this callback.
        let deferred = changelogMode ? Set(partitions) : Set(partitions.filter { waiting.contains($0) || !mine.contains($0) })
        for tp in deferred { ownership.awaitingHandover[tp] = deadline }
        ownership.lastHandoverCheck = 0
        if !waiting.isEmpty && !changelogMode {
            log.info("waiting for the previous owner to hand over; other partitions start now",
                     metadata: ["partitions": "\(waiting.map(\.description).sorted().joined(separator: ","))"])
        }
        let starts = startPartitions(partitions.filter { !deferred.contains($0) }, view: view)
        var out: [Int64?] = []
        var it = starts.makeIterator()
        for tp in partitions { out.append(deferred.contains(tp) ? KafkaConsumer.deferAssignment : it.next()!) }
        log.info("partitions assigned", metadata: ["partitions": "\(partitions.map { "\($0)" }.joined(separator: ","))"])
        handOverUnassignedRestored()
        flushFiles()
        return out
    }

    /// Partitions whose previous owner handed them over (or timed out) since the assignment: assigned now,
    /// together with those already consuming, each at the exact offset its rows end.
    func resolveHandovers() {
        guard !ownership.awaitingHandover.isEmpty, let consumer else { return }
        let view = handoverState(Array(ownership.awaitingHandover.keys))
        let (handedOver, committedNow) = (view.released, view.committed)
        // In changelog mode nobody is waited for: a revoked owner writes its records inside its revoke
        // callback, before the group can finish the rebalance, and a dead one wrote its last already.
        let (ready, timedOut) = ownership.startable(waiting: changelogMode ? [] : view.waiting, now: clock.monotonicMillis())
        for tp in timedOut {
            log.warning("previous owner did not hand over in time; starting from the committed offset", metadata: ["partition": "\(tp)"])
        }
        guard !ready.isEmpty else { return }
        guard let records = changelogRecords(ready) else { return }
        // The claim: `owned:<us>` at the committed offset (the position does not move) before anything is
        // fetched. Nothing committed yet (a new group): at the position `auto.offset.reset` names, see
        // `resetPosition`. Refused (the group is rebalancing again) or the position unknown: retried at the
        // next check, nothing fetched meanwhile.
        // The claim carries the watermark read with the offsets, so the chain of owners keeps it.
        var claims: [TopicPartitionOffset] = []
        var metadata: [String] = []
        for tp in ready {
            guard let offset = handedOver[tp] ?? committedNow[tp] ?? resetPosition(tp, consumer) else { return }
            claims.append(TopicPartitionOffset(tp, offset: offset))
            metadata.append(OwnershipClaim.owned(pipeline.instance).metadata(watermark: view.watermarks[tp] ?? .min))
        }
        do {
            try consumer.commit(claims, metadata: metadata)
            for c in claims { ownership.committed[c.topicPartition] = c.offset }
        } catch {
            log.debug("claim of assigned partitions refused; retrying", metadata: ["error": "\(error)"])
            return
        }
        for tp in ready { ownership.awaitingHandover[tp] = nil }
        _ = startPartitions(ready, view: view, records: records)
        // A record that cannot be read stops the daemon: nothing of it may be fetched.
        guard loop.fatal == nil else { return }
        let offsets = heldPartitions.map { TopicPartitionOffset($0.tp, offset: $0.next >= 0 ? $0.next : KafkaConsumer.storedOffset) }
        do {
            try consumer.assign(offsets)
            log.info("handed-over partitions assigned", metadata: ["partitions": "\(ready.map(\.description).sorted().joined(separator: ","))"])
        } catch {
            log.error("cannot assign handed-over partitions", metadata: ["error": "\(error)"])
        }
    }

    /// Where a partition with no committed offset starts, for its first commit (the claim). A commit at 0
    /// would override `auto.offset.reset = "latest"`: fetching starts at a committed offset, and the reset
    /// applies only when there is none. So with `latest` (`largest`, `end`) the claim takes the partition's
    /// high watermark, asked of the broker now; otherwise 0, which fetching moves to the log start when the
    /// log no longer begins at 0. The spend topic always starts at the beginning: its messages are this
    /// group's own. nil when the broker does not answer (the claim is retried).
    func resetPosition(_ tp: TopicPartition, _ consumer: any GroupConsumer) -> Int64? {
        guard loop.offsetResetLatest, tp.topic != config.kafka.spendTopic else { return 0 }
        do {
            return try consumer.queryWatermarks(topic: tp.topic, partition: tp.partition, timeoutMs: 5_000).high
        } catch {
            log.debug("cannot read the partition's end for auto.offset.reset = latest; retrying", metadata: ["partition": "\(tp)", "error": "\(error)"])
            return nil
        }
    }

    /// Takes ownership of `partitions` in the pipeline; returns the start offset of each (nil = committed).
    /// `view` holds the group's committed offsets and claims as read for the hand-over check.
    /// `records`: the partitions' newest changelog records (changelog mode), which decide over everything else.
    func startPartitions(_ partitions: [TopicPartition], view: HandoverView,
                         records: [TopicPartition: ChangelogRecord] = [:]) -> [Int64?] {
        let (handedOver, committedNow) = (view.released, view.committed)
        let wallNow = clock.now()
        var starts: [Int64?] = []
        for tp in partitions {
            if tp.topic == config.kafka.spendTopic { starts.append(startShard(tp, record: records[tp])); continue }
            guard let t = pipeline.topicIndex(tp.topic) else { starts.append(nil); continue }
            if changelogMode {
                if let r = records[tp] {
                    starts.append(startFromRecord(r, tp, topicIndex: t, wallNow: wallNow))
                } else if var s = ownership.localCache.removeValue(forKey: tp), s.nextOffset >= (committedNow[tp] ?? 0) {
                    // No record yet: the first start in changelog mode, from this host's own checkpoint
                    // (its ids are saved locally, not yet on the changelog).
                    s.lastMessageWall = wallNow
                    s.dedup.markUnsaved()
                    pipeline.assign(s, topicIndex: t)
                    changelog?.lastRecord[tp] = nil
                    starts.append(s.nextOffset >= 0 ? s.nextOffset : nil)
                } else {
                    // Never recorded: nothing was counted from it before the committed offset except what
                    // is in rollup files already.
                    changelog?.lastRecord[tp] = nil
                    pipeline.assign(pipeline.freshState(topicIndex: t, partition: tp.partition, nextOffset: -1, wallNow: wallNow), topicIndex: t)
                    starts.append(nil)
                }
                continue
            }
            if var s = ownership.restored.removeValue(forKey: tp) {
                if s.nextOffset >= 0, let c = committedNow[tp], c > s.nextOffset {
                    // Another member consumed past our checkpoint while we did not own the partition: our
                    // rows end at our offset, where its rows begin. Write ours as partial rows, start afresh.
                    pipeline.assign(s, topicIndex: t)
                    pipeline.release(topicIndex: t, partition: tp.partition, handover: true)
                    log.info("checkpointed partition moved on without us; its rows written as partial files",
                             metadata: ["partition": "\(tp)", "checkpoint_offset": "\(s.nextOffset)", "committed": "\(c)"])
                    // The windows we closed before the checkpoint, and those the others closed since, stay closed.
                    var fresh = pipeline.freshState(topicIndex: t, partition: tp.partition, nextOffset: -1, wallNow: wallNow)
                    fresh.windows.resume(streamTime: s.windows.streamTime, watermark: max(s.windows.watermark, view.watermarks[tp] ?? .min))
                    pipeline.assign(fresh, topicIndex: t)
                    starts.append(nil)
                } else {
                    // Our checkpoint is at or past the committed offset (a crash between checkpoint and
                    // commit leaves it past): resume exactly where the checkpoint's rows end.
                    s.lastMessageWall = wallNow
                    pipeline.assign(s, topicIndex: t)
                    starts.append(s.nextOffset >= 0 ? s.nextOffset : nil)
                }
            } else {
                var fresh = pipeline.freshState(topicIndex: t, partition: tp.partition, nextOffset: -1, wallNow: wallNow)
                // What this process kept of the partition when a rebalance took it away: its ids (duplicates
                // straddling the rebalance are caught) and its event time (windows it closed stay closed).
                if let kept = ownership.retained.removeValue(forKey: tp) { fresh = kept.resume(fresh) }
                // Our own hand-over whose `released` commit the broker refused (the group was rebalancing):
                // our rows up to it are in partial files, while the group's committed offset is older and
                // still carries our claim. The partition continues where our rows end; starting from the
                // committed offset would count that stretch again. Never committed later either: from now
                // on this state's checkpoints commit the partition, and an older `released` would move it back.
                let ownHandover = ownership.unreleased.removeValue(forKey: tp)
                // Windows the previous owners closed (as their last commit says) stay closed too.
                fresh.windows.resume(streamTime: .min, watermark: max(view.watermarks[tp] ?? .min, ownHandover?.watermark ?? .min))
                if let o = handedOver[tp] ?? ownHandover?.offset {
                    // Start exactly where the previous owner's rows end (it may have committed after we
                    // read the group's offsets for this assignment).
                    fresh.nextOffset = o
                    pipeline.assign(fresh, topicIndex: t)
                    starts.append(o)
                    continue
                }
                pipeline.assign(fresh, topicIndex: t)
                starts.append(nil)
            }
        }
        return starts
    }

    /// A stop that comes while a rebalance is under way: the partitions just handed over are in partial
    /// files, but the broker refused their `released:` commit until the group is back (`partitionsAssigned`
    /// sends it). Leaving at once would leave their next owner waiting until `kafka.handover_timeout`, then
    /// starting from the older committed offset and counting those rows twice (seen in the three-instance
    /// test once consuming got faster). So the loop goes on, rejoining the group, until the commit is
    /// taken, for at most the hand-over timeout or 10 s (the stop's own deadline is 20 s by default).
    func awaitUnreleasedCommit() throws {
        guard consumer != nil, !ownership.unreleased.isEmpty else { return }
        log.info("stopping once the partitions handed over during the rebalance are committed",
                 metadata: ["partitions": "\(ownership.unreleased.count)"])
        try stayInGroup(while: { !ownership.unreleased.isEmpty && consumer != nil }) { try iterate() }
        if !ownership.unreleased.isEmpty {
            log.warning("stopping with partitions handed over but not committed; their next owner resumes after kafka.handover_timeout",
                        metadata: ["partitions": "\(ownership.unreleased.count)"])
        }
    }

    /// A shutdown whose commit the broker refused (a rebalance under way: another instance joining) would
    /// leave our older claim on record: the partitions' next owner would wait `kafka.handover_timeout`, then
    /// start from that older offset, and whatever our checkpoint holds past it would be counted again once
    /// we restart. So the consumer stays in the group until the commit is taken, at most
    /// `kafka.handover_timeout` or 10 s, as for a `released` commit (`awaitUnreleasedCommit`). Polling serves
    /// the rebalance; messages polled now are not counted (the next owner reads them from the checkpoint's
    /// offsets). The commit is sent again from the assign callback (`partitionsAssigned`), once we are back
    /// in the group: one sent while the group still joins is refused, and one answered after the join moved
    /// the generation on makes librdkafka take the assignment for lost and join again.
    func awaitRefusedShutdownCommit() {
        guard let consumer, let refused = loop.refusedShutdownCommit else { return }
        log.info("stopping once the shutdown commit is taken (refused during a rebalance)",
                 metadata: ["partitions": "\(refused.offsets.count)"])
        stayInGroup(while: { loop.refusedShutdownCommit != nil }) {
            _ = consumer.poll(maxMessages: 2000, timeoutMs: 100) { _ in }
        }
        if let refused = loop.refusedShutdownCommit {
            log.warning("stopping with the shutdown commit refused; the partitions' next owner resumes after kafka.handover_timeout",
                        metadata: ["partitions": "\(refused.offsets.count)"])
        }
    }

    /// `stayInGroup` with this daemon's hand-over timeout and monotonic clock.
    private func stayInGroup(while waiting: () -> Bool, _ step: () throws -> Void) rethrows {
        try TokenmeterDaemon.stayInGroup(handoverTimeoutMillis: config.kafka.handoverTimeout.millis,
                                         now: { clock.monotonicMillis() }, while: waiting, step)
    }

    /// From the assign callback while a shutdown waits (`awaitRefusedShutdownCommit`): back in the group.
    private func retryRefusedShutdownCommit() {
        guard let refused = loop.refusedShutdownCommit, let consumer else { return }
        do {
            try consumer.commit(refused.offsets, metadata: refused.metadata)
            loop.refusedShutdownCommit = nil
            log.info("committed the shutdown's offsets", metadata: ["partitions": "\(refused.offsets.count)"])
        } catch {
            log.warning("shutdown commit refused again", metadata: ["error": "\(error)"])
        }
    }

    /// Commits the offsets of partitions we handed over while the broker refused commits.
    func commitUnreleased() {
        guard !ownership.unreleased.isEmpty, let consumer else { return }
        flushFiles()
        guard pipeline.pending.isEmpty else { return }
        let releases = ownership.unreleased.sorted { TopicPartition.ordered($0.key, $1.key) }
        let offsets = releases.map { TopicPartitionOffset($0.key, offset: $0.value.offset) }
        let claim = OwnershipClaim.released(pipeline.instance)
        do {
            try consumer.commit(offsets, metadata: releases.map { claim.metadata(watermark: $0.value.watermark) })
            log.info("committed the offsets of partitions handed over during the rebalance", metadata: ["partitions": "\(offsets.count)"])
            ownership.unreleased.removeAll()
        } catch {
            log.warning("cannot commit handed-over offsets yet", metadata: ["error": "\(error)"])
        }
    }

    /// The handover protocol: a partition whose committed metadata says another live instance still owns
    /// it (`owned:<other>`) may have rows beyond the committed offset in that instance's memory; that
    /// instance writes them as partial files and commits `released:<other>` as soon as it is back in the
    /// group. Until then (or `kafka.handover_timeout`, after which the other instance is taken for dead)
    /// the partition is not fetched. See `HandoverView` for what is read from the committed offsets.
    func handoverState(_ partitions: [TopicPartition]) -> HandoverView {
        guard let consumer, !partitions.isEmpty else { return HandoverView() }
        do {
            let got = try consumer.committedWithMetadata(partitions, timeoutMs: 10_000)
            return HandoverView(partitions, committed: got, instance: pipeline.instance)
        } catch {
            log.warning("cannot read committed offsets; resuming from the checkpoint", metadata: ["error": "\(error)"])
            return HandoverView(unreadable: partitions)
        }
    }

    /// Partitions in our checkpoint that Kafka gave to another instance: their open rows are written as
    /// partial files now, so that nothing counted before the committed offset is lost.
    /// Partitions assigned to us but not started yet (awaiting their claim or hand-over) keep their
    /// checkpoint state: `startPartitions` decides for them once they start.
    ///
    /// Where the group's commit still carries our claim at or before the checkpoint's offset, the stop that
    /// wrote the checkpoint could not commit it (the broker refused commits during a rebalance): the new
    /// owner is waiting for us, and would otherwise start from the older offset after
    /// `kafka.handover_timeout` and count again what the partial rows hold (seen in the three-instance
    /// test). So those are released at the checkpoint's offset, once a checkpoint without them is durable,
    /// as on a revoke.
    func handOverUnassignedRestored() {
        let elsewhere = ownership.restored.keys.filter { ownership.awaitingHandover[$0] == nil }.sorted(by: TopicPartition.ordered)
        guard !elsewhere.isEmpty else { return }
        let view = handoverState(elsewhere)
        var releases: [(TopicPartition, Release)] = []
        for tp in elsewhere {
            guard let s = ownership.restored.removeValue(forKey: tp), let t = pipeline.topicIndex(tp.topic) else { continue }
            pipeline.assign(s, topicIndex: t)
            pipeline.release(topicIndex: t, partition: tp.partition, handover: true)
            if s.nextOffset >= 0, view.mine.contains(tp), let c = view.committed[tp], c <= s.nextOffset {
                releases.append((tp, Release(offset: s.nextOffset, watermark: s.windows.watermark)))
            }
        }
        log.info("wrote partial rows of checkpointed partitions now owned elsewhere", metadata: ["partitions": "\(elsewhere.count)"])
        flushFiles()
        guard !releases.isEmpty else { return }
        for (tp, r) in releases { ownership.unreleased[tp] = r }
        // Not committed unless the checkpoint without them is durable: a restart from the older one would
        // resume them at their checkpoint offset, next to their partial rows. Retried at the next assignment
        // (and before a stop) otherwise, like a release the broker refused.
        if checkpoint(reason: "rebalance") { commitUnreleased() }
    }

    public func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) {
        for tp in partitions { ownership.awaitingHandover[tp] = nil }
        log.info("partitions revoked", metadata: ["partitions": "\(partitions.map { "\($0)" }.joined(separator: ","))",
                                                  "lost": "\(lost)"])
        if changelogMode {
            partitionsRevokedWithChangelog(partitions, lost: lost)
            return
        }
        if lost {
            // The group moved on without us (e.g. a broker outage longer than the session timeout): another
            // member may own these partitions already, so nothing may be committed. What we hold beyond the
            // last checkpoint is dropped, and the checkpoint's state of each partition goes back to
            // `ownership.restored`: if the partition comes back, we resume from it; if another member consumed past
            // it, it becomes partial rows (see partitionsAssigned). Closed windows of these partitions not
            // yet on disk are dropped too: resuming from the checkpoint re-closes them identically.
            var writers = Set<String>()
            for tp in partitions {
                guard let t = pipeline.topicIndex(tp.topic) else { continue }
                pipeline.release(topicIndex: t, partition: tp.partition, handover: false)
                writers.insert(pipeline.writerName(topicIndex: t, partition: tp.partition))
                ownership.committed[tp] = nil
            }
            pipeline.dropPending(writers: writers)
            reloadFromCheckpoint(Set(partitions))
            return
        }
        if loop.shuttingDown {
            // The shutdown checkpoint already holds these partitions' open windows and offsets.
            for tp in partitions { if let t = pipeline.topicIndex(tp.topic) { pipeline.release(topicIndex: t, partition: tp.partition, handover: false) } }
            return
        }
        // Hand the windows over as partial rows, make them durable with a checkpoint that no longer holds
        // these partitions, then commit their offsets as released.
        let set = Set(partitions)
        var released: [(Int, PartitionState)] = []
        for tp in partitions {
            guard let t = pipeline.topicIndex(tp.topic), pipeline.state(topicIndex: t, partition: tp.partition) != nil else { continue }
            if let s = pipeline.release(topicIndex: t, partition: tp.partition, handover: true) {
                released.append((t, s))
                ownership.retained[tp] = RetainedPartition(s)
            }
        }
        flushFiles()
        // The checkpoint now lacks the released partitions; commit their offsets after it is durable.
        // Each release carries the partition's watermark: its next owner keeps the windows closed here closed.
        let releases = released.filter { $0.1.nextOffset >= 0 && set.contains(TopicPartition(topic: $0.1.topic, partition: $0.1.partition)) }
            .map { (TopicPartition(topic: $0.1.topic, partition: $0.1.partition), Release(offset: $0.1.nextOffset, watermark: $0.1.windows.watermark)) }
        if checkpoint(reason: "rebalance"), let consumer {
            if !releases.isEmpty {
                let claim = OwnershipClaim.released(pipeline.instance)
                do {
                    try consumer.commit(releases.map { TopicPartitionOffset($0.0, offset: $0.1.offset) },
                                        metadata: releases.map { claim.metadata(watermark: $0.1.watermark) })
                } catch {
                    // Some brokers (the mock among them) refuse commits while the group rebalances. The new
                    // owner waits for our "released" commit (awaitHandover), which we send as soon as we
                    // are back in the group.
                    log.info("commit on revoke refused; it is sent once the rebalance completes", metadata: ["error": "\(error)"])
                    for (tp, r) in releases { ownership.unreleased[tp] = r }
                }
            }
        } else {
            for (tp, r) in releases { ownership.unreleased[tp] = r }
        }
        for tp in partitions { ownership.committed[tp] = nil; ownership.awaitingHandover[tp] = nil }
    }

    /// Changelog mode: the partitions' records are written (unless the assignment was lost: another member
    /// may own them already, and what we hold past our last record is simply dropped; the successor replays
    /// it), then the partitions are let go without partial rows.
    func partitionsRevokedWithChangelog(_ partitions: [TopicPartition], lost: Bool) {
        if !lost && !loop.shuttingDown { checkpoint(reason: "rebalance") }
        var writers = Set<String>()
        for tp in partitions {
            ownership.committed[tp] = nil
            ownership.awaitingHandover[tp] = nil
            guard let t = pipeline.topicIndex(tp.topic) else { continue }
            pipeline.release(topicIndex: t, partition: tp.partition, handover: false)
            writers.insert(pipeline.writerName(topicIndex: t, partition: tp.partition))
        }
        // Closed windows not yet on disk: whoever replays from the last record closes them again, into the
        // same file names.
        if lost { pipeline.dropPending(writers: writers) }
        forgetChangelogState(partitions)
    }
}
