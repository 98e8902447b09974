import TokenmeterCore
import TokenmeterKafka

/// Who holds a partition's rows, as the commit metadata says, for the hand-over protocol between
/// instances: `owned:<instance>` while it consumes (the claim), `released:<instance>` once a revoked
/// partition's rows are in partial files, `checkpointed:<instance>` after a shutdown (the rows wait in that
/// instance's checkpoint).
///
/// The daemon appends `;watermark=<epoch ms>`: how far the partition's windows were closed when the offset
/// was committed, so that whoever continues the partition keeps them closed (see `HandoverView.watermarks`).
/// Instance names never contain `;` (letters, digits, `.`, `_`, `-`).
public enum OwnershipClaim: Equatable, Sendable {
    case owned(String)
    case released(String)
    case checkpointed(String)
    case none

    public init(metadata: String?) {
        var m = Substring(metadata ?? "")
        if let semicolon = m.firstIndex(of: ";") { m = m[..<semicolon] }
        if m.hasPrefix("owned:") { self = .owned(String(m.dropFirst(6))) }
        else if m.hasPrefix("released:") { self = .released(String(m.dropFirst(9))) }
        else if m.hasPrefix("checkpointed:") { self = .checkpointed(String(m.dropFirst(13))) }
        else { self = .none }
    }

    public var metadata: String {
        switch self {
        case .owned(let i): "owned:\(i)"
        case .released(let i): "released:\(i)"
        case .checkpointed(let i): "checkpointed:\(i)"
        case .none: ""
        }
    }

    /// The metadata with the partition's watermark (none before any window closed).
    public func metadata(watermark: EpochMillis) -> String {
        watermark == .min ? metadata : metadata + ";watermark=\(watermark)"
    }

    /// The watermark a claim's metadata carries, if any.
    public static func watermark(in metadata: String?) -> EpochMillis? {
        guard let m = metadata, let r = m.range(of: ";watermark=") else { return nil }
        let digits = m[r.upperBound...].prefix { $0 != ";" }
        return EpochMillis(digits)
    }
}

/// A stop that still owes the group a commit (a release or a checkpoint claim the broker refused during a
/// rebalance) stays in the group, running `step` (a poll, which serves the rebalance) while `waiting`
/// holds, for at most `handoverTimeoutMillis` or 10 s, whichever is shorter: long enough for a rebalance to
/// finish, short enough to stay inside a stop's deadline. A bound on rounds as well as on time: a test's
/// clock may stand still. The daemon's and `tokenmeter notify`'s stops both wait this way.
public func stayInGroup(handoverTimeoutMillis: Int64, now: () -> Int64, while waiting: () -> Bool,
                        _ step: () throws -> Void) rethrows {
    let deadline = now() + min(handoverTimeoutMillis, 10_000)
    var rounds = 0
    while waiting() && now() < deadline && rounds < 1_000 {
        rounds += 1
        try step()
    }
}

/// What the group's committed offsets say about partitions just assigned to `instance` (the daemon's, and
/// `tokenmeter notify`'s, whose deliveries are handed over the same way).
public struct HandoverView: Equatable {
    /// Handed over by their previous owner: start exactly at this offset.
    public var released: [TopicPartition: Int64] = [:]
    /// Another instance's claim is on record: it may hold rows past the committed offset; wait for it.
    public var waiting: Set<TopicPartition> = []
    /// Every committed offset read (absent: none committed, or unknown).
    public var committed: [TopicPartition: Int64] = [:]
    /// Our own claim is on record: safe to start at once.
    public var mine: Set<TopicPartition> = []
    /// The watermark the last commit carried, whoever made it: windows ending at or before it were closed
    /// (their final files written) by the partition's previous owners. A fresh state for the partition
    /// starts from it, so a window closed then is never closed again into a final file of the same name
    /// (an instance that had the partition before, in an earlier run, would replace its own file).
    public var watermarks: [TopicPartition: EpochMillis] = [:]

    /// Classifies `partitions` from their committed offsets and metadata, in the same order.
    public init(_ partitions: [TopicPartition], committed got: [(offset: Int64?, metadata: String?)], instance: String) {
        for (tp, c) in zip(partitions, got) {
            if let o = c.offset, o >= 0 { committed[tp] = o }
            if let w = OwnershipClaim.watermark(in: c.metadata) { watermarks[tp] = w }
            switch OwnershipClaim(metadata: c.metadata) {
            case .owned(let who) where who == instance: mine.insert(tp)
            case .owned: waiting.insert(tp)
            case .released: if let o = c.offset, o >= 0 { released[tp] = o }
            default: break
            }
        }
    }

    /// The committed offsets could not be read: every partition resumes from the checkpoint.
    public init(unreadable partitions: [TopicPartition]) { mine = Set(partitions) }

    public init() {}
}

/// A hand-over to commit: where the partition's rows end and how far its windows were closed.
struct Release: Equatable {
    var offset: Int64
    var watermark: EpochMillis
}

/// What stays of a partition this process handed over on a rebalance, for when the group gives it back.
struct RetainedPartition {
    /// Its de-duplication ids: a duplicate straddling the rebalance is still caught.
    var dedup: DedupSet
    /// Where its event time stood: the windows this writer closed then stay closed (see
    /// `PartitionWindows.resume`).
    var streamTime: EpochMillis
    var watermark: EpochMillis

    init(_ s: PartitionState) {
        dedup = s.dedup
        streamTime = s.windows.streamTime
        watermark = s.windows.watermark
    }

    /// A state for the partition starting over at `nextOffset`, with what was kept.
    func resume(_ fresh: PartitionState) -> PartitionState {
        var s = fresh
        var d = dedup
        // Its saved copies went with the hand-over: saved again with this state.
        d.markUnsaved()
        s.dedup = d
        s.windows.resume(streamTime: streamTime, watermark: watermark)
        return s
    }
}

/// The partitions this instance holds or may be handed, outside the pipeline: the checkpoint's states not
/// yet assigned, the hand-overs awaited, what was committed, and what must still be committed.
struct PartitionOwnership {
    /// Partition states from the checkpoint, handed out as Kafka assigns the partitions.
    var restored: [TopicPartition: PartitionState] = [:]
    /// Changelog mode: partitions of the local checkpoint, used only for a partition the changelog has no
    /// record of (the first start after switching changelog mode on).
    var localCache: [TopicPartition: PartitionState] = [:]
    /// The offsets this instance committed last, per partition (to skip commits that would not move).
    var committed: [TopicPartition: Int64] = [:]
    /// What this process keeps of partitions it handed over on a rebalance, reused if they come back.
    var retained: [TopicPartition: RetainedPartition] = [:]
    /// Partitions handed over on a revoke whose `released` commit the broker refused: offset and watermark.
    var unreleased: [TopicPartition: Release] = [:]
    /// Assigned partitions not yet fetched, with the monotonic deadline for their previous owner's hand-over.
    var awaitingHandover: [TopicPartition: Int64] = [:]
    var lastHandoverCheck: Int64 = 0

    /// The states held for partitions not assigned to this instance (for the checkpoint and the memory model).
    var held: [PartitionState] { Array(restored.values) + Array(localCache.values) }

    /// The held states' de-duplication ids and rows are in the local checkpoint now.
    mutating func markSaved() {
        for k in restored.keys { restored[k]!.markSaved() }
        for k in localCache.keys { localCache[k]!.markSaved() }
    }

    /// Of the awaited partitions, those that may start now: nobody else's claim is on record (`waiting`
    /// from a fresh `HandoverView`), or the deadline passed (the previous owner is taken for dead).
    /// Sorted, so that the claims and the logs are in a stable order.
    func startable(waiting: Set<TopicPartition>, now: Int64) -> (ready: [TopicPartition], timedOut: [TopicPartition]) {
        var ready: [TopicPartition] = [], timedOut: [TopicPartition] = []
        for (tp, deadline) in awaitingHandover where !waiting.contains(tp) || now >= deadline {
            ready.append(tp)
            if waiting.contains(tp) { timedOut.append(tp) }
        }
        return (ready.sorted(by: TopicPartition.ordered), timedOut.sorted(by: TopicPartition.ordered))
    }

    /// Forgets partitions that left: nothing more is committed for them and no hand-over is awaited.
    mutating func forget(_ partitions: [TopicPartition]) {
        for tp in partitions { committed[tp] = nil; awaitingHandover[tp] = nil }
    }
}

extension TopicPartition {
    static func ordered(_ a: TopicPartition, _ b: TopicPartition) -> Bool {
        a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition
    }
}
