import Logging
import TokenmeterCore
import TokenmeterKafka

/// The changelog topic: where every usage partition's state (and every alert shard's) is kept
/// in Kafka, so that whichever instance is given a partition continues it from there. Kafka Streams'
/// changelog, with full snapshots as records: the newest record of a key is all a successor needs.
///
/// Keys are `<group>/<topic>/<partition>` and `<group>/spend/<shard>`; a key always goes to the same changelog partition
/// (its partition number modulo the changelog's partition count), so a restore reads one partition.
/// Among the records of a key, the one with the highest source offset wins (ties: the later one).
///
/// Its own idempotent producer (no gaps, no reordering, `message.timeout.ms=0`: a record is retried
/// through an outage, never dropped) also sends the spend deltas: "flushed" then means both are acked.
final class ChangelogStore {
    let topic: String
    let producer: any MessageProducer
    private let reader: any PartitionReader
    private let log: Logger
    private let clock: any DaemonClock
    private var partitionCount: Int?
    private var token: UInt64 = 0
    /// A record or delta the broker refused for good (a fatal idempotence error): the daemon cannot
    /// promise its order any more and must restart (it then resumes from what the changelog holds).
    private(set) var deliveryFailed: KafkaError?
    private(set) var recordsWritten: Int64 = 0
    private(set) var bytesWritten: Int64 = 0

    /// `<group id>/`: keys of several groups sharing a changelog topic never meet.
    let keyPrefix: String

    init(topic: String, group: String, properties base: [(String, String)], clients: any KafkaClients,
         log: Logger, clock: any DaemonClock) throws {
        self.topic = topic
        self.keyPrefix = group + "/"
        self.log = log
        self.clock = clock
        // Records are whole partition states: allow large messages (the broker's topic needs
        // `max.message.bytes` to match; see docs/scale-out.md, Topics).
        producer = try clients.producer(properties: base + [("enable.idempotence", "true"), ("message.timeout.ms", "0"),
                                                         ("linger.ms", "5"), ("message.max.bytes", "67108864"),
                                                         ("compression.codec", "lz4")])
        reader = try clients.reader(properties: base + [("receive.message.max.bytes", "200000000")])
        producer.onDelivery = { [unowned self] _, error in
            if let error, self.deliveryFailed == nil {
                self.deliveryFailed = error
                self.log.critical("changelog or spend record not delivered", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The changelog's partition count, read once from the broker.
    func partitions() throws -> Int {
        if let n = partitionCount { return n }
        let n = try reader.partitionCount(topic: topic, timeoutMs: 10_000)
        guard n > 0 else { throw DaemonError("changelog topic \(topic) has no partitions") }
        partitionCount = n
        return n
    }

    /// Another topic's partition count (the spend topic's, for the number of alert shards).
    func partitionCount(of topic: String) throws -> Int {
        let n = try reader.partitionCount(topic: topic, timeoutMs: 10_000)
        guard n > 0 else { throw DaemonError("topic \(topic) has no partitions") }
        return n
    }

    func partition(forNumber n: Int32) throws -> Int32 { Int32(Int(n) % (try partitions())) }

    /// Queues one record (not yet acknowledged: see `flush`).
    func produce(key: String, partitionNumber: Int32, record: ChangelogRecord) throws {
        let value = record.encode()
        let partition = try partition(forNumber: partitionNumber)
        token &+= 1
        try Array((keyPrefix + key).utf8).withUnsafeBytes { k in
            try value.withUnsafeBytes { v in
                try producer.produce(topic: topic, key: k, value: v, partition: partition, token: token)
            }
        }
        recordsWritten += 1
        bytesWritten += Int64(value.count)
    }

    /// True once everything queued (records and deltas) is acknowledged.
    func flush(timeoutMs: Int32) -> Bool {
        producer.outstanding == 0 || producer.flush(timeoutMs: timeoutMs)
    }

    /// The newest record of each key (keys grouped by their changelog partition; each partition is read
    /// from its first offset to its end). Keys without a record are absent.
    func newest(_ keys: [(key: String, partitionNumber: Int32)], timeoutMs: Int32) throws -> [String: ChangelogRecord] {
        guard !keys.isEmpty else { return [:] }
        var wanted: [String: Int64] = [:]
        var parts = Set<Int32>()
        for k in keys { wanted[keyPrefix + k.key] = Int64.min; parts.insert(try partition(forNumber: k.partitionNumber)) }
        var best: [String: [UInt8]] = [:]
        let t0 = clock.monotonicMillis()
        var seen = 0
        try reader.readAll(parts.sorted().map { TopicPartition(topic: topic, partition: $0) }, timeoutMs: timeoutMs) { _, key, value, _ in
            seen += 1
            guard let key, let name = String(validating: key.bindMemory(to: UInt8.self), as: UTF8.self),
                  let have = wanted[name], let offset = ChangelogRecord.nextOffset(value), offset >= have else { return }
            wanted[name] = offset
            best[name] = Array(value)
        }
        var out: [String: ChangelogRecord] = [:]
        for (k, bytes) in best { out[String(k.dropFirst(keyPrefix.count))] = try ChangelogRecord.decode(bytes) }
        log.info("changelog read", metadata: ["keys": "\(keys.count)", "found": "\(out.count)", "records_scanned": "\(seen)",
                                              "partitions": "\(parts.count)", "ms": "\(clock.monotonicMillis() - t0)"])
        return out
    }
}
