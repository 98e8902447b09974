import TokenmeterCore
import TokenmeterDaemon
import TokenmeterKafka

/// Partitions moving between notify instances of one consumer group, without an alert sent twice.
///
/// Each instance remembers deliveries in its own `delivered.log`, so a partition must not be consumed by
/// its new owner from an offset before what its previous owner delivered. The previous owner lets the
/// deliveries of a revoked partition finish (up to `delivery.shutdown_timeout`, as at SIGTERM) and commits
/// its position with metadata `released:<instance>`. Brokers may refuse commits while the group rebalances
/// (librdkafka's mock cluster always does): the release is then committed as soon as the instance is back
/// in the group. The new owner reads the committed
/// metadata first: while it says `owned:<another instance>` the partition is not fetched, until the release
/// arrives or `kafka.handover_timeout` passes (the other instance is then taken for dead, and what it
/// delivered past its last commit is sent again). Before fetching, an instance commits its own claim,
/// `owned:<instance>` at the same offset, so the metadata always names whoever may be delivering past the
/// committed offset. The same protocol as the daemon's (docs/scale-out.md).
final class Handover {
    let instance: String
    let topic: String
    let timeoutMillis: Int64
    let startAtEnd: Bool
    /// Assigned, not yet fetched: the deadline for the previous owner's release.
    private(set) var awaiting: [Int32: EpochMillis] = [:]
    /// Assigned and fetched.
    private(set) var consuming: Set<Int32> = []
    /// Where each consumed partition was started or last committed (for a release with nothing new).
    var committed: [Int32: Int64] = [:]
    /// Releases the broker refused during a rebalance, committed once back in the group.
    private(set) var unreleased: [Int32: Int64] = [:]
    /// The stop's release was refused during a rebalance: this member stays in the group only to commit
    /// it, and takes no partition meanwhile.
    private(set) var leaving = false
    private var lastCheck: EpochMillis = 0

    init(instance: String, topic: String, timeoutMillis: Int64, startAtEnd: Bool) {
        self.instance = instance; self.topic = topic; self.timeoutMillis = timeoutMillis; self.startAtEnd = startAtEnd
    }

    var owned: String { OwnershipClaim.owned(instance).metadata }
    var released: String { OwnershipClaim.released(instance).metadata }

    private func tps(_ ps: some Sequence<Int32>) -> [TopicPartition] { ps.sorted().map { TopicPartition(topic: topic, partition: $0) } }

    private func view(_ ps: [Int32], _ consumer: KafkaConsumer, log: NotifyLog, now: EpochMillis) -> HandoverView? {
        do {
            return HandoverView(tps(ps), committed: try consumer.committedWithMetadata(tps(ps), timeoutMs: 5_000), instance: instance)
        } catch {
            log.log("cannot read the committed offsets yet: \(error)", now: now)
            return nil
        }
    }

    /// Inside the assign callback: partitions whose metadata already names this instance start now at
    /// their committed offset (or where this instance's own refused release ended); every other one waits
    /// for `resolve` (its claim, and any release awaited).
    func assigned(_ partitions: [Int32], consumer: KafkaConsumer, log: NotifyLog, now: EpochMillis) -> [Int64?] {
        commitUnreleased(consumer, log: log, now: now)
        if leaving { return partitions.map { _ in KafkaConsumer.deferAssignment } }
        awaiting.removeAll()
        let v = view(partitions, consumer, log: log, now: now)
        var out: [Int64?] = []
        for p in partitions {
            let tp = TopicPartition(topic: topic, partition: p)
            if let v, v.mine.contains(tp), let c = v.committed[tp] {
                consuming.insert(p)
                // Our own release the broker refused (the group was rebalancing) is past the committed
                // offset, which still carries our claim: what was delivered up to it is not sent again.
                // Never committed afterwards either: an older release would move the partition back.
                if let own = unreleased.removeValue(forKey: p), own > c {
                    committed[p] = own
                    out.append(own)
                } else {
                    committed[p] = c
                    out.append(nil)
                }
            } else {
                awaiting[p] = now + timeoutMillis
                out.append(KafkaConsumer.deferAssignment)
            }
        }
        if let v, !v.waiting.isEmpty {
            log.log("waiting for the previous owner to hand over \(v.waiting.map { "\(topic)[\($0.partition)]" }.sorted().joined(separator: ", ")); "
                    + "the others start now", now: now)
        }
        lastCheck = 0
        return out
    }

    /// From the loop: claims and starts the awaited partitions whose previous owner released them (or timed
    /// out); `position` gives the partitions already consuming their next offset (they are assigned again).
    func resolve(consumer: KafkaConsumer, position: (Int32) -> Int64?, log: NotifyLog, now: EpochMillis) {
        guard !awaiting.isEmpty, now - lastCheck >= 200 else { return }
        lastCheck = now
        guard let v = view(Array(awaiting.keys), consumer, log: log, now: now) else { return }
        var claims: [TopicPartitionOffset] = []
        for (p, deadline) in awaiting.sorted(by: { $0.key < $1.key }) {
            let tp = TopicPartition(topic: topic, partition: p)
            if v.waiting.contains(tp) {
                guard now >= deadline else { continue }
                log.log("\(topic)[\(p)]: its previous owner did not hand it over within kafka.handover_timeout; starting from "
                        + "the committed offset (what it delivered since is sent again)", now: now)
            }
            guard let offset = v.released[tp] ?? v.committed[tp] ?? start(p, consumer) else { continue }
            claims.append(TopicPartitionOffset(tp, offset: offset))
        }
        guard !claims.isEmpty else { return }
        do {
            try consumer.commit(claims, metadata: owned)
        } catch {
            return  // refused (rebalancing again): tried again at the next check, nothing fetched meanwhile
        }
        for c in claims { awaiting[c.partition] = nil; consuming.insert(c.partition); committed[c.partition] = c.offset }
        let offsets = tps(consuming).map { tp in
            TopicPartitionOffset(tp, offset: position(tp.partition) ?? committed[tp.partition] ?? KafkaConsumer.storedOffset)
        }
        do {
            try consumer.assign(offsets)
            log.log("started \(claims.map { "\(topic)[\($0.partition)]@\($0.offset)" }.joined(separator: ", "))", now: now)
        } catch {
            log.log("cannot assign \(claims.map { "\(topic)[\($0.partition)]" }.joined(separator: ", ")): \(error)", now: now)
        }
    }

    /// A new group's partition: where `auto.offset.reset` says.
    private func start(_ p: Int32, _ consumer: KafkaConsumer) -> Int64? {
        guard startAtEnd else { return 0 }
        return try? consumer.queryWatermarks(topic: topic, partition: p, timeoutMs: 5_000).high
    }

    /// Inside the revoke callback, after the deliveries were waited for: commits `released` at `positions`.
    func revoked(_ partitions: [Int32], positions: [Int32: Int64], lost: Bool, consumer: KafkaConsumer, log: NotifyLog, now: EpochMillis) {
        for p in partitions { awaiting[p] = nil }
        let held = partitions.filter { consuming.contains($0) }
        for p in partitions { consuming.remove(p) }
        guard !lost else { return }
        var release: [TopicPartitionOffset] = []
        for p in held {
            guard let o = positions[p] ?? committed[p] else { continue }
            release.append(TopicPartitionOffset(TopicPartition(topic: topic, partition: p), offset: o))
        }
        for p in partitions { committed[p] = nil }
        guard !release.isEmpty else { return }
        do {
            try consumer.commit(release, metadata: released)
        } catch {
            for r in release { unreleased[r.partition] = r.offset }
            log.log("the broker refused the release of \(release.map { "\(topic)[\($0.partition)]@\($0.offset)" }.joined(separator: ", ")) "
                    + "during the rebalance; committing it once back in the group", now: now)
        }
    }

    /// At shutdown: releases every partition consumed, at `positions`, so the next owner starts at once.
    /// A release refused during a rebalance (another instance joining) is kept for the assign callback
    /// once this member is back in the group (`leaving`; see `NotifyService.awaitRefusedRelease`): left on
    /// record, our `owned` claim would make the next owner wait `kafka.handover_timeout` and then send again
    /// what we delivered since our last commit.
    func releaseAll(positions: (Int32) -> Int64?, consumer: KafkaConsumer, log: NotifyLog, now: EpochMillis) {
        let release = consuming.sorted().compactMap { p in
            (positions(p) ?? committed[p]).map { TopicPartitionOffset(TopicPartition(topic: topic, partition: p), offset: $0) }
        }
        guard !release.isEmpty else { return }
        do { try consumer.commit(release, metadata: released) } catch {
            log.log("release at shutdown: \(error)", now: now)
            guard (error as? KafkaError)?.code == KafkaError.rebalanceInProgress else { return }
            for r in release { unreleased[r.partition] = r.offset }
            // Nothing is consumed any more: a revoke meanwhile has nothing of ours to release again.
            consuming.removeAll()
            leaving = true
        }
    }

    /// Only from the assign callback, when this member is back in the group: a commit sent while the group
    /// is still joining is refused, and one answered after the join has moved the generation on makes
    /// librdkafka take the assignment for lost and join again, over and over.
    private func commitUnreleased(_ consumer: KafkaConsumer, log: NotifyLog, now: EpochMillis) {
        guard !unreleased.isEmpty else { return }
        let list = unreleased.sorted { $0.key < $1.key }.map { TopicPartitionOffset(TopicPartition(topic: topic, partition: $0.key), offset: $0.value) }
        do {
            try consumer.commit(list, metadata: released)
            unreleased.removeAll()
            log.log("committed the release of \(list.map { "\(topic)[\($0.partition)]@\($0.offset)" }.joined(separator: ", "))", now: now)
        } catch {}
    }
}
