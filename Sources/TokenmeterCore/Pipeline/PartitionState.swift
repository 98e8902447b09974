/// Everything the pipeline keeps for one input partition: its windows, its dedup memory and where to resume.
/// State moves with the partition: restored from the checkpoint on assignment, handed over on revoke.
public struct PartitionState: Sendable {
    public var topic: String
    public var partition: Int32
    /// The next offset to consume: everything before it is in `windows` or already in rollup files.
    public var nextOffset: Int64
    public var windows: PartitionWindows
    public var dedup: DedupSet
    /// Wall clock of the last message, for the idle close.
    public var lastMessageWall: EpochMillis
    /// Spend mode (`kafka.spend_topic`): what this partition counted for the alert rules since its last changelog record.
    public var spend = SpendAccumulator()

    public init(topic: String, partition: Int32, nextOffset: Int64, windows: PartitionWindows, dedup: DedupSet,
                lastMessageWall: EpochMillis) {
        self.topic = topic; self.partition = partition; self.nextOffset = nextOffset; self.windows = windows
        self.dedup = dedup; self.lastMessageWall = lastMessageWall
    }

    /// Its ids and open rows are saved (a checkpoint record holding them is durable).
    public mutating func markSaved() {
        dedup.markSaved()
        windows.markSaved()
    }
}
