import TokenmeterCore
import TokenmeterKafka

/// The one home of alerts in the daemon. Alerts are raised in two places: the pipeline's engine (every
/// rule, in a single instance; in spend mode only what needs no other instance's spend) and the alert
/// shards this instance owns in spend mode. Both are gathered here, made durable in the outbox and sent by
/// one publisher; the rules in force live here too, and a reload replaces them in every engine at once.
final class Alerting {
    let publisher: AlertPublisher
    private(set) var rules: AlertRules
    /// Spend mode: the alert shards this instance owns (see Daemon+Spend).
    var shards = AlertShardSet()
    /// Alerts taken from an engine but not yet in the outbox (the outbox write failed).
    private var pending: [Alert] = []

    init(publisher: AlertPublisher, rules: AlertRules) {
        self.publisher = publisher
        self.rules = rules
    }

    /// Takes what the engines raised, makes it durable in the outbox and hands it to the producer.
    /// Throws when the outbox cannot be written; the alerts are kept and retried at the next call.
    func publish(pipelineEngine: AlertEngine, consumedNanos: Int64?) throws {
        publisher.poll()
        pending.append(contentsOf: pipelineEngine.takePending())
        if !shards.byIndex.isEmpty { pending.append(contentsOf: shards.takePending()) }
        guard !pending.isEmpty else { return }
        try publisher.publish(pending, consumedNanos: consumedNanos)
        pending.removeAll()
    }

    /// New rules (SIGHUP): every engine keeps the totals of rules whose identity (name, scope, period) is
    /// unchanged; the spend router is rebuilt for them.
    func replaceRules(_ new: AlertRules, pipelineEngine: AlertEngine) {
        rules = new
        pipelineEngine.replaceRules(budgets: new.budgets, spikes: new.spikes, outcomeLimits: new.outcomeLimits)
        shards.router = nil
        for s in shards.byIndex.values {
            s.engine.replaceRules(budgets: new.budgets, spikes: new.spikes, outcomeLimits: new.outcomeLimits)
        }
    }
}

/// Spend mode: the alert shards this instance owns, the names their state refers to, and the routing of
/// spend deltas to shards.
struct AlertShardSet {
    var byIndex: [Int32: AlertShard] = [:]
    var names = StringTable()
    var namesAfterCompaction = 0
    /// The spend topic's partition count (the number of shards), read once.
    var count: Int?
    /// The router for the rules in force (nil: rebuilt at the next use, after a reload).
    var router: SpendRouter?
    /// Spend ranges applied, and skipped (already applied, or another group's).
    var applied: Int64 = 0
    var skipped: Int64 = 0

    /// Alerts raised by the shards, in shard order.
    mutating func takePending() -> [Alert] {
        var out: [Alert] = []
        for s in byIndex.values.sorted(by: { $0.index < $1.index }) where !s.engine.pending.isEmpty {
            out += s.engine.takePending()
        }
        return out
    }
}

/// Changelog mode: the store, and what this instance last wrote to it per partition.
final class ChangelogBook {
    let store: ChangelogStore
    /// What each partition's last record held, to skip partitions that did not change since.
    var lastRecord: [TopicPartition: RecordMark] = [:]
    /// Spend deltas of written records, sent to the alert shards once those records are acknowledged.
    var spendInFlight: [SpendInFlight] = []
    /// Spend deltas taken from the pipeline whose record could not be queued: they go with the next one.
    var unrecordedSpend: [TopicPartition: [ChangelogRecord.SpendOut]] = [:]
    /// Per partition, its de-duplication id chunks on the changelog (see `IdChunks`).
    var idChunks: [TopicPartition: IdChunks] = [:]
    /// Per partition, the chain its next delta extends (none: the next record is a base).
    var rowChains: [TopicPartition: RowChain] = [:]
    /// Per partition, deltas of replaced chains, deleted after the next base.
    var staleDeltas: [TopicPartition: [UInt64]] = [:]
    /// A new base once a chain's deltas hold at least this many bytes and as many as its base.
    var compactAfter = 64 << 10

    init(store: ChangelogStore) { self.store = store }
}

/// The chain (see `ChangelogRecord`) a partition's deltas are written to.
struct RowChain {
    var id: UInt64
    var baseSequence: UInt64
    var baseBytes: Int
    var deltaBytes = 0
    /// The deltas written to it: deleted once a new base replaces the chain.
    var deltas: [UInt64] = []
}

/// What the changelog holds of one partition's de-duplication ids, to number the next chunk and to delete
/// chunks whose ids all left the window.
struct IdChunks {
    /// The sequence number of the partition's last record (a record's chunks carry its number).
    var sequence: UInt64 = 0
    /// Live chunks: sequence number and the arrival number after their last id.
    var live: [(sequence: UInt64, end: Int)] = []
    /// Chunks of a record that never got written (its writer stopped first): deleted before anything
    /// else of the partition is written, or their ids would count once a later record names their number.
    var stale: [UInt64] = []
    /// The set's `expiredThrough` when the last record was queued: a chunk is deleted by this (an earlier
    /// record's) mark, so that any record a restore can find has those ids out of its set already.
    var recordedExpiredThrough = 0
}
