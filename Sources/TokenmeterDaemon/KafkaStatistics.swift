import Foundation

/// Reads what /metrics needs from librdkafka's statistics JSON (`statistics.interval.ms`): the consumer
/// lag of each partition, `topics.<topic>.partitions.<n>.consumer_lag` (the high watermark minus the
/// group's committed offset, as `kafka-consumer-groups` shows it). Runs once per statistics interval, so
/// a plain JSON parse is fine here.
enum KafkaStatistics {
    static func consumerLag(_ json: String) -> [PartitionLag]? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return nil }
        var out: [PartitionLag] = []
        for (topic, t) in (root["topics"] as? [String: Any]) ?? [:] {
            guard let partitions = (t as? [String: Any])?["partitions"] as? [String: Any] else { continue }
            for (key, p) in partitions {
                guard let n = Int32(key), n >= 0, let p = p as? [String: Any] else { continue }
                // -1 means unknown: a partition not assigned to this member, or no offsets fetched yet.
                guard let lag = (p["consumer_lag"] as? NSNumber)?.int64Value, lag >= 0 else { continue }
                out.append(PartitionLag(topic: topic, partition: n, lag: lag))
            }
        }
        return out.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }
}
