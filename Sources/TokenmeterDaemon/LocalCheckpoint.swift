import TokenmeterCore

/// The local checkpoint: `checkpoint.bin` for what changes (offsets, open windows, late buckets, alert
/// state) and `DedupSegments` for what only accumulates (de-duplication ids, each written once).
///
/// Durable order of one write, and why a crash anywhere is harmless:
///  1. the ids recorded since the last checkpoint are appended to their segments under the next sequence
///     number and fsynced; a crash now leaves records no checkpoint names: the restore cuts them off;
///  2. `checkpoint.bin` with that sequence number replaces the old one (atomically): from now on the
///     restore reads those ids;
///  3. only then the ids count as saved, and segments whose ids all left the window are deleted (a crash
///     in the middle leaves some behind: their ids are expired and expire again on restore).
final class LocalCheckpoint {
    let path: String
    let ids: DedupSegments
    /// The sequence number of the last checkpoint written or restored.
    private(set) var sequence: UInt64 = 0
    private var checkpointBytesWritten: Int64 = 0
    /// Bytes written: checkpoint files and id segments.
    var bytesWritten: Int64 { checkpointBytesWritten + ids.bytesWritten }

    init(stateDir: String) {
        path = stateDir + "/checkpoint.bin"
        ids = DedupSegments(stateDir: stateDir)
    }

    static func key(_ s: PartitionState) -> DedupSegments.PartitionKey {
        DedupSegments.PartitionKey(topic: s.topic, partition: s.partition)
    }

    /// The last checkpoint with each partition's saved ids put back; nil when there is none. Cuts off ids
    /// written for a checkpoint that never completed.
    func read(_ pipeline: Pipeline, restoreAlerts: Bool) throws -> Checkpoint.Restored? {
        guard let bytes = try DurableFile.read(path) else {
            _ = try ids.restore(upTo: 0)
            return nil
        }
        var r = try pipeline.decodeCheckpoint(bytes, restoreAlerts: restoreAlerts)
        sequence = max(sequence, r.sequence)
        let saved = try ids.restore(upTo: r.sequence)
        for i in r.partitions.indices {
            for run in saved[Self.key(r.partitions[i])] ?? [] { r.partitions[i].dedup.restore(run.ids, from: run.from) }
        }
        return r
    }

    /// Steps 1 and 2 (see above) for the assigned partitions (unless `includeAssigned` is false: the
    /// changelog keeps them) and `held`. The caller marks the ids saved when this returns.
    func write(_ pipeline: Pipeline, held: [PartitionState], includeAssigned: Bool) throws(FileError) {
        let next = sequence + 1
        do {
            var parts = held.map { (key: Self.key($0), from: $0.dedup.unsavedFrom, ids: $0.dedup.unsaved) }
            if includeAssigned {
                parts += pipeline.assigned.map { (key: Self.key($0.state), from: $0.state.dedup.unsavedFrom, ids: $0.state.dedup.unsaved) }
            }
            try ids.append(parts, sequence: next)
        }
        let bytes = pipeline.checkpointBytes(unassigned: held, includeAssigned: includeAssigned, sequence: next, includeDedup: false)
        try DurableFile.write(bytes, to: path)
        checkpointBytesWritten += Int64(bytes.count)
        sequence = next
    }

    /// Step 3's deletion: segments whose ids have all left their partition's set, by the sets of the
    /// checkpoint just written.
    func removeExpiredIds(_ pipeline: Pipeline, held: [PartitionState], includeAssigned: Bool,
                          removing: (Int64) throws -> Void) throws {
        guard ids.fileCount > 1 else { return }
        var through: [DedupSegments.PartitionKey: Int] = [:]
        for s in held { through[Self.key(s)] = s.dedup.expiredThrough }
        if includeAssigned { for a in pipeline.assigned { through[Self.key(a.state)] = a.state.dedup.expiredThrough } }
        try ids.removeExpired(expiredThrough: { through[$0] }, removing: removing)
    }
}
