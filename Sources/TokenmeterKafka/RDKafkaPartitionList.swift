import Crdkafka
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Conversions between `rd_kafka_topic_partition_list_t` and Swift values; the list never escapes this target.
enum RDKafkaPartitionList {
    typealias Pointer = UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    static func partitions(_ list: Pointer) -> [TopicPartition] {
        let count = Int(list.pointee.cnt)
        var out: [TopicPartition] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            let e = list.pointee.elems[i]
            out.append(TopicPartition(topic: String(cString: e.topic), partition: e.partition))
        }
        return out
    }

    /// Caller destroys the list with `rd_kafka_topic_partition_list_destroy`.
    static func make(_ partitions: [TopicPartition]) -> Pointer {
        let list = rd_kafka_topic_partition_list_new(Int32(max(partitions.count, 1)))!
        for tp in partitions {
            _ = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)
        }
        return list
    }

    /// Caller destroys the list; `metadataEach[i]` goes with `offsets[i]`, malloc'ed per element because the
    /// list frees it.
    static func make(_ offsets: [TopicPartitionOffset], metadataEach: [String?]) -> Pointer {
        precondition(metadataEach.count == offsets.count)
        let list = rd_kafka_topic_partition_list_new(Int32(max(offsets.count, 1)))!
        for (tpo, metadata) in zip(offsets, metadataEach) {
            let e = rd_kafka_topic_partition_list_add(list, tpo.topic, tpo.partition)!
            e.pointee.offset = tpo.offset
            if let metadata {
                let bytes = Array(metadata.utf8)
                let mem = malloc(max(bytes.count, 1))!
                bytes.withUnsafeBytes { mem.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
                e.pointee.metadata = mem
                e.pointee.metadata_size = bytes.count
            }
        }
        return list
    }

    /// The first per-partition error in the list, if any.
    static func firstError(_ list: Pointer, file: String, line: Int) -> KafkaError? {
        for i in 0..<Int(list.pointee.cnt) {
            let e = list.pointee.elems[i]
            if e.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let where_ = "\(String(cString: e.topic))[\(e.partition)]"
                return KafkaError(
                    code: e.err.rawValue, reason: "\(where_): \(String(cString: rd_kafka_err2str(e.err)))",
                    file: file, line: line)
            }
        }
        return nil
    }
}
