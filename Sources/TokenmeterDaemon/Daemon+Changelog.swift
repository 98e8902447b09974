import TokenmeterCore
import TokenmeterKafka

/// What a partition's last changelog record said of its offsets, to skip partitions that did not change
/// since (no new offset, no watermark move, no unsaved row).
struct RecordMark: Equatable {
    var offset: Int64
    var streamTime: EpochMillis
    var watermark: EpochMillis
    init(_ s: PartitionState) { offset = s.nextOffset; streamTime = s.windows.streamTime; watermark = s.windows.watermark }
}

extension ChangelogRecord {
    /// A base found by a restore with its deltas applied (names interned into `pipeline`).
    func chain(_ pipeline: Pipeline) throws -> Checkpoint.Chain {
        var chain = try Checkpoint.Chain(base: try pipeline.parseCheckpoint(state))
        for d in deltas { try chain.apply(try pipeline.parseCheckpoint(d.state)) }
        return chain
    }
}

/// Spend deltas of a written changelog record, sent to the alert shards once that record is acknowledged.
struct SpendInFlight {
    var source: TopicPartition
    var from: Int64
    var to: Int64
    var out: [ChangelogRecord.SpendOut]
}

/// Changelog mode (`kafka.changelog_topic`): partition state lives in Kafka.
///
/// The order inside a checkpoint, and why each crash is harmless:
///  1. rollup files of closed windows (as always): a successor replaying from the last record re-closes
///     them into the same names (files are named by the group in this mode) with the same rows;
///  2. every changed partition's record produced and ACKNOWLEDGED: from now on a successor starts here;
///  3. the records' spend deltas produced and acknowledged: a successor restoring the record re-sends
///     them, and a shard applies a source range only once;
///  4. local checkpoint (a cache, and the alert outbox's bookkeeping) and the Kafka commit.
/// Nothing of a partition is ever handed over as partial rows: the next owner restores the full state.
extension Daemon {
    var changelogMode: Bool { changelog != nil }

    /// Steps 2 and 3 (see above). False when something is not acknowledged within `timeoutMs`: no local
    /// checkpoint or commit then; what was queued stays queued (the producer never gives up) and the next
    /// call first waits for it. Throws when the changelog can no longer be trusted (see `DaemonFailure`).
    func writeChangelog(timeoutMs: Int32) throws(DaemonFailure) -> Bool {
        guard let book = changelog else { return true }
        let changelog = book.store
        try failIfChangelogBroken()
        // A record must carry its range's spend: without the shard count no record is written at all.
        if spendMode && spendRouter() == nil {
            log.warning("cannot read the spend topic's partition count yet; checkpoints wait")
            return false
        }
        // Whatever an earlier call queued goes first: records before their deltas, deltas before newer records.
        guard changelog.flush(timeoutMs: timeoutMs) else { return false }
        if !book.spendInFlight.isEmpty {
            try sendSpend()
            guard changelog.flush(timeoutMs: timeoutMs) else { return false }
        }
        for (t, st) in pipeline.assigned where st.nextOffset >= 0 {
            let tp = TopicPartition(topic: config.kafka.topics[t], partition: st.partition)
            let mark = RecordMark(st)
            let spend = takeSpendOut(topicIndex: t, partition: st.partition)
            guard book.lastRecord[tp] != mark || st.windows.hasUnsavedRows || !spend.isEmpty else { continue }
            let from = book.lastRecord[tp]?.offset ?? -1
            var chunks = book.idChunks[tp] ?? IdChunks()
            let sequence = chunks.sequence + 1
            // A base when the partition has no chain here yet (restored, or new) or its deltas have grown to
            // the base's size: so what a restore reads stays under about twice the base.
            var chain = book.rowChains[tp]
            let isBase = chain.map { $0.deltaBytes >= max($0.baseBytes, book.compactAfter) } ?? true
            let chainId = isBase ? UInt64.random(in: 1...UInt64.max) : chain!.id
            let state = Checkpoint.encode([(st, isBase ? .whole : .changes)], dimensions: pipeline.dimensions, alertState: [],
                                          sequence: sequence, base: isBase ? 0 : chain!.baseSequence, includeDedup: false)
            var record = ChangelogRecord(nextOffset: st.nextOffset, state: state, spendFrom: from, spend: spend)
            record.chain = chainId
            do {
                // Stale chunks go first, then chunks out of the window, then this record's ids, then the record.
                let expired = chunks.live.filter { $0.end <= chunks.recordedExpiredThrough }
                for n in chunks.stale + expired.map(\.sequence) {
                    try changelog.produce(key: ChangelogRecord.idChunkKey(topic: tp.topic, partition: tp.partition, sequence: n),
                                          partitionNumber: tp.partition, value: [])
                }
                chunks.stale = []
                chunks.live.removeAll { c in expired.contains { $0.sequence == c.sequence } }
                let ids = st.dedup.unsaved
                if !ids.isEmpty {
                    let first = st.dedup.unsavedFrom
                    try changelog.produce(key: ChangelogRecord.idChunkKey(topic: tp.topic, partition: tp.partition, sequence: sequence),
                                          partitionNumber: tp.partition, value: DedupChunk.encode(sequence: sequence, from: first, ids: ids))
                    chunks.live.append((sequence, first + ids.count))
                }
                if isBase {
                    try changelog.produce(key: ChangelogRecord.key(topic: tp.topic, partition: tp.partition),
                                          partitionNumber: tp.partition, record: record)
                    if chain != nil { try loop.faults?.compactingCheckpoint() }
                    // The replaced chain's deltas go after the base that replaces them (a crash between leaves
                    // them stale: a restore skips them, and they go after the next base).
                    for n in (chain?.deltas ?? []) + (book.staleDeltas[tp] ?? []) {
                        try changelog.produce(key: ChangelogRecord.deltaKey(topic: tp.topic, partition: tp.partition, sequence: n),
                                              partitionNumber: tp.partition, value: [])
                    }
                    book.staleDeltas[tp] = nil
                    chain = RowChain(id: chainId, baseSequence: sequence, baseBytes: state.count)
                } else {
                    try changelog.produce(key: ChangelogRecord.deltaKey(topic: tp.topic, partition: tp.partition, sequence: sequence),
                                          partitionNumber: tp.partition, record: record)
                    chain!.deltaBytes += state.count
                    chain!.deltas.append(sequence)
                }
            } catch let failure as DaemonFailure {
                throw failure
            } catch {
                log.error("cannot queue a changelog record; checkpoints wait", metadata: ["partition": "\(tp)", "error": "\(error)"])
                book.unrecordedSpend[tp, default: []].insert(contentsOf: spend, at: 0)
                return false
            }
            chunks.sequence = sequence
            chunks.recordedExpiredThrough = st.dedup.expiredThrough
            book.idChunks[tp] = chunks
            book.rowChains[tp] = chain
            // Queued on a producer that never drops a record (or the daemon stops): the ids and rows count as saved.
            pipeline.markSaved(topicIndex: t, partition: st.partition)
            book.lastRecord[tp] = mark
            if !spend.isEmpty { book.spendInFlight.append(SpendInFlight(source: tp, from: from, to: st.nextOffset, out: spend)) }
        }
        guard produceShardRecords(timeoutMs: timeoutMs), changelog.flush(timeoutMs: timeoutMs) else { return false }
        try failIfChangelogBroken()
        if !book.spendInFlight.isEmpty {
            try sendSpend()
            guard changelog.flush(timeoutMs: timeoutMs) else { return false }
        }
        try failIfChangelogBroken()
        return true
    }

    /// A record the broker refused for good: the order of records and deltas can no longer be promised.
    /// Stopping is the recovery (systemd restarts us; a restart resumes from what the changelog holds,
    /// exactly as after a kill -9).
    func failIfChangelogBroken() throws(DaemonFailure) {
        guard let e = changelog?.store.deliveryFailed else { return }
        throw .changelogBroken("\(e)")
    }

    /// The partition's spend deltas routed to alert shards, plus any an earlier failed attempt kept.
    func takeSpendOut(topicIndex t: Int, partition: Int32) -> [ChangelogRecord.SpendOut] {
        let tp = TopicPartition(topic: config.kafka.topics[t], partition: partition)
        var out = changelog?.unrecordedSpend.removeValue(forKey: tp) ?? []
        out += routeSpend(topicIndex: t, partition: partition)
        return out
    }

    /// The newest changelog records of `partitions` (nil: the changelog cannot be read now; retry later).
    func changelogRecords(_ partitions: [TopicPartition]) -> [TopicPartition: ChangelogRecord]? {
        guard let changelog = changelog?.store else { return [:] }
        do {
            let keys = partitions.map { (key: changelogKey($0), partitionNumber: $0.partition) }
            // Under the 30 s systemd watchdog: the read runs on the polling thread.
            let found = try changelog.newest(keys, timeoutMs: 20_000)
            var out: [TopicPartition: ChangelogRecord] = [:]
            for tp in partitions {
                if let r = found[changelogKey(tp)] { out[tp] = r }
            }
            return out
        } catch {
            log.warning("cannot read the changelog yet; the partitions start once it can be read", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Puts a partition's state from its changelog record into the pipeline; returns where to resume.
    func startFromRecord(_ record: ChangelogRecord, _ tp: TopicPartition, topicIndex t: Int, wallNow: EpochMillis) -> Int64? {
        do {
            let decoded = try pipeline.restoreCheckpoint(try record.chain(pipeline), restoreAlerts: false)
            guard var st = decoded.partitions.first, st.topic == tp.topic, st.partition == tp.partition else {
                throw DaemonError("the record holds another partition")
            }
            st.lastMessageWall = wallNow
            // The rows are as the changelog holds them; the next record is a base of a new chain all the same.
            st.windows.markSaved()
            var chunks = IdChunks(sequence: decoded.sequence)
            // Chunks numbered past the record belong to a record never written: their events come again.
            // The others go back in their order (arrival order), which the set's decisions depend on.
            for c in record.idChunks {
                if c.sequence <= decoded.sequence {
                    st.dedup.restore(c.ids, from: c.from)
                    chunks.live.append((c.sequence, c.end))
                } else {
                    chunks.stale.append(c.sequence)
                }
                chunks.sequence = max(chunks.sequence, c.sequence)
            }
            chunks.recordedExpiredThrough = st.dedup.expiredThrough
            pipeline.assign(st, topicIndex: t)
            changelog?.idChunks[tp] = chunks
            changelog?.rowChains[tp] = nil
            // Deltas past the head would be numbered again by this instance: delete them with the chain's.
            changelog?.staleDeltas[tp] = record.deltas.compactMap { Checkpoint.sequences($0.state)?.sequence } + record.staleDeltas
            changelog?.lastRecord[tp] = RecordMark(st)
            // The record's deltas may not have reached their shards before its writer stopped: send them
            // again (a shard skips a range it already applied).
            let head = record.head
            if !head.spend.isEmpty {
                changelog?.spendInFlight.append(SpendInFlight(source: tp, from: head.spendFrom, to: head.nextOffset, out: head.spend))
            }
            log.info("partition restored from the changelog", metadata: ["partition": "\(tp)", "offset": "\(st.nextOffset)",
                                                                        "open_rows": "\(st.windows.openRowCount)", "ids": "\(st.dedup.count)",
                                                                        "deltas": "\(record.deltas.count)", "id_chunks": "\(chunks.live.count)"])
            return st.nextOffset >= 0 ? st.nextOffset : nil
        } catch {
            // A record this version cannot read: starting empty would lose its rows silently, so stop.
            fail(.unreadableChangelogRecord(partition: "\(tp)", reason: "\(error)"))
            return nil
        }
    }

    /// Forgets what this instance knew about partitions it no longer owns: their successor restores them
    /// from the changelog, and re-sends the deltas of the record it restores.
    func forgetChangelogState(_ partitions: [TopicPartition]) {
        let gone = Set(partitions)
        for tp in partitions {
            changelog?.lastRecord[tp] = nil; changelog?.unrecordedSpend[tp] = nil; changelog?.idChunks[tp] = nil
            changelog?.rowChains[tp] = nil; changelog?.staleDeltas[tp] = nil
            if tp.topic == config.kafka.spendTopic { alerting.shards.byIndex[tp.partition] = nil }
        }
        changelog?.spendInFlight.removeAll { gone.contains($0.source) }
    }
}
