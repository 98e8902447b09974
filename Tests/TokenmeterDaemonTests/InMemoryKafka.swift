import Synchronization
import TokenmeterKafka
@testable import TokenmeterDaemon

/// An in-memory Kafka for the daemon's in-process tests: topics of partitions of records, one consumer
/// group's committed offsets with their metadata, and faults a test switches on (commits refused,
/// acknowledgements held, produces refused, deliveries failed). The group coordinator is the test: it
/// assigns and revokes partitions with `assign`/`revoke`, and the consumer runs the daemon's rebalance
/// callbacks inside its next `poll`, as librdkafka does.
final class InMemoryBroker {
    struct Record {
        var key: [UInt8]?
        var value: [UInt8]
        var timestampMs: Int64?
        var headers: [(String, [UInt8])]
    }

    private(set) var topics: [String: [[Record]]] = [:]
    /// Committed offsets per group, with the metadata the daemon's hand-over protocol reads.
    var committed: [String: [TopicPartition: (offset: Int64, metadata: String?)]] = [:]
    /// Faults.
    var refuseCommits = false
    /// With `refuseCommits`: commits are taken again from this attempt on (a rebalance that completes).
    var acceptCommitsFromAttempt: Int? = nil
    var holdAcknowledgements = false
    var failDeliveries: Set<String> = []
    /// At most this many messages per poll, so that consuming takes several turns of the loop (and
    /// several checkpoints) as it does against a real broker.
    var maxPerPoll = 10
    var refuseProduce: Set<String> = []
    private(set) var commitAttempts = 0

    func createTopic(_ name: String, partitions: Int) {
        topics[name] = Array(repeating: [], count: partitions)
    }

    @discardableResult
    func append(_ topic: String, partition: Int32, key: [UInt8]? = nil, value: [UInt8], timestampMs: Int64? = nil,
                headers: [(String, [UInt8])] = []) -> Int64 {
        if topics[topic] == nil { createTopic(topic, partitions: Int(partition) + 1) }
        while topics[topic]!.count <= Int(partition) { topics[topic]!.append([]) }
        topics[topic]![Int(partition)].append(Record(key: key, value: value, timestampMs: timestampMs, headers: headers))
        return Int64(topics[topic]![Int(partition)].count - 1)
    }

    func records(_ topic: String, _ partition: Int32) -> [Record] {
        guard let t = topics[topic], Int(partition) < t.count else { return [] }
        return t[Int(partition)]
    }

    func end(_ topic: String, _ partition: Int32) -> Int64 { Int64(records(topic, partition).count) }

    func partitionCount(_ topic: String) -> Int { topics[topic]?.count ?? 0 }

    func commit(group: String, _ offsets: [TopicPartitionOffset], metadata: String?) throws {
        try commit(group: group, offsets, metadataEach: offsets.map { _ in metadata })
    }

    func commit(group: String, _ offsets: [TopicPartitionOffset], metadataEach: [String?]) throws {
        commitAttempts += 1
        if refuseCommits && commitAttempts < (acceptCommitsFromAttempt ?? .max) {
            // What the mock broker answers while the group rebalances.
            throw KafkaError(code: KafkaError.rebalanceInProgress, reason: "commit refused (test)")
        }
        for (o, m) in zip(offsets, metadataEach) { committed[group, default: [:]][o.topicPartition] = (o.offset, m) }
    }
}

/// The daemon's clients over an `InMemoryBroker`.
final class InMemoryClients: KafkaClients {
    let broker: InMemoryBroker
    private(set) var consumers: [InMemoryConsumer] = []
    private(set) var producers: [InMemoryProducer] = []

    init(_ broker: InMemoryBroker) { self.broker = broker }

    func consumer(properties: [(String, String)], topics: [String], rebalance: RebalanceHandler) throws -> any GroupConsumer {
        let group = properties.last { $0.0 == "group.id" }?.1 ?? ""
        let c = InMemoryConsumer(broker: broker, group: group, topics: topics, handler: rebalance)
        consumers.append(c)
        return c
    }

    func producer(properties: [(String, String)], timingAcknowledgements: Bool) throws -> any MessageProducer {
        let p = InMemoryProducer(broker: broker)
        producers.append(p)
        return p
    }

    func reader(properties: [(String, String)]) throws -> any PartitionReader { InMemoryReader(broker: broker) }

    /// The daemon's consumer (the last one made).
    var consumer: InMemoryConsumer { consumers.last! }
}

final class InMemoryConsumer: GroupConsumer {
    let broker: InMemoryBroker
    let group: String
    let topics: [String]
    weak var handler: RebalanceHandler?
    var onError: ((KafkaError) -> Void)?
    var onStatistics: ((String) -> Void)?
    private(set) var rebalanceCount = 0
    /// Fetch positions of the assigned partitions.
    private(set) var positions: [TopicPartition: Int64] = [:]
    private(set) var paused: Set<TopicPartition> = []
    private var pendingRevoke: (partitions: [TopicPartition], lost: Bool)?
    private var pendingAssign: [TopicPartition]?
    private(set) var closed = false

    init(broker: InMemoryBroker, group: String, topics: [String], handler: RebalanceHandler) {
        self.broker = broker; self.group = group; self.topics = topics; self.handler = handler
    }

    /// The group gives this member `partitions` (seen at the next poll).
    func assign(_ partitions: [TopicPartition]) { pendingAssign = partitions }
    /// The group takes the partitions back (seen at the next poll); `lost`: the member was thrown out.
    func revoke(_ partitions: [TopicPartition], lost: Bool = false) { pendingRevoke = (partitions, lost) }

    private func committedOrStart(_ tp: TopicPartition) -> Int64 { broker.committed[group]?[tp]?.offset ?? 0 }

    func poll(maxMessages: Int, timeoutMs: Int32, _ body: (KafkaMessage) -> Void) -> Int {
        guard !closed else { return 0 }
        if let r = pendingRevoke {
            pendingRevoke = nil
            rebalanceCount += 1
            handler?.partitionsRevoked(r.partitions, lost: r.lost)
            for tp in r.partitions { positions[tp] = nil; paused.remove(tp) }
        }
        if let a = pendingAssign {
            pendingAssign = nil
            rebalanceCount += 1
            let starts = handler?.partitionsAssigned(a) ?? []
            for (i, tp) in a.enumerated() {
                let start = i < starts.count ? starts[i] : nil
                if start == KafkaConsumer.deferAssignment { continue }
                positions[tp] = start ?? committedOrStart(tp)
            }
        }
        var delivered = 0
        // Round robin over the partitions in a stable order, one message each per turn.
        let order = positions.keys.filter { !paused.contains($0) }.sorted(by: TopicPartition.ordered)
        var progress = true
        let maxMessages = min(maxMessages, broker.maxPerPoll)
        while delivered < maxMessages && progress {
            progress = false
            for tp in order where delivered < maxMessages {
                guard let pos = positions[tp], let t = topics.firstIndex(of: tp.topic) else { continue }
                let recs = broker.records(tp.topic, tp.partition)
                guard pos < Int64(recs.count) else { continue }
                let r = recs[Int(pos)]
                positions[tp] = pos + 1
                r.value.withUnsafeBytes { v in
                    if let key = r.key {
                        key.withUnsafeBytes { k in
                            body(KafkaMessage(payload: v, key: k, topicIndex: t, partition: tp.partition, offset: pos, timestampMs: r.timestampMs))
                        }
                    } else {
                        body(KafkaMessage(payload: v, key: nil, topicIndex: t, partition: tp.partition, offset: pos, timestampMs: r.timestampMs))
                    }
                }
                delivered += 1
                progress = true
            }
        }
        return delivered
    }

    func commit(_ offsets: [TopicPartitionOffset], metadata: [String]) throws {
        try broker.commit(group: group, offsets, metadataEach: metadata)
    }

    func committedWithMetadata(_ partitions: [TopicPartition], timeoutMs: Int32) throws -> [(offset: Int64?, metadata: String?)] {
        partitions.map { tp in
            let c = broker.committed[group]?[tp]
            return (c?.offset, c?.metadata)
        }
    }

    func assignment() -> [TopicPartition] { positions.keys.sorted(by: TopicPartition.ordered) }

    func assign(_ offsets: [TopicPartitionOffset]) throws {
        var fresh: [TopicPartition: Int64] = [:]
        for o in offsets {
            fresh[o.topicPartition] = o.offset == KafkaConsumer.storedOffset ? committedOrStart(o.topicPartition) : o.offset
        }
        positions = fresh
    }

    func cachedHighWatermark(topic: String, partition: Int32) -> Int64? { broker.end(topic, partition) }

    func queryWatermarks(topic: String, partition: Int32, timeoutMs: Int32) throws -> (low: Int64, high: Int64) {
        (0, broker.end(topic, partition))
    }

    func pause(_ partitions: [TopicPartition]) { paused.formUnion(partitions) }
    func resume(_ partitions: [TopicPartition]) { paused.subtract(partitions) }

    func close() {
        guard !closed else { return }
        let held = assignment()
        if !held.isEmpty {
            rebalanceCount += 1
            handler?.partitionsRevoked(held, lost: false)
        }
        positions.removeAll()
        closed = true
    }
}

/// A producer whose messages reach the broker when acknowledged: at `poll`/`flush`, unless the broker
/// holds acknowledgements; a topic in `failDeliveries` reports each message as undelivered.
final class InMemoryProducer: MessageProducer {
    let broker: InMemoryBroker
    var onDelivery: ((UInt64, KafkaError?) -> Void)?
    var onUndelivered: ((UInt64, KafkaError, UnsafeRawBufferPointer?, UnsafeRawBufferPointer, [(String, [UInt8])]) -> Void)?
    var deliveryLatencyMicros: Int64 { 100 }
    private var queue: [(topic: String, partition: Int32, key: [UInt8]?, value: [UInt8], headers: [(String, [UInt8])], token: UInt64)] = []

    init(broker: InMemoryBroker) { self.broker = broker }

    var outstanding: Int { queue.count }

    func produce(topic: String, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
                 headers: [(String, [UInt8])], partition: Int32?, token: UInt64) throws {
        if broker.refuseProduce.contains(topic) {
            throw KafkaError(code: KafkaError.invalidArgument, reason: "produce refused (test)")
        }
        queue.append((topic, partition ?? 0, key.map { Array($0) }, Array(value), headers, token))
    }

    @discardableResult
    func poll(timeoutMs: Int32) -> Int {
        guard !broker.holdAcknowledgements else { return 0 }
        let done = queue
        queue.removeAll()
        for m in done {
            if broker.failDeliveries.contains(m.topic) {
                let e = KafkaError(code: KafkaError.messageTimedOut, reason: "not delivered (test)")
                m.value.withUnsafeBytes { v in
                    if let key = m.key { key.withUnsafeBytes { k in onUndelivered?(m.token, e, k, v, m.headers) } }
                    else { onUndelivered?(m.token, e, nil, v, m.headers) }
                }
                onDelivery?(m.token, e)
                continue
            }
            broker.append(m.topic, partition: m.partition, key: m.key, value: m.value, headers: m.headers)
            onDelivery?(m.token, nil)
        }
        return done.count
    }

    func flush(timeoutMs: Int32) -> Bool {
        poll(timeoutMs: timeoutMs)
        return queue.isEmpty
    }
}

final class InMemoryReader: PartitionReader {
    let broker: InMemoryBroker
    init(broker: InMemoryBroker) { self.broker = broker }

    func partitionCount(topic: String, timeoutMs: Int32) throws -> Int {
        let n = broker.partitionCount(topic)
        guard n > 0 else { throw KafkaError(code: KafkaError.timedOut, reason: "no topic \(topic) (test)") }
        return n
    }

    func readAll(_ partitions: [TopicPartition], timeoutMs: Int32,
                 _ body: (TopicPartition, UnsafeRawBufferPointer?, UnsafeRawBufferPointer, Int64) throws -> Void) throws {
        for tp in partitions {
            for (i, r) in broker.records(tp.topic, tp.partition).enumerated() {
                try r.value.withUnsafeBytes { v in
                    if let key = r.key { try key.withUnsafeBytes { k in try body(tp, k, v, Int64(i)) } }
                    else { try body(tp, nil, v, Int64(i)) }
                }
            }
        }
    }
}

/// A clock the test moves: wall and monotonic time advance together.
final class ManualClock: DaemonClock {
    private let state: Mutex<(wall: Int64, mono: Int64)>
    init(wall: Int64 = 1_796_000_000_000) { state = Mutex((wall, 1_000_000)) }
    func now() -> Int64 { state.withLock { $0.wall } }
    func monotonicMillis() -> Int64 { state.withLock { $0.mono } }
    func monotonicNanos() -> Int64 { state.withLock { $0.mono } * 1_000_000 }
    func advance(ms: Int64) { state.withLock { $0.wall += ms; $0.mono += ms } }
}
