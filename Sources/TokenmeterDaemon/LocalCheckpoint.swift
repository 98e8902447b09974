#if canImport(Glibc)
import Glibc
#endif
import TokenmeterCore

/// The local checkpoint: a base (`checkpoint.bin`, every partition whole), the deltas written since
/// (`checkpoint.log`: per checkpoint one record of what changed, see `Checkpoint`), and `DedupSegments`
/// for what only accumulates (de-duplication ids, each written once). So a checkpoint writes the rows that
/// changed since the previous one, not every open row: a base is written only when the log has grown to
/// the base's size (at least `compactAfter`), which keeps what a restore reads under about twice the base.
///
/// Durable order of one write, and why a crash anywhere is harmless:
///  1. the ids recorded since the last checkpoint are appended to their segments under the next sequence
///     number and fsynced; a crash now leaves records no checkpoint names: the restore cuts them off;
///  2. the delta is appended to the log and fsynced (a torn or missing delta: the restore stops before it,
///     at the previous checkpoint), or, when due, a new base replaces `checkpoint.bin` atomically: from now
///     on the restore reads the state as of this sequence, and those ids;
///  3. after a new base, the old log is deleted (a crash before that leaves deltas numbered below the
///     base: the restore skips them);
///  4. only then the ids and rows count as saved, and segments whose ids all left the window are deleted
///     (a crash in the middle leaves some behind: their ids are expired and expire again on restore).
/// Any prefix of the log is a state some checkpoint had, so a restore from it replays from that
/// checkpoint's offsets into the same files.
final class LocalCheckpoint {
    let path: String
    let logPath: String
    let ids: DedupSegments
    /// A new base once the log holds at least this many bytes and as many as the base.
    var compactAfter: Int64 = 64 << 10
    /// The sequence number of the last checkpoint written or restored.
    private(set) var sequence: UInt64 = 0
    /// The current base's sequence; 0: the next record is a base (at start, after a restore or a failed
    /// deletion of the old log).
    private var baseSequence: UInt64 = 0
    private var baseBytes: Int64 = 0
    private var logLength: Int64 = 0
    /// Per partition in the last record written, what it said of its offsets (a partition not in it is
    /// written whole; one whose offsets and rows did not change is listed unchanged).
    private var written: [DedupSegments.PartitionKey: Mark] = [:]
    private var checkpointBytesWritten: Int64 = 0
    private(set) var basesWritten: Int64 = 0
    /// Bytes written: bases, deltas and id segments.
    var bytesWritten: Int64 { checkpointBytesWritten + ids.bytesWritten }

    struct Mark: Equatable {
        var nextOffset: Int64
        var streamTime: EpochMillis
        var watermark: EpochMillis
        init(_ s: PartitionState) { nextOffset = s.nextOffset; streamTime = s.windows.streamTime; watermark = s.windows.watermark }
    }

    init(stateDir: String) {
        path = stateDir + "/checkpoint.bin"
        logPath = stateDir + "/checkpoint.log"
        ids = DedupSegments(stateDir: stateDir)
    }

    static func key(_ s: PartitionState) -> DedupSegments.PartitionKey {
        DedupSegments.PartitionKey(topic: s.topic, partition: s.partition)
    }

    /// The last checkpoint (the base with the deltas after it) with each partition's saved ids put back;
    /// nil when there is none. Cuts off ids written for a checkpoint that never completed.
    func read(_ pipeline: Pipeline, restoreAlerts: Bool) throws -> Checkpoint.Restored? {
        guard let bytes = try DurableFile.read(path) else {
            _ = try ids.restore(upTo: 0)
            return nil
        }
        var chain = try Checkpoint.Chain(base: try pipeline.parseCheckpoint(bytes))
        if let log = try DurableFile.read(logPath) {
            var at = 0
            while let n = Checkpoint.recordLength(log[at...]) {
                let record = try pipeline.parseCheckpoint(Array(log[at..<(at + n)]))
                at += n
                // Deltas of an older base, left by a crash before the log's deletion.
                if record.sequence <= chain.sequence { continue }
                // Past a gap: never the case for our own appends, but a prefix is always a state we had.
                guard chain.follows(record) else { break }
                try chain.apply(record)
            }
        }
        var r = try pipeline.restoreCheckpoint(chain, restoreAlerts: restoreAlerts)
        sequence = max(sequence, r.sequence)
        baseSequence = 0
        let saved = try ids.restore(upTo: r.sequence)
        for i in r.partitions.indices {
            for run in saved[Self.key(r.partitions[i])] ?? [] { r.partitions[i].dedup.restore(run.ids, from: run.from) }
        }
        return r
    }

    /// Steps 1 to 3 (see above) for the assigned partitions (unless `includeAssigned` is false: the
    /// changelog keeps them) and `held`. `compacting` is called between a new base and the deletion of the
    /// deltas it replaces. The caller marks the ids and rows saved when this returns.
    func write(_ pipeline: Pipeline, held: [PartitionState], includeAssigned: Bool,
               compacting: () throws(DaemonFailure) -> Void) throws {
        do {
            try writeRecord(pipeline, held: held, includeAssigned: includeAssigned, compacting: compacting)
        } catch let failure as DaemonFailure {
            throw failure
        } catch {
            // After a failed write the files may not be what this process thinks (a full disk, a folder
            // replaced): the next checkpoint starts over with a base.
            baseSequence = 0
            throw error
        }
    }

    private func writeRecord(_ pipeline: Pipeline, held: [PartitionState], includeAssigned: Bool,
                             compacting: () throws(DaemonFailure) -> Void) throws {
        let next = sequence + 1
        let states = (includeAssigned ? pipeline.assigned.map(\.state) : []) + held
        do {
            try ids.append(states.map { (key: Self.key($0), from: $0.dedup.unsavedFrom, ids: $0.dedup.unsaved) }, sequence: next)
        }
        var marks: [DedupSegments.PartitionKey: Mark] = [:]
        for s in states { marks[Self.key(s)] = Mark(s) }
        if baseSequence == 0 || logLength >= max(baseBytes, compactAfter) {
            let bytes = pipeline.checkpointRecord(unassigned: held, includeAssigned: includeAssigned, sequence: next, base: 0) { _ in .whole }
            try DurableFile.write(bytes, to: path)
            checkpointBytesWritten += Int64(bytes.count)
            basesWritten += 1
            sequence = next
            baseSequence = next
            baseBytes = Int64(bytes.count)
            written = marks
            if logLength > 0 { try compacting() }
            // The deltas before the base are not needed any more (and skipped by a restore if left).
            if unlink(logPath) == 0 || errno == ENOENT {
                logLength = 0
            } else {
                // Retried with the next base; until then nothing is appended after the old deltas.
                baseSequence = 0
            }
            return
        }
        let bytes = pipeline.checkpointRecord(unassigned: held, includeAssigned: includeAssigned, sequence: next, base: baseSequence) { s in
            guard let before = written[Self.key(s)] else { return .whole }
            return before == Mark(s) && !s.windows.hasUnsavedRows ? .unchanged : .changes
        }
        try DurableFile.appendRecord(bytes, to: logPath, length: logLength)
        logLength += Int64(bytes.count)
        checkpointBytesWritten += Int64(bytes.count)
        sequence = next
        written = marks
    }

    /// Step 4's deletion: segments whose ids have all left their partition's set, by the sets of the
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
