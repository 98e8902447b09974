import TokenmeterCore
import TokenmeterKafka

/// One alert shard this instance owns (a partition of the spend topic): the rules and keys hashed to it,
/// judged over the spend of every usage partition, whichever instance counted it.
final class AlertShard {
    let index: Int32
    let engine: AlertEngine
    /// Usage partition key -> the end of the last spend range applied from it.
    var applied: [String: Int64] = [:]
    /// The next spend-topic offset to consume (-1: not known yet, the committed offset).
    var nextOffset: Int64 = -1
    /// What the last changelog record of this shard held (offset), to skip unchanged shards.
    var recordedOffset: Int64 = .min

    init(index: Int32, engine: AlertEngine) { self.index = index; self.engine = engine }

    static let stateMagic: UInt32 = 0x4853_4D54  // "TMSH"

    func encodeState(names: StringTable) -> [UInt8] {
        var w = BinaryWriter()
        w.u32(AlertShard.stateMagic)
        w.count(applied.count)
        for (k, v) in applied.sorted(by: { $0.key < $1.key }) { w.string(k); w.i64(v) }
        engine.encodeState(into: &w, names: names)
        return w.bytes
    }

    func decodeState(_ bytes: [UInt8], names: inout StringTable) throws {
        var r = BinaryReader(bytes)
        guard try r.u32() == AlertShard.stateMagic else { throw DaemonError("not an alert shard state") }
        var a: [String: Int64] = [:]
        for _ in 0..<(try r.count()) { a[try r.string()] = try r.i64() }
        try engine.decodeState(from: &r, names: &names)
        applied = a
    }
}

/// Spend mode (`kafka.spend_topic`): budgets, spikes, unit costs and unpriced models judged across
/// instances. Usage partitions send per-shard spend deltas with their changelog records; the owner of a
/// shard's spend partition applies each range once, raises the alerts and records the shard's state in
/// the changelog (key `spend/<shard>`).
extension Daemon {
    var spendMode: Bool { config.kafka.spendTopic != nil }

    /// The changelog key of a usage partition or of an alert shard (a spend-topic partition).
    func changelogKey(_ tp: TopicPartition) -> String {
        tp.topic == config.kafka.spendTopic ? ChangelogRecord.shardKey(tp.partition) : ChangelogRecord.key(topic: tp.topic, partition: tp.partition)
    }

    /// The number of alert shards: the spend topic's partition count, read once.
    func spendShardCount() throws -> Int {
        if let n = alerting.shards.count { return n }
        guard let topic = config.kafka.spendTopic, let changelog else { return 1 }
        let n = try changelog.store.partitionCount(of: topic)
        alerting.shards.count = n
        return n
    }

    func routeSpend(topicIndex: Int, partition: Int32) -> [ChangelogRecord.SpendOut] {
        guard spendMode else { return [] }
        let acc = pipeline.takeSpend(topicIndex: topicIndex, partition: partition)
        guard !acc.isEmpty else { return [] }
        guard let router = spendRouter() else { return [] }
        return router.route(acc, names: pipeline.dimensions.names)
            .sorted { $0.key < $1.key }
            .map { ChangelogRecord.SpendOut(shard: Int32($0.key), bytes: $0.value) }
    }

    /// The router for the rules in force (rebuilt after a reload).
    func spendRouter() -> SpendRouter? {
        if let r = alerting.shards.router { return r }
        guard let n = try? spendShardCount() else { return nil }
        let r = SpendRouter(budgets: rules.budgets, spikes: rules.spikes, outcomeLimits: rules.outcomeLimits, shardCount: n)
        alerting.shards.router = r
        return r
    }

    /// Produces the deltas of acknowledged changelog records to their shards' partitions.
    func sendSpend() throws(DaemonFailure) {
        guard let book = changelog, let topic = config.kafka.spendTopic else { changelog?.spendInFlight.removeAll(); return }
        let changelog = book.store
        for s in book.spendInFlight {
            let key = Array((changelog.keyPrefix + ChangelogRecord.key(topic: s.source.topic, partition: s.source.partition)).utf8)
            for o in s.out {
                let value = SpendMessage(from: s.from, to: s.to, payload: o.bytes).encode()
                do {
                    try key.withUnsafeBytes { k in
                        try value.withUnsafeBytes { v in
                            try changelog.producer.produce(topic: topic, key: k, value: v, partition: o.shard, token: 0)
                        }
                    }
                } catch {
                    throw .spendDeltasNotQueued("\(error)")
                }
            }
        }
        book.spendInFlight.removeAll()
    }

    /// A spend-topic message: applied to its shard once per source range.
    func handleSpend(_ m: KafkaMessage) {
        guard let shard = alerting.shards.byIndex[m.partition] else { return }
        shard.nextOffset = m.offset + 1
        guard let keyBytes = m.key, let prefix = changelog?.store.keyPrefix else { return }
        let key = String(decoding: keyBytes, as: UTF8.self)
        // Another group's deltas (a spend topic shared by mistake): not ours to count.
        guard key.hasPrefix(prefix) else { alerting.shards.skipped += 1; return }
        let source = String(key.dropFirst(prefix.count))
        do {
            let msg = try SpendMessage.decode(Array(m.payload))
            let applied = shard.applied[source] ?? -1
            guard msg.to > applied else { alerting.shards.skipped += 1; return }
            if msg.from < applied {
                // Only a stale record restored after a zombie's write could cause this (see docs/scale-out.md,
                // Known gaps): applying would count the overlap twice.
                log.error("overlapping spend range skipped", metadata: ["source": "\(source)", "from": "\(msg.from)", "to": "\(msg.to)",
                                                                     "applied": "\(applied)", "shard": "\(shard.index)"])
                alerting.shards.skipped += 1
                return
            }
            let entries = try SpendRouter.decode(msg.payload, names: &alerting.shards.names)
            shard.engine.apply(entries, names: alerting.shards.names)
            shard.applied[source] = msg.to
            alerting.shards.applied += 1
        } catch {
            log.error("unreadable spend message skipped", metadata: ["partition": "\(m.partition)", "offset": "\(m.offset)", "error": "\(error)"])
        }
        if !shard.engine.pending.isEmpty { publishAlerts(consumedNanos: clock.monotonicNanos()) }
    }

    /// Starts owning a shard, from its changelog record when there is one; returns where to resume.
    func startShard(_ tp: TopicPartition, record: ChangelogRecord?) -> Int64? {
        let count: Int
        do { count = try spendShardCount() } catch {
            fail(.spendShardsUnknown("\(error)"))
            return nil
        }
        let engine = AlertEngine(budgets: rules.budgets, spikes: rules.spikes, outcomeLimits: rules.outcomeLimits,
                                 shard: SpendShard(index: Int(tp.partition), count: count))
        let shard = AlertShard(index: tp.partition, engine: engine)
        if let record {
            do {
                try shard.decodeState(record.state, names: &alerting.shards.names)
            } catch {
                fail(.unreadableChangelogRecord(partition: "alert shard \(tp.partition)", reason: "\(error)"))
                return nil
            }
            shard.nextOffset = record.nextOffset
            shard.recordedOffset = record.nextOffset
        }
        alerting.shards.byIndex[tp.partition] = shard
        log.info("alert shard started", metadata: ["shard": "\(tp.partition)", "offset": "\(shard.nextOffset)", "from_changelog": "\(record != nil)"])
        return shard.nextOffset >= 0 ? shard.nextOffset : nil
    }

    /// Queues a changelog record for every shard that consumed something since its last one. Alerts the
    /// record counts as published must be acknowledged first: a successor would not raise them again.
    func produceShardRecords(timeoutMs: Int32) -> Bool {
        guard let changelog = changelog?.store else { return true }
        let changed = alerting.shards.byIndex.values.filter { $0.nextOffset >= 0 && $0.nextOffset != $0.recordedOffset }
        guard !changed.isEmpty else { return true }
        guard publishAlerts(), alerting.publisher.delivered(timeoutMs: timeoutMs) else { return false }
        for s in changed.sorted(by: { $0.index < $1.index }) {
            let record = ChangelogRecord(nextOffset: s.nextOffset, state: s.encodeState(names: alerting.shards.names))
            do {
                try changelog.produce(key: ChangelogRecord.shardKey(s.index), partitionNumber: s.index, record: record)
            } catch {
                log.error("cannot queue an alert shard record; checkpoints wait", metadata: ["shard": "\(s.index)", "error": "\(error)"])
                return false
            }
            s.recordedOffset = s.nextOffset
        }
        return true
    }
}
