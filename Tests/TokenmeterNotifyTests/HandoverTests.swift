import Foundation
import Synchronization
import Testing
import TokenmeterCore
import TokenmeterDaemon
import TokenmeterKafka
@testable import TokenmeterNotify

/// The notifier's hand-over at a stop, against librdkafka's mock cluster in this process.
@Suite("Notify hand-over at a stop")
struct NotifyHandoverTests {
    /// A stop while another instance joins: the broker refuses the stop's release (REBALANCE_IN_PROGRESS,
    /// injected on the next OffsetCommit). The notifier stays in the group, takes no partition, and commits
    /// the release from the assign callback once the join is done, so the partitions' new owner starts at
    /// once instead of waiting `kafka.handover_timeout` and sending the delivered alerts again. Leaving at
    /// once, as it did, left its `owned` claim on record.
    @Test(.timeLimit(.minutes(2))) func aReleaseRefusedAtTheStopIsCommittedOnceBackInTheGroup() throws {
        let cluster = try MockCluster(brokers: 1)
        let topic = "alerts"
        try cluster.createTopic(topic, partitions: 2)
        let dir = try Sample.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers), ("linger.ms", "1")])
        for (i, p) in [Int32(0), 1, 0].enumerated() {
            let value = Sample.alert(id: String(format: "a1b2c3d4e5f6071%d", i)).jsonBytes
            try value.withUnsafeBytes { try producer.produce(topic: topic, key: nil, value: $0, partition: p, token: UInt64(i)) }
        }
        #expect(producer.flush(timeoutMs: 10_000))

        var config = NotifyConfig()
        config.brokers = cluster.bootstrapServers
        config.topic = topic
        config.groupID = "notify-handover"
        config.instance = "a"
        config.stateDir = dir
        config.handoverTimeoutMillis = 30_000
        config.kafkaProperties = [("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500"), ("log_level", "3")]
        config.routes = [Route(sinks: ["hook"])]
        let transport = ScriptedTransport()
        let lines = Mutex<[String]>([])
        let service = try NotifyService(config: config, sinks: [Sink(name: "hook", kind: .webhook, url: "http://127.0.0.1:9/hook")],
                                        log: NotifyLog { line in lines.withLock { $0.append(line) } }, transport: { _ in transport })
        let stop = Atomic<Bool>(false)
        let finished = DispatchSemaphore(value: 0)
        // The service runs on a thread of its own, as in `tokenmeter notify`; the test only reads its sink.
        nonisolated(unsafe) let running = service
        Thread.detachNewThread {
            try? running.run { stop.load(ordering: .relaxed) }
            finished.signal()
        }
        let tps = [TopicPartition(topic: topic, partition: 0), TopicPartition(topic: topic, partition: 1)]
        let reader = try KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers), ("group.id", "notify-handover")],
                                       topics: [], rebalance: nil)
        defer { reader.close() }
        func committed() -> [(offset: Int64?, metadata: String?)] { (try? reader.committedWithMetadata(tps, timeoutMs: 5_000)) ?? [] }
        func claims() -> [String?] { committed().map(\.metadata) }
        // Every alert delivered and committed under the notifier's own claim (two on partition 0, one on 1):
        // the claim alone is committed at offset 0 before anything is delivered, and a regular commit after
        // the refusal is injected would take the refusal instead of the stop's release.
        func allCommitted() -> Bool {
            let c = committed()
            return c.map(\.offset) == [2, 1] && c.map(\.metadata) == ["owned:a", "owned:a"]
        }
        let deadline = Date().addingTimeInterval(60)
        while (transport.count < 3 || !allCommitted()) && Date() < deadline { usleep(50_000) }
        #expect(transport.count == 3)
        #expect(allCommitted(), "\(committed())")

        // The next commit, the stop's release, is refused as during a rebalance; another member joins.
        cluster.pushRequestErrors(apiKey: 8, errors: [KafkaError.rebalanceInProgress])
        stop.store(true, ordering: .relaxed)
        let other = try KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers), ("group.id", "notify-handover"),
                                                   ("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500")],
                                      topics: [topic], rebalance: nil)
        defer { other.close() }
        while finished.wait(timeout: .now()) == .timedOut {
            _ = other.poll(maxMessages: 10, timeoutMs: 100) { _ in }
        }
        let log = lines.withLock { $0 }.joined(separator: "\n")
        #expect(log.contains("release at shutdown"), "the release was not refused, so this test proves nothing:\n\(log)")
        #expect(claims() == ["released:a", "released:a"], "\(log)")
        #expect(transport.count == 3, "an alert was delivered again")
    }
}
