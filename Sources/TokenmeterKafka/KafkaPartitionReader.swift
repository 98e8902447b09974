import Crdkafka
#if canImport(Glibc)
import Glibc
#endif

/// Reads whole partitions from their first to their last offset, outside any consumer group: how a
/// changelog is restored. One handle is kept and reused (a new client per restore would pay the broker
/// connection each time). Driven from one thread; not `Sendable`.
///
/// The consumer never subscribes and never commits: `group.id` is only there because librdkafka's
/// high-level consumer wants one, so it is unique per process and never joins a group.
public final class KafkaPartitionReader {
    private let handle: OpaquePointer

    public init(properties: [(String, String)], file: String = #fileID, line: Int = #line) throws {
        let own: [(String, String)] = [("group.id", "tokenmeter-reader-\(getpid())"), ("enable.auto.commit", "false"),
                                       ("enable.auto.offset.store", "false"), ("enable.partition.eof", "true"),
                                       ("auto.offset.reset", "earliest")]
        let conf = try KafkaProperties.makeConf(properties.filter { $0.0 != "group.id" } + own, file: file, line: line)
        handle = try KafkaClientFactory.make(.consumer, conf: conf, what: "reader", file: file, line: line)
    }

    deinit {
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }

    /// The topic's partition count from the broker's metadata.
    public func partitionCount(topic: String, timeoutMs: Int32, file: String = #fileID, line: Int = #line) throws -> Int {
        guard let rkt = rd_kafka_topic_new(handle, topic, nil) else {
            throw KafkaError(rd_kafka_last_error(), "topic '\(topic)'", file: file, line: line)
        }
        defer { rd_kafka_topic_destroy(rkt) }
        var meta: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 0, rkt, &meta, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let meta else {
            throw KafkaError(err, "metadata of '\(topic)': \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
        }
        defer { rd_kafka_metadata_destroy(meta) }
        guard meta.pointee.topic_cnt == 1 else { throw KafkaError(code: KafkaError.invalidArgument, reason: "no metadata for '\(topic)'", file: file, line: line) }
        let t = meta.pointee.topics[0]
        if t.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(t.err, "topic '\(topic)': \(String(cString: rd_kafka_err2str(t.err)))", file: file, line: line)
        }
        return Int(t.partition_cnt)
    }

    /// Every topic the brokers know, with its partition count (one metadata request for all topics; it
    /// names no topic, so it never makes a broker auto-create one).
    public func topicPartitionCounts(timeoutMs: Int32, file: String = #fileID, line: Int = #line) throws -> [String: Int] {
        var meta: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 1, nil, &meta, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let meta else {
            throw KafkaError(err, "metadata: \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
        }
        defer { rd_kafka_metadata_destroy(meta) }
        var counts: [String: Int] = [:]
        for i in 0..<Int(meta.pointee.topic_cnt) {
            let t = meta.pointee.topics[i]
            if t.err == RD_KAFKA_RESP_ERR_NO_ERROR { counts[String(cString: t.topic)] = Int(t.partition_cnt) }
        }
        return counts
    }

    /// Hands every message of `partitions` (key, value, offset), from the first offset to the high
    /// watermark as queried when the call starts, to `body`; throws when that end is not reached within
    /// `timeoutMs`. Buffers are valid only inside `body`.
    public func readAll(_ partitions: [TopicPartition], timeoutMs: Int32,
                        _ body: (TopicPartition, UnsafeRawBufferPointer?, UnsafeRawBufferPointer, Int64) throws -> Void,
                        file: String = #fileID, line: Int = #line) throws {
        var ends: [TopicPartition: Int64] = [:]
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for tp in partitions {
            var low: Int64 = 0, high: Int64 = 0
            let err = rd_kafka_query_watermark_offsets(handle, tp.topic, tp.partition, &low, &high, timeoutMs)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(err, "watermarks of \(tp): \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
            }
            guard high > low else { continue }
            ends[tp] = high
            let e = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
            e.pointee.offset = low
        }
        guard !ends.isEmpty else { return }
        var err = rd_kafka_assign(handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, "assign: \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
        }
        defer { _ = rd_kafka_assign(handle, nil) }
        let deadline = monotonicMillis() + Int64(timeoutMs)
        while !ends.isEmpty {
            let left = deadline - monotonicMillis()
            guard left > 0 else {
                throw KafkaError(code: KafkaError.timedOut, reason: "reading \(ends.keys.map(\.description).sorted()) did not reach the end in \(timeoutMs) ms", file: file, line: line)
            }
            guard let msg = rd_kafka_consumer_poll(handle, Int32(min(left, 200))) else { continue }
            defer { rd_kafka_message_destroy(msg) }
            let m = msg.pointee
            let tp = TopicPartition(topic: m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "", partition: m.partition)
            err = m.err
            if err == RD_KAFKA_RESP_ERR__PARTITION_EOF { ends[tp] = nil; continue }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(err, "reading \(tp): \(String(cString: rd_kafka_err2str(err)))", file: file, line: line)
            }
            guard let end = ends[tp] else { continue }
            let value = UnsafeRawBufferPointer(start: m.payload, count: m.payload == nil ? 0 : m.len)
            let key = m.key.map { UnsafeRawBufferPointer(start: $0, count: m.key_len) }
            try body(tp, key, value, m.offset)
            if m.offset >= end - 1 { ends[tp] = nil }
        }
    }

    private func monotonicMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
