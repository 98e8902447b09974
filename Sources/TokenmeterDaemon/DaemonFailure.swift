import TokenmeterKafka

/// A condition the daemon cannot go on from. The loop stops at once, takes no further checkpoint and
/// commits nothing, and `run` throws it to the command, which exits with `exitCode`: systemd restarts the
/// daemon, which resumes from what is durable (the checkpoint or the changelog), exactly as after a kill -9.
public enum DaemonFailure: Error, CustomStringConvertible, Equatable {
    /// The changelog producer had a record or spend delta refused for good: the order of records and
    /// deltas can no longer be promised.
    case changelogBroken(String)
    /// A changelog record this version cannot read: starting the partition empty would lose its rows.
    case unreadableChangelogRecord(partition: String, reason: String)
    /// The spend topic's partition count (the number of alert shards) cannot be read.
    case spendShardsUnknown(String)
    /// Spend deltas of an acknowledged changelog record could not be queued.
    case spendDeltasNotQueued(String)
    /// A test stopped the daemon after this checkpoint step, as a crash would (see `DaemonFaults`).
    case injectedCrash(after: CheckpointStep)

    /// EX_TEMPFAIL: try again (systemd's `Restart=` and `RestartForceExitStatus=75`).
    public var exitCode: Int32 { 75 }

    public var description: String {
        switch self {
        case .changelogBroken(let e): "the changelog producer failed (\(e)); a restart resumes from the changelog"
        case .unreadableChangelogRecord(let p, let r): "unreadable changelog record of \(p) (\(r)); refusing to start the partition"
        case .spendShardsUnknown(let e): "cannot read the spend topic's partition count (\(e))"
        case .spendDeltasNotQueued(let e): "cannot queue spend deltas (\(e)); a restart re-sends them from the changelog"
        case .injectedCrash(let step): "crash injected after the checkpoint step \(step)"
        }
    }
}

/// The steps of a checkpoint, in their durable order. A crash between any two of them is harmless:
///  1. `alertsInOutbox`: new alerts durable in the outbox; the checkpoint records their crossings as
///     published, so they must be there first;
///  2. `rollupFiles`: closed windows in files (temp, fsync, rename); a crash after this replays events whose
///     windows re-close into the same file names with the same content;
///  3. `deadLettersDelivered`: dead letters acknowledged by the topic; a crash after this only re-sends one;
///  4. `deadLettersSpilled`: those the topic refused, appended to the spill file and fsynced;
///  5. `changelogAcknowledged` (changelog mode): every changed partition's record, then its spend deltas,
///     acknowledged; from now on a successor starts from them;
///  6. `namesCompacted`: names no longer used released (in memory only);
///  7. `checkpointWritten`: open windows and the offsets they cover; a crash after this restarts from it,
///     and offsets not yet committed are taken from the checkpoint, not from Kafka;
///  8. `outboxCleared`: markers of delivered alerts removed (the checkpoint now records them);
///  9. `offsetsCommitted`: the Kafka commit of exactly the checkpoint's offsets.
public enum CheckpointStep: Int, CaseIterable, Sendable, CustomStringConvertible {
    case alertsInOutbox = 1, rollupFiles, deadLettersDelivered, deadLettersSpilled, changelogAcknowledged,
         namesCompacted, checkpointWritten, outboxCleared, offsetsCommitted, expiredIdsRemoved

    public var description: String {
        switch self {
        case .alertsInOutbox: "alerts in outbox"
        case .rollupFiles: "rollup files"
        case .deadLettersDelivered: "dead letters delivered"
        case .deadLettersSpilled: "dead letters spilled"
        case .changelogAcknowledged: "changelog acknowledged"
        case .namesCompacted: "names compacted"
        case .checkpointWritten: "checkpoint written"
        case .outboxCleared: "outbox cleared"
        case .offsetsCommitted: "offsets committed"
        case .expiredIdsRemoved: "expired ids removed"
        }
    }
}

/// Faults a test injects into a running daemon: a crash right after a checkpoint step. Production passes none.
public protocol DaemonFaults: AnyObject {
    /// Called after each completed step of a checkpoint; throwing stops the daemon there, as a kill -9 would.
    func completed(_ step: CheckpointStep) throws(DaemonFailure)
    /// Called before each segment of expired de-duplication ids is deleted (the middle of a compaction).
    func removingExpiredIds() throws(DaemonFailure)
    /// Called between a new base (local, or a partition's in the changelog) and the deletion of the deltas
    /// before it (the middle of a compaction).
    func compactingCheckpoint() throws(DaemonFailure)
}

extension DaemonFaults {
    public func removingExpiredIds() throws(DaemonFailure) {}
    public func compactingCheckpoint() throws(DaemonFailure) {}
}
