import Foundation
import Logging
import TokenmeterCore
import TokenmeterKafka

/// A restore measured on its own (for `tokenmeter bench --state`): what a restarted or new instance reads to
/// rebuild the partitions' state, how long it takes, and how many ids and rows come back.
public enum StateRestoreProbe {
    public struct Result: Sendable {
        public var seconds: Double
        public var bytesRead: Int64
        public var partitions: Int
        public var ids: Int
        public var openRows: Int
    }

    /// The local checkpoint (base and deltas) and id segments of `config.state.dir`, as `tokenmeter run` reads them at start.
    public static func local(_ config: TokenmeterConfig) throws -> Result {
        let t0 = Date()
        let store = LocalCheckpoint(stateDir: config.state.dir)
        let bytes = fileSize(store.path) + fileSize(store.logPath) + segmentBytes(store.ids.dir)
        let pipeline = Pipeline(config: config, instance: "restore-probe")
        let r = try store.read(pipeline, restoreAlerts: true)
        let states = r?.partitions ?? []
        return Result(seconds: Date().timeIntervalSince(t0), bytesRead: bytes, partitions: states.count,
                      ids: states.reduce(0) { $0 + $1.dedup.count }, openRows: states.reduce(0) { $0 + $1.windows.openRowCount })
    }

    /// The changelog records of `partitions` of `config.kafka.topics[0]`, as a new owner reads them.
    public static func changelog(_ config: TokenmeterConfig, properties: [(String, String)], partitions: [Int32]) throws -> Result {
        guard let topic = config.kafka.changelogTopic else { throw DaemonError("no kafka.changelog_topic") }
        let t0 = Date()
        var log = Logger(label: "restore-probe")
        log.logLevel = .error
        let store = try ChangelogStore(topic: topic, group: config.kafka.groupId, properties: properties,
                                       clients: LibrdkafkaClients(), log: log, clock: SystemClock())
        let source = config.kafka.topics[0]
        let found = try store.newest(partitions.map { (key: ChangelogRecord.key(topic: source, partition: $0), partitionNumber: $0) },
                                     timeoutMs: 60_000)
        let pipeline = Pipeline(config: config, instance: "restore-probe")
        var ids = 0, rows = 0
        for record in found.values {
            let decoded = try pipeline.restoreCheckpoint(try record.chain(pipeline), restoreAlerts: false)
            guard var st = decoded.partitions.first else { continue }
            for c in record.idChunks where c.sequence <= decoded.sequence { st.dedup.restore(c.ids, from: c.from) }
            ids += st.dedup.count
            rows += st.windows.openRowCount
        }
        return Result(seconds: Date().timeIntervalSince(t0), bytesRead: store.bytesRead, partitions: found.count, ids: ids, openRows: rows)
    }

    private static func fileSize(_ path: String) -> Int64 {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int).map { Int64($0) } ?? 0
    }

    private static func segmentBytes(_ dir: String) -> Int64 {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.reduce(0) { $0 + fileSize(dir + "/" + $1) }
    }
}
