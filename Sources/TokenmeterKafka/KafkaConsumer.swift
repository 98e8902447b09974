import Crdkafka

/// A consumer-group member with manual offset management, driven from ONE thread.
///
/// `rd_kafka_poll_set_consumer` routes the main queue into the consumer queue, so error, statistics and
/// rebalance callbacks run inside `poll` and `close` on the caller's thread: the aggregation state the
/// callbacks touch needs no lock. The class is deliberately not `Sendable`.
///
/// Offsets are never stored or committed automatically (`enable.auto.commit=false`,
/// `enable.auto.offset.store=false`): the owner commits explicit lists after its checkpoint is durable.
public final class KafkaConsumer {
    public let topics: [String]

    /// Called inside `poll` for client-level errors (e.g. all brokers down) and for message-level errors.
    public var onError: ((KafkaError) -> Void)? {
        get { context.onError }
        set { context.onError = newValue }
    }

    /// Called inside `poll` with librdkafka's statistics JSON; needs `statistics.interval.ms` > 0.
    public var onStatistics: ((String) -> Void)? {
        get { context.onStatistics }
        set { context.onStatistics = newValue }
    }

    /// Rebalances seen (assignments plus revocations).
    public var rebalanceCount: Int { context.rebalanceCount }

    private let handle: OpaquePointer
    private let context: ConsumerContext
    // `closing` lets the revoke callback inside `close` still commit and read the assignment.
    private enum State { case open, closing, closed }
    private var state = State.open
    // rkt pointer -> subscribed topic index; a handful of entries, so a linear scan beats hashing.
    private var topicCache: [(rkt: OpaquePointer, index: Int)] = []

    /// Joins the group named by `group.id` (required) and subscribes to `topics`. With no topics it
    /// subscribes to nothing and never joins: a handle for reading the group's committed offsets
    /// (`committed`) without triggering a rebalance of its members.
    ///
    /// `partition.assignment.strategy` defaults to `range`; `cooperative-sticky` is rejected because
    /// librdkafka 2.0.2 aborts in `rd_kafka_destroy` when such a consumer closes soon after subscribing
    /// (librdkafka #4312, fixed in 2.3.0).
    public init(
        properties: [(String, String)],
        topics: [String],
        rebalance: RebalanceHandler?,
        file: String = #fileID,
        line: Int = #line
    ) throws {
        guard properties.contains(where: { $0.0 == "group.id" && !$0.1.isEmpty }) else {
            throw KafkaError(code: KafkaError.invalidArgument, reason: "Kafka property 'group.id' is required", file: file, line: line)
        }
        for (name, value) in properties where name == "partition.assignment.strategy" {
            if value.contains("cooperative-sticky") {
                throw KafkaError(
                    code: KafkaError.invalidArgument,
                    reason: "Kafka property 'partition.assignment.strategy': cooperative-sticky is not supported "
                        + "with librdkafka 2.0.2 (aborts on close, librdkafka #4312); use range or roundrobin",
                    file: file, line: line)
            }
        }
        let forced = [("enable.auto.commit", "false"), ("enable.auto.offset.store", "false")]
        let conf = try KafkaProperties.makeConf(
            [("partition.assignment.strategy", "range")] + properties + forced, file: file, line: line)

        let context = ConsumerContext()
        context.handler = rebalance
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
            guard let rk, let partitions, let opaque else { return }
            Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue()
                .rebalance(rk, err, partitions)
        }
        rd_kafka_conf_set_error_cb(conf) { _, err, reason, opaque in
            guard let opaque else { return }
            let ctx = Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue()
            var e = KafkaError(code: err, reason: reason.map { String(cString: $0) } ?? "")
            e.alreadyLogged = KafkaLog.loggedRecently(e.reason)
            ctx.onError?(e)
        }
        rd_kafka_conf_set_stats_cb(conf) { _, json, len, opaque in
            guard let opaque, let json else { return 0 }
            let ctx = Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue()
            ctx.onStatistics?(String(decoding: UnsafeRawBufferPointer(start: json, count: len), as: UTF8.self))
            return 0  // librdkafka frees the JSON
        }

        // From here rk owns conf.
        let rk = try KafkaClientFactory.make(.consumer, conf: conf, what: "consumer", file: file, line: line)

        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for t in topics { _ = rd_kafka_topic_partition_list_add(list, t, RD_KAFKA_PARTITION_UA) }
        let err = topics.isEmpty ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_subscribe(rk, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_destroy(rk)
            throw KafkaError(err, "subscribe to \(topics): \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
        }
        self.handle = rk
        self.context = context
        self.topics = topics
    }

    deinit {
        close()
    }

    /// Hands up to `maxMessages` messages to `body`, waiting at most `timeoutMs` for the first one, and
    /// returns how many were handed over. Serves rebalance, error and statistics callbacks too, so call
    /// it regularly even when busy elsewhere (`max.poll.interval.ms`). Allocates nothing per message.
    ///
    /// Uses `rd_kafka_consumer_poll` rather than `rd_kafka_consume_batch_queue`: it is the call that
    /// librdkafka's high-level consumer contract is written against (rebalance callbacks and the
    /// max.poll.interval timer), and after the first wait it is a lock and a pointer pop per message.
    @discardableResult
    public func poll(maxMessages: Int, timeoutMs: Int32, _ body: (KafkaMessage) -> Void) -> Int {
        guard state == .open, maxMessages > 0 else { return 0 }
        var delivered = 0
        var attempts = 0
        var wait = timeoutMs
        while attempts < maxMessages {
            attempts += 1
            guard let msg = rd_kafka_consumer_poll(handle, wait) else { break }
            wait = 0
            defer { rd_kafka_message_destroy(msg) }
            let err = msg.pointee.err
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                reportMessageError(msg, err)
                continue
            }
            guard let index = topicIndex(msg.pointee.rkt) else { continue }
            body(KafkaMessage(raw: msg, topicIndex: index))
            delivered += 1
        }
        return delivered
    }

    /// Synchronously commits explicit offsets (the next offset to consume per partition).
    ///
    /// `metadata` is set on each element of the commit list: on 2.0.2 metadata given to
    /// `rd_kafka_offsets_store` is dropped, an explicit commit keeps it. Safe to call from
    /// `RebalanceHandler.partitionsRevoked`, except when the assignment was lost: then it throws
    /// `_STATE` rather than rewind offsets another member may already own.
    public func commit(
        _ offsets: [TopicPartitionOffset], metadata: String? = nil, file: String = #fileID, line: Int = #line
    ) throws {
        try commit(offsets, metadataEach: Array(repeating: metadata, count: offsets.count), file: file, line: line)
    }

    /// As `commit(_:metadata:)`, with `metadataEach[i]` stored with `offsets[i]`.
    public func commit(
        _ offsets: [TopicPartitionOffset], metadataEach: [String?], file: String = #fileID, line: Int = #line
    ) throws {
        guard !offsets.isEmpty else { return }
        try checkOpen(file: file, line: line)
        if context.revokingLost {
            // Another member may already own these partitions; a commit now could move its offsets back.
            throw KafkaError(code: KafkaError.state, reason: "assignment lost: commit refused", file: file, line: line)
        }
        let list = RDKafkaPartitionList.make(offsets, metadataEach: metadataEach)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_commit(handle, list, 0)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, "commit \(offsets): \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
        }
        if let e = RDKafkaPartitionList.firstError(list, file: file, line: line) { throw e }
    }

    /// The group's committed offsets (next offset to consume), nil where nothing is committed.
    public func committed(
        _ partitions: [TopicPartition], timeoutMs: Int32, file: String = #fileID, line: Int = #line
    ) throws -> [Int64?] {
        try committedWithMetadata(partitions, timeoutMs: timeoutMs, file: file, line: line).map(\.offset)
    }

    /// Committed offsets with the metadata string each was committed with (nil when none).
    public func committedWithMetadata(
        _ partitions: [TopicPartition], timeoutMs: Int32, file: String = #fileID, line: Int = #line
    ) throws -> [(offset: Int64?, metadata: String?)] {
        try checkOpen(file: file, line: line)
        let list = RDKafkaPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_committed(handle, list, timeoutMs)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, file: file, line: line)
        }
        if let e = RDKafkaPartitionList.firstError(list, file: file, line: line) { throw e }
        // Match by key: the answer is not promised to keep the request's order.
        var byKey: [TopicPartition: (Int64?, String?)] = [:]
        for i in 0..<Int(list.pointee.cnt) {
            let e = list.pointee.elems[i]
            let metadata = e.metadata.map {
                String(decoding: UnsafeRawBufferPointer(start: $0, count: e.metadata_size), as: UTF8.self)
            }
            byKey[TopicPartition(topic: String(cString: e.topic), partition: e.partition)] =
                (e.offset >= 0 ? e.offset : nil, e.metadata_size > 0 ? metadata : nil)
        }
        return partitions.map { byKey[$0].map { (offset: $0.0, metadata: $0.1) } ?? (offset: nil, metadata: nil) }
    }

    /// The partitions currently assigned to this member.
    public func assignment() -> [TopicPartition] {
        guard state != .closed else { return [] }
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return RDKafkaPartitionList.partitions(list)
    }

    /// Leaves the group (the revoke callback runs in here, on this thread) and frees the client.
    /// Idempotent.
    /// Returned by `RebalanceHandler.partitionsAssigned` for a partition that must not be fetched yet:
    /// the handler assigns it later with `assign(_:)`.
    public static let deferAssignment: Int64 = .min

    /// Replaces the current assignment (outside a rebalance callback), each partition starting at its
    /// offset (`storedOffset`: the group's committed offset).
    public func assign(_ offsets: [TopicPartitionOffset], file: String = #fileID, line: Int = #line) throws {
        try checkOpen(file: file, line: line)
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for o in offsets {
            let e = rd_kafka_topic_partition_list_add(list, o.topic, o.partition)!
            e.pointee.offset = o.offset
        }
        let err = rd_kafka_assign(handle, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, "assign: \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
        }
    }

    /// The partition's high watermark as last seen in a fetch response (librdkafka's cache: no request
    /// to the broker, cheap enough to call every second per partition); nil before the first fetch
    /// response for it. A consumer whose next offset is below it has messages waiting.
    public func cachedHighWatermark(topic: String, partition: Int32) -> Int64? {
        guard state != .closed else { return nil }
        var low: Int64 = 0, high: Int64 = 0
        guard rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
              high >= 0 else { return nil }
        return high
    }

    /// The partition's low and high watermarks (first offset kept, offset of the next message), asked of
    /// the partition's leader: a blocking request of up to `timeoutMs`.
    public func queryWatermarks(
        topic: String, partition: Int32, timeoutMs: Int32, file: String = #fileID, line: Int = #line
    ) throws -> (low: Int64, high: Int64) {
        try checkOpen(file: file, line: line)
        var low: Int64 = 0, high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, timeoutMs)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, "watermarks of \(topic)[\(partition)]: \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
        }
        return (low, high)
    }

    /// Stops (`pause`) or restarts fetching for the partitions, keeping the group membership: the
    /// consumer keeps polling, so rebalances and heartbeats go on while nothing new arrives.
    public func pause(_ partitions: [TopicPartition]) { setPaused(partitions, true) }
    public func resume(_ partitions: [TopicPartition]) { setPaused(partitions, false) }

    private func setPaused(_ partitions: [TopicPartition], _ paused: Bool) {
        guard state != .closed, !partitions.isEmpty else { return }
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for tp in partitions { _ = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition) }
        let err = paused ? rd_kafka_pause_partitions(handle, list) : rd_kafka_resume_partitions(handle, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            context.onError?(KafkaError(err, "\(paused ? "pause" : "resume"): \(String(cString: rd_kafka_err2str(err)))"))
        }
    }

    /// The offset value that makes a partition start at the group's committed offset.
    public static let storedOffset: Int64 = Int64(RD_KAFKA_OFFSET_STORED)

    public func close() {
        guard state == .open else { return }
        state = .closing
        let err = rd_kafka_consumer_close(handle)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            context.onError?(KafkaError(err, "consumer close: \(String(cString: rd_kafka_err2str(err)))"))
        }
        state = .closed
        rd_kafka_destroy(handle)
    }

    private func checkOpen(file: String, line: Int) throws {
        if state == .closed { throw KafkaError(code: KafkaError.state, reason: "consumer is closed", file: file, line: line) }
    }

    private func topicIndex(_ rkt: OpaquePointer?) -> Int? {
        guard let rkt else { return nil }
        for entry in topicCache where entry.rkt == rkt { return entry.index }
        // First message of this topic handle: resolve by name once.
        let name = String(cString: rd_kafka_topic_name(rkt))
        guard let index = topics.firstIndex(of: name) else { return nil }
        topicCache.append((rkt, index))
        return index
    }

    private func reportMessageError(_ msg: UnsafeMutablePointer<rd_kafka_message_t>, _ err: rd_kafka_resp_err_t) {
        guard let onError = context.onError else { return }
        var reason = String(cString: rd_kafka_message_errstr(msg))
        if let rkt = msg.pointee.rkt {
            reason = "\(String(cString: rd_kafka_topic_name(rkt)))[\(msg.pointee.partition)]: \(reason)"
        }
        onError(KafkaError(err, reason))
    }
}

/// What the C callbacks reach through librdkafka's opaque pointer; owned by the consumer, which outlives rk.
final class ConsumerContext {
    weak var handler: RebalanceHandler?
    var onError: ((KafkaError) -> Void)?
    var onStatistics: ((String) -> Void)?
    var rebalanceCount = 0
    var revokingLost = false

    func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ list: RDKafkaPartitionList.Pointer) {
        rebalanceCount += 1
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            let partitions = RDKafkaPartitionList.partitions(list)
            var assignList = list
            var deferredList: RDKafkaPartitionList.Pointer? = nil
            if let handler {
                let starts = handler.partitionsAssigned(partitions)
                // The offset set here before assign is where fetching starts: how a checkpoint takes effect.
                for (i, start) in starts.prefix(partitions.count).enumerated() {
                    if let start { list.pointee.elems[i].offset = start }
                }
                if starts.contains(where: { $0 == KafkaConsumer.deferAssignment }) {
                    // Assign only what may start now; the handler assigns the rest later with `assign`.
                    let ready = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
                    for (i, start) in starts.prefix(partitions.count).enumerated() where start != KafkaConsumer.deferAssignment {
                        let e = rd_kafka_topic_partition_list_add(ready, list.pointee.elems[i].topic, list.pointee.elems[i].partition)!
                        e.pointee.offset = list.pointee.elems[i].offset
                    }
                    assignList = ready
                    deferredList = ready
                }
            }
            defer { if let deferredList { rd_kafka_topic_partition_list_destroy(deferredList) } }
            let e = rd_kafka_assign(rk, assignList)
            if e != RD_KAFKA_RESP_ERR_NO_ERROR { onError?(KafkaError(e, "assign: \(String(cString: rd_kafka_err2str(e)))")) }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            // Still assigned here: commits from the handler succeed; after unassign they fail with _STATE.
            let lost = rd_kafka_assignment_lost(rk) != 0
            revokingLost = lost
            handler?.partitionsRevoked(RDKafkaPartitionList.partitions(list), lost: lost)
            revokingLost = false
            _ = rd_kafka_assign(rk, nil)
        default:
            onError?(KafkaError(err, "rebalance error: \(String(cString: rd_kafka_err2str(err)))"))
            _ = rd_kafka_assign(rk, nil)
        }
    }
}
