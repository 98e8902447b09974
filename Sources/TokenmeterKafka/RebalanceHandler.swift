/// Receives eager rebalance events inside `KafkaConsumer.poll` / `close`, on the polling thread.
///
/// The consumer holds its handler weakly (the handler usually owns the consumer).
public protocol RebalanceHandler: AnyObject {
    /// Returns one start offset per partition, in order: a checkpoint's offset, or nil to resume from the
    /// group's committed offset. A shorter array leaves the remaining partitions at nil.
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [Int64?]

    /// Called while the partitions are still assigned, so the handler can checkpoint and
    /// `commit` them. When `lost` is true another member may already own them: commit nothing.
    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool)
}
