import Foundation
import TokenmeterCore
import TokenmeterDaemon
import TokenmeterKafka

/// The notifier's loop: one thread polls the alerts topic in its own consumer group, hands each message to
/// the `Dispatcher`, records the workers' outcomes and commits what is finished. Offsets are committed
/// only for messages whose every route was delivered or given up (manual commits, as the daemon does).
public final class NotifyService {
    public let config: NotifyConfig
    public let dispatcher: Dispatcher
    let consumer: KafkaConsumer
    let clock: NotifyClock
    let log: NotifyLog
    let rebalance: Rebalance
    var lastCommit: EpochMillis = 0

    /// Commits the finished part of partitions that are being taken away, then forgets them.
    final class Rebalance: RebalanceHandler {
        weak var service: NotifyService?
        func partitionsAssigned(_ partitions: [TopicPartition]) -> [Int64?] {
            service?.log.log("assigned \(partitions.map { "\($0.topic)[\($0.partition)]" }.joined(separator: ", "))",
                             now: service?.clock.nowMillis() ?? 0)
            return partitions.map { _ in nil }
        }
        func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) {
            guard let service else { return }
            if !lost {
                _ = try? service.dispatcher.drainOutcomes()
                service.commit(force: true)
            }
            service.dispatcher.dropPartitions(partitions.map(\.partition))
        }
    }

    /// [kafka.properties] that only a consumer takes: not given to the dead-letter producer, which would
    /// warn about each.
    static let consumerOnly: Set<String> = [
        "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "auto.offset.reset", "group.instance.id",
        "partition.assignment.strategy", "fetch.min.bytes", "fetch.max.bytes", "fetch.wait.max.ms", "max.partition.fetch.bytes",
        "isolation.level", "auto.commit.interval.ms", "queued.min.messages", "queued.max.messages.kbytes", "check.crcs",
        "group.protocol.type", "coordinator.query.interval.ms", "fetch.error.backoff.ms", "enable.partition.eof",
    ]

    public init(config: NotifyConfig, sinks: [Sink], clock: NotifyClock = SystemNotifyClock(), log: NotifyLog,
                transport: (Sink) -> HTTPTransport = { _ in CurlTransport() }) throws {
        self.config = config
        self.clock = clock
        self.log = log
        try FileManager.default.createDirectory(atPath: config.stateDir, withIntermediateDirectories: true)
        let now = clock.nowMillis()
        let delivered = try DeliveredLog(dir: config.stateDir, retentionMillis: config.rememberMillis,
                                         maxPerSink: config.maxRememberedPerSink, now: now)
        let dead = try DeadLetterFile(path: config.deadLetterPath, maxBytes: config.deadLetterMaxBytes)
        // The dead-letter producer: idempotent (a retry inside librdkafka never doubles a dead letter), and
        // a dead letter not acknowledged within `message.timeout.ms` (librdkafka's 5 minutes unless set in
        // [kafka.properties]) goes to the file instead.
        let producer = try config.deadLetterTopic.map { _ in
            try KafkaProducer(properties: [("bootstrap.servers", config.brokers), ("enable.idempotence", "true"), ("linger.ms", "5")]
                              + config.kafkaProperties.filter { !NotifyService.consumerOnly.contains($0.0) })
        }
        dispatcher = Dispatcher(sinks: sinks, routes: config.routes, queueSize: config.queueSize, policy: config.retry,
                                delivered: delivered, deadLetters: dead, deadLetterTopic: config.deadLetterTopic,
                                sourceTopic: config.topic, producer: producer, clock: clock, log: log, transport: transport)
        rebalance = Rebalance()
        consumer = try KafkaConsumer(properties: [
            ("bootstrap.servers", config.brokers),
            ("group.id", config.groupID),
            ("auto.offset.reset", "earliest"),
        ] + config.kafkaProperties, topics: [config.topic], rebalance: rebalance)
        rebalance.service = self
        var errors = 0
        consumer.onError = { [log, clock] e in
            errors += 1
            log.log("kafka: \(e.reason)", now: clock.nowMillis())
        }
    }

    /// Runs until `stop` says so, then drains: no new messages, up to `shutdownTimeout` for the deliveries
    /// in flight, a last commit of what finished, and leaves the group.
    public func run(stop: () -> Bool) throws {
        dispatcher.start()
        log.log("consuming \(config.topic) as group \(config.groupID); sinks: "
                + dispatcher.sinks.map { "\($0.name) (\($0.kind.rawValue) \($0.redactedURL))" }.joined(separator: ", "), now: clock.nowMillis())
        var failure: Error?
        while !stop() {
            do {
                var batchError: Error?
                consumer.poll(maxMessages: 200, timeoutMs: 100) { m in
                    guard batchError == nil else { return }
                    do { try dispatcher.handle(partition: m.partition, offset: m.offset, value: Array(m.payload)) } catch {
                        batchError = error
                    }
                }
                if let batchError { throw batchError }
                try dispatcher.drainOutcomes()
                commit(force: false)
            } catch {
                failure = error
                break
            }
        }
        if failure == nil {
            // Deliveries in flight, and dead letters not yet acknowledged by their topic, get the deadline.
            let deadline = clock.nowMillis() + config.shutdownTimeoutMillis
            while dispatcher.pendingMessages > 0 && clock.nowMillis() < deadline {
                _ = try? dispatcher.drainOutcomes(waitMillis: 100)
            }
            _ = try? dispatcher.drainOutcomes()
            commit(force: true)
        }
        dispatcher.stop(timeoutMillis: 1_000)
        consumer.close()
        if let failure { throw failure }
    }

    /// Commits what is finished, at most every 500 ms unless `force`.
    func commit(force: Bool) {
        let now = clock.nowMillis()
        guard force || now - lastCommit >= 500 else { return }
        let list = dispatcher.committable()
        guard !list.isEmpty else { return }
        lastCommit = now
        do {
            try consumer.commit(list.map { TopicPartitionOffset(TopicPartition(topic: config.topic, partition: $0.0), offset: $0.1) })
            dispatcher.markCommitted(list)
            dispatcher.metrics.commits.add(1, ordering: .relaxed)
        } catch let e as KafkaError {
            log.log("commit: \(e.reason)", now: now)
        } catch {
            log.log("commit: \(error)", now: now)
        }
    }
}
