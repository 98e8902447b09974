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
    let handover: Handover
    var lastCommit: EpochMillis = 0

    /// Partitions arrive through the hand-over (`Handover`). Partitions taken away: their deliveries may
    /// finish (up to `shutdown_timeout`, as at SIGTERM), what finished is committed and the partitions are
    /// released, then forgotten. Without the wait, the member that takes a partition over would consume its
    /// unfinished messages again and, not having this member's delivered log, send them again: with it, a
    /// rebalance re-sends only what a sink did not answer within the deadline.
    final class Rebalance: RebalanceHandler {
        weak var service: NotifyService?
        func partitionsAssigned(_ partitions: [TopicPartition]) -> [Int64?] {
            guard let service else { return partitions.map { _ in nil } }
            let now = service.clock.nowMillis()
            service.log.log("assigned \(partitions.map { "\($0.topic)[\($0.partition)]" }.joined(separator: ", "))", now: now)
            return service.handover.assigned(partitions.map(\.partition), consumer: service.consumer, log: service.log, now: now)
        }
        func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) {
            guard let service else { return }
            let numbers = partitions.map(\.partition)
            if !lost {
                let deadline = service.clock.nowMillis() + service.config.shutdownTimeoutMillis
                while service.dispatcher.pendingMessages(in: numbers) > 0 && service.clock.nowMillis() < deadline {
                    _ = try? service.dispatcher.drainOutcomes(waitMillis: 100)
                }
                _ = try? service.dispatcher.drainOutcomes()
                let left = service.dispatcher.pendingMessages(in: numbers)
                if left > 0 {
                    service.log.log("partitions revoked with \(left) message(s) not finished within delivery.shutdown_timeout; "
                                    + "their new owner sends them again", now: service.clock.nowMillis())
                }
            }
            var positions: [Int32: Int64] = [:]
            for p in numbers { positions[p] = service.dispatcher.position(p) }
            service.handover.revoked(numbers, positions: positions, lost: lost, consumer: service.consumer, log: service.log,
                                     now: service.clock.nowMillis())
            service.dispatcher.dropPartitions(numbers)
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
        handover = Handover(instance: config.instanceName, topic: config.topic,
                            timeoutMillis: config.handoverTimeoutMillis,
                            startAtEnd: config.kafkaProperties.contains { $0.0 == "auto.offset.reset" && $0.1 == "latest" })
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
                handover.resolve(consumer: consumer, position: dispatcher.nextOffset, log: log, now: clock.nowMillis())
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
            // Released, so that the next owner of each partition starts at once.
            handover.releaseAll(positions: dispatcher.position, consumer: consumer, log: log, now: clock.nowMillis())
            if handover.leaving { awaitRefusedRelease() }
        }
        dispatcher.stop(timeoutMillis: 1_000)
        consumer.close()
        if let failure { throw failure }
    }

    /// The stop's release was refused during a rebalance: the consumer stays in the group, polling (the
    /// assign callback takes no partition, so nothing is delivered), until the release is committed from
    /// the assign callback once back in the group (`stayInGroup`, as the daemon's stop does).
    private func awaitRefusedRelease() {
        log.log("stopping once the release refused during the rebalance is committed", now: clock.nowMillis())
        stayInGroup(handoverTimeoutMillis: config.handoverTimeoutMillis, now: { clock.nowMillis() },
                    while: { !handover.unreleased.isEmpty }) {
            consumer.poll(maxMessages: 200, timeoutMs: 100) { _ in }
        }
        if !handover.unreleased.isEmpty {
            log.log("stopping with the release refused; the partitions' next owner resumes after kafka.handover_timeout",
                    now: clock.nowMillis())
        }
    }

    /// Commits what is finished, at most every 500 ms unless `force`.
    func commit(force: Bool) {
        let now = clock.nowMillis()
        guard force || now - lastCommit >= 500 else { return }
        let list = dispatcher.committable()
        guard !list.isEmpty else { return }
        lastCommit = now
        do {
            try consumer.commit(list.map { TopicPartitionOffset(TopicPartition(topic: config.topic, partition: $0.0), offset: $0.1) },
                                metadata: handover.owned)
            dispatcher.markCommitted(list)
            for (p, o) in list { handover.committed[p] = o }
            dispatcher.metrics.commits.add(1, ordering: .relaxed)
        } catch let e as KafkaError {
            log.log("commit: \(e.reason)", now: now)
        } catch {
            log.log("commit: \(error)", now: now)
        }
    }
}
