import Foundation

/// Reads what /metrics and readiness need from librdkafka's statistics JSON (`statistics.interval.ms`):
/// the consumer lag of each partition (`topics.<topic>.partitions.<n>.consumer_lag`, the high watermark
/// minus the group's committed offset, as `kafka-consumer-groups` shows it) and how many brokers are up.
/// Runs once per statistics interval, so a plain JSON parse is fine here.
enum KafkaStatistics {
    struct Summary {
        /// Partitions fetched from a broker that is up; a partition whose leader is unreachable has no
        /// current lag (its last one would only look current), so it is left out.
        var lag: [PartitionLag]
        /// Brokers (of the cluster's, not the bootstrap entries) with an open connection.
        var brokersUp: Int
    }

    static func parse(_ json: String) -> Summary? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return nil }
        var up = Set<Int>()
        for (_, b) in (root["brokers"] as? [String: Any]) ?? [:] {
            guard let b = b as? [String: Any], let id = (b["nodeid"] as? NSNumber)?.intValue, id >= 0 else { continue }
            if b["state"] as? String == "UP" { up.insert(id) }
        }
        var out: [PartitionLag] = []
        for (topic, t) in (root["topics"] as? [String: Any]) ?? [:] {
            guard let partitions = (t as? [String: Any])?["partitions"] as? [String: Any] else { continue }
            for (key, p) in partitions {
                guard let n = Int32(key), n >= 0, let p = p as? [String: Any] else { continue }
                // -1 means unknown: a partition not assigned to this member, or no offsets fetched yet.
                guard let lag = (p["consumer_lag"] as? NSNumber)?.int64Value, lag >= 0 else { continue }
                guard let leader = (p["leader"] as? NSNumber)?.intValue, up.contains(leader) else { continue }
                out.append(PartitionLag(topic: topic, partition: n, lag: lag))
            }
        }
        return Summary(lag: out.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }, brokersUp: up.count)
    }
}
