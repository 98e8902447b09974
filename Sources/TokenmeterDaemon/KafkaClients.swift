import TokenmeterKafka

// The Kafka clients as the daemon uses them, each a narrow protocol: librdkafka's clients implement them
// in production, in-memory doubles in the daemon's in-process tests (a broker whose commits can be
// refused, whose producer can be left unacknowledged, whose group can be rebalanced from the test). The
// end-to-end suite runs the real ones against a real broker process.

/// A consumer-group member with manual offsets, driven from the polling thread (see `KafkaConsumer`).
public protocol GroupConsumer: AnyObject {
    var onError: ((KafkaError) -> Void)? { get set }
    var onStatistics: ((String) -> Void)? { get set }
    /// Rebalances seen (assignments plus revocations).
    var rebalanceCount: Int { get }
    /// Runs the rebalance handler's callbacks and hands up to `maxMessages` messages to `body`.
    func poll(maxMessages: Int, timeoutMs: Int32, _ body: (KafkaMessage) -> Void) -> Int
    /// Commits `offsets[i]` with `metadata[i]` (see `OwnershipClaim`).
    func commit(_ offsets: [TopicPartitionOffset], metadata: [String]) throws
    func committedWithMetadata(_ partitions: [TopicPartition], timeoutMs: Int32) throws -> [(offset: Int64?, metadata: String?)]
    func assignment() -> [TopicPartition]
    /// Replaces the assignment; an offset of `KafkaConsumer.storedOffset` resumes from the committed one.
    func assign(_ offsets: [TopicPartitionOffset]) throws
    func cachedHighWatermark(topic: String, partition: Int32) -> Int64?
    func queryWatermarks(topic: String, partition: Int32, timeoutMs: Int32) throws -> (low: Int64, high: Int64)
    func pause(_ partitions: [TopicPartition])
    func resume(_ partitions: [TopicPartition])
    /// Leaves the group (running the revoke callback) and releases the client.
    func close()
}

/// A producer owned by the polling thread (see `KafkaProducer`).
public protocol MessageProducer: AnyObject {
    /// Once per message, inside `poll`/`flush`/`produce`: the token given to `produce`, and nil or the error.
    var onDelivery: ((UInt64, KafkaError?) -> Void)? { get set }
    /// Before `onDelivery`, for a message not delivered: its key, value and headers (valid during the call).
    var onUndelivered: ((UInt64, KafkaError, UnsafeRawBufferPointer?, UnsafeRawBufferPointer, [(String, [UInt8])]) -> Void)? { get set }
    /// Inside `onDelivery`: microseconds from `produce` to the acknowledgement (-1: unknown).
    var deliveryLatencyMicros: Int64 { get }
    /// Messages queued or in flight, not yet reported.
    var outstanding: Int { get }
    func produce(topic: String, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
                 headers: [(String, [UInt8])], partition: Int32?, token: UInt64) throws
    @discardableResult func poll(timeoutMs: Int32) -> Int
    /// True when nothing is outstanding any more within `timeoutMs`.
    func flush(timeoutMs: Int32) -> Bool
}

extension MessageProducer {
    func produce(topic: String, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
                 headers: [(String, [UInt8])] = [], partition: Int32? = nil, token: UInt64) throws {
        try produce(topic: topic, key: key, value: value, headers: headers, partition: partition, token: token)
    }
}

/// Reads whole partitions without a group (the changelog restore).
public protocol PartitionReader: AnyObject {
    func partitionCount(topic: String, timeoutMs: Int32) throws -> Int
    /// Every message of `partitions` from the first offset to the end as of the call (key, value, offset).
    func readAll(_ partitions: [TopicPartition], timeoutMs: Int32,
                 _ body: (TopicPartition, UnsafeRawBufferPointer?, UnsafeRawBufferPointer, Int64) throws -> Void) throws
}

/// Makes the daemon's clients from librdkafka properties.
public protocol KafkaClients {
    func consumer(properties: [(String, String)], topics: [String], rebalance: RebalanceHandler) throws -> any GroupConsumer
    /// `timingAcknowledgements`: the delivery latency is taken when the broker's acknowledgement arrives,
    /// not when its report is served (see `KafkaProducer.deliveryLatencyMicros`).
    func producer(properties: [(String, String)], timingAcknowledgements: Bool) throws -> any MessageProducer
    func reader(properties: [(String, String)]) throws -> any PartitionReader
}

extension KafkaClients {
    func producer(properties: [(String, String)]) throws -> any MessageProducer {
        try producer(properties: properties, timingAcknowledgements: false)
    }
}

/// librdkafka's clients.
public struct LibrdkafkaClients: KafkaClients {
    public init() {}
    public func consumer(properties: [(String, String)], topics: [String], rebalance: RebalanceHandler) throws -> any GroupConsumer {
        try KafkaConsumer(properties: properties, topics: topics, rebalance: rebalance)
    }
    public func producer(properties: [(String, String)], timingAcknowledgements: Bool) throws -> any MessageProducer {
        try KafkaProducer(properties: properties, timingAcknowledgements: timingAcknowledgements)
    }
    public func reader(properties: [(String, String)]) throws -> any PartitionReader {
        try KafkaPartitionReader(properties: properties)
    }
}

// The conformances forward to the methods that also take the caller's file and line (for error messages).
extension KafkaConsumer: GroupConsumer {
    public func commit(_ offsets: [TopicPartitionOffset], metadata: [String]) throws {
        try commit(offsets, metadataEach: metadata, file: #fileID, line: #line)
    }
    public func committedWithMetadata(_ partitions: [TopicPartition], timeoutMs: Int32) throws -> [(offset: Int64?, metadata: String?)] {
        try committedWithMetadata(partitions, timeoutMs: timeoutMs, file: #fileID, line: #line)
    }
    public func assign(_ offsets: [TopicPartitionOffset]) throws {
        try assign(offsets, file: #fileID, line: #line)
    }
    public func queryWatermarks(topic: String, partition: Int32, timeoutMs: Int32) throws -> (low: Int64, high: Int64) {
        try queryWatermarks(topic: topic, partition: partition, timeoutMs: timeoutMs, file: #fileID, line: #line)
    }
}

extension KafkaProducer: MessageProducer {
    public func produce(topic: String, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
                        headers: [(String, [UInt8])], partition: Int32?, token: UInt64) throws {
        try produce(topic: topic, key: key, value: value, headers: headers, partition: partition, token: token, file: #fileID, line: #line)
    }
}

extension KafkaPartitionReader: PartitionReader {
    public func partitionCount(topic: String, timeoutMs: Int32) throws -> Int {
        try partitionCount(topic: topic, timeoutMs: timeoutMs, file: #fileID, line: #line)
    }
    public func readAll(_ partitions: [TopicPartition], timeoutMs: Int32,
                        _ body: (TopicPartition, UnsafeRawBufferPointer?, UnsafeRawBufferPointer, Int64) throws -> Void) throws {
        try readAll(partitions, timeoutMs: timeoutMs, body, file: #fileID, line: #line)
    }
}
