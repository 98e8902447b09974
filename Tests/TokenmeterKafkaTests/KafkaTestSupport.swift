import Testing
@testable import TokenmeterKafka
#if canImport(Glibc)
import Glibc
#endif

/// One mock cluster for the suites that can share it; each test uses its own topics and group ids.
enum Shared {
    static let cluster: MockCluster = try! MockCluster(brokers: 1)
}

private let counter = Counter()
private final class Counter: @unchecked Sendable {
    private var value = 0
    private var lock = pthread_mutex_t()
    init() { pthread_mutex_init(&lock, nil) }
    func next() -> Int {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        value += 1
        return value
    }
}

/// Unique names so tests sharing a cluster never see each other's data.
func uniqueName(_ prefix: String) -> String { "\(prefix)-\(getpid())-\(counter.next())" }

func monotonicMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Runs `step` until `done` is true or `timeoutMs` passes; returns whether `done` became true.
/// `step` should block briefly (a poll with a timeout), so this is a bounded wait, not a sleep.
@discardableResult
func waitUntil(timeoutMs: Int64 = 20_000, step: () -> Void, _ done: () -> Bool) -> Bool {
    let deadline = monotonicMs() + timeoutMs
    while !done() {
        if monotonicMs() > deadline { return false }
        step()
    }
    return true
}

func consumerProperties(_ cluster: MockCluster, group: String, _ extra: [(String, String)] = []) -> [(String, String)] {
    [("bootstrap.servers", cluster.bootstrapServers), ("group.id", group),
     ("auto.offset.reset", "earliest"), ("session.timeout.ms", "6000"), ("log_level", "4")] + extra
}

/// Produces `count` messages valued "prefix-i" keyed "k-i", optionally to one partition; waits for delivery.
@discardableResult
func produce(_ cluster: MockCluster, topic: String, count: Int, from start: Int = 0, prefix: String = "m",
             partition: Int32? = nil, headers: [(String, [UInt8])] = []) throws -> Int {
    let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers), ("linger.ms", "1")])
    var ok = 0
    var failed = 0
    producer.onDelivery = { _, err in if err == nil { ok += 1 } else { failed += 1 } }
    for i in start..<(start + count) {
        let value = Array("\(prefix)-\(i)".utf8)
        let key = Array("k-\(i)".utf8)
        try value.withUnsafeBytes { v in
            try key.withUnsafeBytes { k in
                try producer.produce(topic: topic, key: k, value: v, headers: headers, partition: partition, token: UInt64(i))
            }
        }
    }
    #expect(producer.flush(timeoutMs: 15_000))
    #expect(failed == 0)
    return ok
}

/// Records rebalance events in order; returns chosen start offsets.
final class RecordingHandler: RebalanceHandler {
    var events: [String] = []
    var assigned: [TopicPartition] = []
    var startOffsets: [TopicPartition: Int64] = [:]
    var onRevoke: (([TopicPartition], Bool) -> Void)?
    var threads: [pthread_t] = []

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [Int64?] {
        threads.append(pthread_self())
        events.append("assign \(partitions.count)")
        assigned = partitions
        return partitions.map { startOffsets[$0] }
    }

    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) {
        threads.append(pthread_self())
        events.append("revoke \(partitions.count) lost=\(lost)")
        onRevoke?(partitions, lost)
        assigned = []
    }
}

/// A consumed message, copied out of the borrowed view.
struct Received: Hashable {
    var value: String
    var key: String?
    var topicIndex: Int
    var partition: Int32
    var offset: Int64
}

func drain(_ consumer: KafkaConsumer, into out: inout [Received]) {
    consumer.poll(maxMessages: 500, timeoutMs: 100) { m in
        out.append(Received(
            value: String(decoding: m.payload, as: UTF8.self),
            key: m.key.map { String(decoding: $0, as: UTF8.self) },
            topicIndex: m.topicIndex, partition: m.partition, offset: m.offset))
    }
}
