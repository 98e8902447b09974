import Logging
import TokenmeterCore
import TokenmeterKafka

/// `tokenmeter run`: the consume loop that binds Kafka to the pipeline.
///
/// One thread does everything on the hot path: it polls librdkafka (which also runs the rebalance, error
/// and statistics callbacks on this thread), feeds the pipeline, writes closed windows, and checkpoints.
///
/// Durability order of every flush, and why a crash between any two steps is harmless:
///  1. rollup files of closed windows (temp, fsync, rename): a crash after this replays events whose
///     windows re-close into the same file names with the same content;
///  2. dead letters delivered (producer flush), and those the dead-letter topic refused or could not take
///     (too large for it) appended to the spill file and fsynced: a crash after this only re-sends a dead
///     letter or spills it again;
///  3. the checkpoint (open windows + the offsets they cover): a crash after this restarts from it, and
///     the offsets not yet committed are taken from the checkpoint, not from Kafka;
///  4. the Kafka commit of exactly the checkpoint's offsets.
public final class Daemon {
    /// The running configuration; a SIGHUP reload replaces its prices, rules and checkpoint interval.
    public internal(set) var config: TokenmeterConfig
    /// The guardrail rules in force (budgets, spikes, outcome limits); replaced at once by a reload.
    public internal(set) var rules: AlertRules
    let log: Logger
    let pipeline: Pipeline
    let stop: StopSignal
    var consumer: KafkaConsumer?
    let producer: KafkaProducer?
    let checkpointPath: String
    /// Partition states from the checkpoint, handed out as Kafka assigns the partitions.
    var restored: [TopicPartition: PartitionState] = [:]
    var committed: [TopicPartition: Int64] = [:]
    var shuttingDown = false
    var lastCheckpoint: Int64 = 0
    var lastIdleCheck: Int64 = 0
    var lastProgressPublish: Int64 = 0
    var deadLetterToken: UInt64 = 0
    /// `auto.offset.reset` is `latest`: a partition the group never committed starts at its end.
    var offsetResetLatest = false
    var deliveryFailures = 0
    /// Dead letters the topic cannot take, kept unchanged in `<state.dir>/dead-letters/spill`.
    let spill: DeadLetterSpill
    /// Dead letters for the spill file whose write failed: retried before the next checkpoint (which
    /// waits for them, as it waits for undelivered dead letters).
    var pendingSpill: [(topic: String, partition: Int32, offset: Int64, reason: String, key: [UInt8]?, value: [UInt8])] = []
    let spillLog = RateLimitedLog(perMinute: 20, what: "dead letters kept in the spill file")
    let rejectLog = RateLimitedLog(perMinute: 20, what: "rejected messages")
    /// The rollup folder cannot be written: closed windows wait in memory, consuming is paused.
    var writeFailing = false
    /// The state folder (checkpoint, alert outbox) cannot be written: no checkpoint, so no commit; consuming
    /// is paused so that what exists only in memory stops growing.
    var stateFailing = false
    /// Whether this loop paused the assigned partitions (for `writeFailing` or `stateFailing`).
    var pausedForDisk = false
    /// Consuming paused because the state is over `state.max_memory` (see Daemon+Memory).
    var memoryPaused = false
    var lastMemoryReminder: Int64 = 0
    var stateBytes = 0
    /// `consumer.rebalanceCount` when the partitions were paused: a rebalance meanwhile assigns partitions
    /// that are not paused yet.
    var pausedAtRebalance = 0
    var rollupWriteFailures: Int64 = 0
    var stateWriteFailures: Int64 = 0
    /// While a folder keeps failing: one reminder a minute (monotonic ms of the last line), not one per retry.
    var lastDiskReminder: Int64 = 0
    var checkpointPostponed = false
    var lastOverflowEvents: Int64 = 0
    /// Alerts taken from the engine but not yet in the outbox (the outbox write failed).
    var pendingAlerts: [Alert] = []
    /// Dedup memory of partitions handed over on a rebalance, reused if they come back.
    var retainedDedup: [TopicPartition: DedupSet] = [:]
    /// Offsets of partitions handed over on a revoke whose commit the broker refused.
    var unreleased: [TopicPartition: Int64] = [:]
    /// Assigned partitions not yet fetched: their previous owner has not handed them over (-> deadline).
    var awaitingHandover: [TopicPartition: Int64] = [:]
    var lastHandoverCheck: Int64 = 0
    let overflowLog = RateLimitedLog(perMinute: 1, what: "rollups.max_keys_per_window warnings")
    public let progress: DaemonProgress
    /// Seconds from consuming a message to the acknowledgement of the alert it raised, most recent last
    /// (read it after `run` returns: the polling thread owns it).
    public var alertLatencySamples: [Double] { alertPublisher.latencySamples }
    let alertPublisher: AlertPublisher
    var checkpoints = 0
    let ops: DaemonOperations
    /// Changelog mode (`kafka.changelog_topic`): partition state in Kafka, see Daemon+Changelog.
    let changelog: ChangelogStore?
    var lastRecord: [TopicPartition: RecordMark] = [:]
    var spendInFlight: [SpendInFlight] = []
    var unrecordedSpend: [TopicPartition: [ChangelogRecord.SpendOut]] = [:]
    /// Spend mode (`kafka.spend_topic`): the alert shards this instance owns, see Daemon+Spend.
    var shards: [Int32: AlertShard] = [:]
    var spendNames = StringTable()
    var spendNamesAfterCompaction = 0
    var shardCount: Int?
    var router: SpendRouter?
    var spendApplied: Int64 = 0
    var spendSkipped: Int64 = 0
    /// Changelog mode: partitions of the local checkpoint, used only for a partition the changelog has no
    /// record of (the first start after switching changelog mode on).
    var localCache: [TopicPartition: PartitionState] = [:]

    /// Once a stop is requested the process exits within this many seconds (status 1 past it); nil: no limit.
    public var shutdownDeadlineSeconds: Double? {
        get { ops.shutdownDeadlineSeconds }
        set { ops.shutdownDeadlineSeconds = newValue }
    }

    /// The librdkafka properties every client starts from, secrets included: read once per start.
    let kafkaBase: [(String, String)]

    /// `configPath`: the file a SIGHUP re-reads (nil: reload is refused with a warning).
    /// `kafkaProperties`: the properties `StartupChecks` built (secret files already read); nil reads them here.
    public init(config: TokenmeterConfig, configPath: String? = nil, log: Logger, stop: StopSignal,
                progress: DaemonProgress = DaemonProgress(), kafkaProperties: [(String, String)]? = nil) throws {
        self.config = config
        self.rules = AlertRules(config)
        self.ops = DaemonOperations(configPath: configPath)
        self.progress = progress
        self.log = log
        self.stop = stop
        let instance = config.rollups.instance ?? WallClock.hostName()
        self.pipeline = Pipeline(config: config, instance: instance)
        self.checkpointPath = config.state.dir + "/checkpoint.bin"
        self.spill = DeadLetterSpill(stateDir: config.state.dir)
        let base = try kafkaProperties ?? Daemon.kafkaProperties(config, instance: instance)
        self.kafkaBase = base
        Daemon.installKafkaLog(log, secrets: base.filter { p in config.kafka.secretFiles.contains { $0.key == p.0 } }.map(\.1))
        if config.kafka.deadLetterTopic != nil {
            self.producer = try KafkaProducer(properties: base + [("enable.idempotence", "true"), ("linger.ms", "5")])
        } else {
            self.producer = nil
        }
        self.changelog = try config.kafka.changelogTopic.map { try ChangelogStore(topic: $0, group: config.kafka.groupId, properties: base, log: log) }
        self.alertPublisher = try AlertPublisher(topic: config.kafka.alertsTopic, properties: base, stateDir: config.state.dir, log: log)
        producer?.onDelivery = { [weak self] _, error in
            if let error, let self {
                self.deliveryFailures += 1
                self.log.error("dead letter not delivered", metadata: ["error": "\(error)"])
            }
        }
        producer?.onUndelivered = { [weak self] _, error, key, value, headers in
            guard let self else { return }
            func header(_ name: String) -> String { headers.first { $0.0 == name }.map { String(decoding: $0.1, as: UTF8.self) } ?? "" }
            self.spillDeadLetter(topic: header("tokenmeter-topic"), partition: Int32(header("tokenmeter-partition")) ?? -1,
                                 offset: Int64(header("tokenmeter-offset")) ?? -1, reason: header("tokenmeter-error"),
                                 key: key.map { Array($0) }, value: Array(value), error: error)
        }
        log.info("tokenmeter starting", metadata: ["version": "\(BuildInfo.version)", "commit": "\(BuildInfo.gitCommit)", "instance": "\(instance)", "topics": "\(config.kafka.topics.joined(separator: ","))",
                                                   "rollups": "\(config.rollups.dir)", "state": "\(config.state.dir)"])
    }

    /// librdkafka properties: brokers, group, the pass-through properties, then secrets read from files.
    public static func kafkaProperties(_ c: TokenmeterConfig, instance: String) throws -> [(String, String)] {
        // Defaults first: a property the user sets in [kafka.properties] comes later and wins.
        var props: [(String, String)] = [("bootstrap.servers", c.kafka.brokers), ("client.id", "tokenmeter-\(instance)")]
        for kv in c.kafka.properties { props.append((kv.key, kv.value)) }
        for kv in c.kafka.secretFiles {
            switch SecretFile.read(secretPath(kv.value)) {
            case .success(let contents): props.append((kv.key, contents.value))
            case .failure(let problem): throw DaemonError("kafka.secret_files \"\(kv.key)\": \(problem.message)")
            }
        }
        return props
    }

    /// The consumer's librdkafka properties: our defaults (a property the user sets wins), the shared
    /// ones, the group, and with `kafka.static_membership` the instance name as `group.instance.id`.
    public static func consumerProperties(_ c: TokenmeterConfig, base: [(String, String)], instance: String) -> [(String, String)] {
        var props = [("auto.offset.reset", "earliest"), ("statistics.interval.ms", "5000")] + base + [("group.id", c.kafka.groupId)]
        if c.kafka.staticMembership { props.append(("group.instance.id", instance)) }
        return props
    }

    // MARK: The loop

    public func run() throws {
        try operationsStart()
        defer { operationsFinish() }
        try restoreCheckpoint()
        try alertPublisher.resendOutbox()
        let base = kafkaBase
        let consumerProperties = Daemon.consumerProperties(config, base: base, instance: pipeline.instance)
        offsetResetLatest = ["latest", "largest", "end"].contains(consumerProperties.last { $0.0 == "auto.offset.reset" }?.1 ?? "")
        let consumer = try KafkaConsumer(
            properties: consumerProperties,
            topics: config.kafka.topics + (config.kafka.spendTopic.map { [$0] } ?? []), rebalance: self)
        consumer.onError = { [unowned self] e in self.kafkaErrorReported(e) }
        ops.statisticsIntervalMs = Int64(consumerProperties.last { $0.0 == "statistics.interval.ms" }?.1 ?? "") ?? 5_000
        consumer.onStatistics = { [unowned self] json in self.statisticsReceived(json) }
        self.consumer = consumer
        lastCheckpoint = WallClock.monotonicMillis()
        while !stop.stopRequested {
            if stop.takeReload() { reloadConfig() }
            if writeFailing || stateFailing || memoryPaused {
                // Nothing new is fetched while closed windows cannot reach the disk or no checkpoint can be
                // written (the partitions are paused, and no checkpoint or commit passes rows that exist
                // only in memory); polling goes on, so the group membership holds, delivery reports are
                // served and the loop does not spin. Files are retried every iteration, the checkpoint at
                // its interval. No idle close here: the partitions are quiet because WE paused them.
                _ = consumer.poll(maxMessages: 2000, timeoutMs: 200) { m in self.handle(m, wallNow: WallClock.now()) }
                if pausedForDisk && consumer.rebalanceCount != pausedAtRebalance {
                    pausedAtRebalance = consumer.rebalanceCount
                    consumer.pause(consumer.assignment())
                }
                producer?.poll(timeoutMs: 0)
                alertPublisher.poll()
                flushFiles()
                if stateFailing && !writeFailing
                    && WallClock.monotonicMillis() - lastCheckpoint >= config.state.checkpointInterval.millis {
                    checkpoint(reason: "retry")
                }
                if memoryPaused && !writeFailing && !stateFailing { relieveMemory() }
                if writeFailing || stateFailing { remindDiskTrouble() }
                publishProgress()
                operationsTick()
                continue
            }
            let wallNow = WallClock.now()
            _ = consumer.poll(maxMessages: 2000, timeoutMs: 100) { m in
                self.handle(m, wallNow: wallNow)
            }
            producer?.poll(timeoutMs: 0)
            publishAlerts()
            if pipeline.metrics.overflowEvents != lastOverflowEvents {
                if overflowLog.allow(now: WallClock.monotonicMillis(), log: log) {
                    log.warning("a window reached rollups.max_keys_per_window; new keys are counted under __overflow__",
                                metadata: ["overflow_events": "\(pipeline.metrics.overflowEvents)",
                                           "max_keys_per_window": "\(config.rollups.maxKeysPerWindow)"])
                }
                lastOverflowEvents = pipeline.metrics.overflowEvents
            }
            let mono = WallClock.monotonicMillis()
            if !awaitingHandover.isEmpty && mono - lastHandoverCheck >= 200 {
                lastHandoverCheck = mono
                resolveHandovers()
            }
            if mono - lastIdleCheck >= 1000 {
                lastIdleCheck = mono
                for l in [rejectLog, spillLog, overflowLog] { l.reportSuppressed(now: mono, log: log) }
                let topics = config.kafka.topics
                pipeline.closeIdle(wallNow: WallClock.now()) { t, p, next in
                    // Messages fetched but not yet handed to us (or known on the broker) are not quiet; nor is a
                    // partition resumed from the checkpoint before its first fetch response says where it ends.
                    guard next >= 0 else { return false }
                    guard let high = consumer.cachedHighWatermark(topic: topics[t], partition: p) else { return true }
                    return next < high
                }
            }
            flushFiles()
            if mono - lastCheckpoint >= config.state.checkpointInterval.millis {
                checkpoint(reason: "interval")
            }
            // Ten snapshots a second are plenty for /metrics, STATUS and the demo; one per batch walked
            // every partition's windows on the hot thread several times per batch.
            if mono - lastProgressPublish >= 100 {
                lastProgressPublish = mono
                checkMemory()
                publishProgress()
            }
            operationsTick()
        }
        operationsStopping()
        shutdown()
    }

    func handle(_ m: KafkaMessage, wallNow: EpochMillis) {
        // The spend topic comes after the usage topics in the subscription.
        if m.topicIndex >= config.kafka.topics.count { handleSpend(m); return }
        let result = pipeline.process(m.payload, topicIndex: m.topicIndex, partition: m.partition, offset: m.offset,
                                      messageTime: m.timestampMs, wallNow: wallNow)
        // An alert goes out as soon as the message that raised it is counted, not at the end of the batch
        // (up to 2,000 messages later): alerts are rare, and a crossing should reach the topic in milliseconds.
        if !pipeline.alerts.pending.isEmpty { publishAlerts(consumedNanos: WallClock.monotonicNanos()) }
        if case .rejected(let reason) = result {
            if rejectLog.allow(now: WallClock.monotonicMillis(), log: log) {
                log.warning("rejected message", metadata: ["reason": "\(reason)", "topic": "\(config.kafka.topics[m.topicIndex])",
                                                           "partition": "\(m.partition)", "offset": "\(m.offset)"])
            }
            deadLetter(m, reason: reason)
        }
    }

    func deadLetter(_ m: KafkaMessage, reason: RejectReason) {
        guard let producer, let topic = config.kafka.deadLetterTopic else { return }
        deadLetterToken &+= 1
        let headers: [(String, [UInt8])] = [
            ("tokenmeter-error", Array(reason.description.utf8)),
            ("tokenmeter-topic", Array(config.kafka.topics[m.topicIndex].utf8)),
            ("tokenmeter-partition", Array(String(m.partition).utf8)),
            ("tokenmeter-offset", Array(String(m.offset).utf8)),
        ]
        do {
            try producer.produce(topic: topic, key: m.key, value: m.payload, headers: headers, token: deadLetterToken)
        } catch {
            // Too large for the topic (message.max.bytes), or refused otherwise: the offset will be committed,
            // so the message is kept in the spill file instead.
            spillDeadLetter(topic: config.kafka.topics[m.topicIndex], partition: m.partition, offset: m.offset,
                            reason: reason.description, key: m.key.map { Array($0) }, value: Array(m.payload), error: error)
        }
    }

    /// Keeps a dead letter the topic cannot take in the spill file (see `DeadLetterSpill`); when the file
    /// cannot be written, in memory until it can (the checkpoint waits for it, consuming pauses).
    func spillDeadLetter(topic: String, partition: Int32, offset: Int64, reason: String, key: [UInt8]?, value: [UInt8], error: Error) {
        if spillLog.allow(now: WallClock.monotonicMillis(), log: log) {
            log.error("dead letter cannot go to the dead-letter topic; kept in the spill file", metadata: [
                "error": "\(error)", "bytes": "\(value.count)", "topic": "\(topic)", "partition": "\(partition)",
                "offset": "\(offset)", "spill": "\(spill.path)", "spilled_before": "\(spill.spilled)"])
        }
        pendingSpill.append((topic, partition, offset, reason, key, value))
        _ = writePendingSpill()
    }

    /// Appends the dead letters waiting for the spill file; false while it cannot be written.
    func writePendingSpill() -> Bool {
        while let d = pendingSpill.first {
            do {
                if try !spill.append(topic: d.topic, partition: d.partition, offset: d.offset, reason: d.reason, key: d.key, value: d.value) {
                    log.error("dead letter larger than the spill file may grow; dropped, only counted", metadata: [
                        "bytes": "\(d.value.count)", "topic": "\(d.topic)", "partition": "\(d.partition)", "offset": "\(d.offset)",
                        "max_bytes": "\(spill.maxFileBytes)"])
                }
            } catch {
                stateWriteFailed("a dead letter to the spill file", error)
                return false
            }
            pendingSpill.removeFirst()
        }
        return true
    }

    func flushFiles() {
        guard !pipeline.pending.isEmpty else { return }
        do {
            let t0 = WallClock.monotonicNanos()
            try pipeline.writePending()
            observeFlush(seconds: Double(WallClock.monotonicNanos() - t0) / 1e9)
            if writeFailing {
                log.notice("rollup directory writable again", metadata: ["failed_attempts": "\(rollupWriteFailures)"])
                writeFailing = false
                updateDiskPause()
            }
        } catch {
            rollupWriteFailures += 1
            if !writeFailing {
                log.error("cannot write rollup file; consuming paused until it can", metadata: ["error": "\(error)"])
                writeFailing = true
                updateDiskPause()
            }
        }
    }

    /// The state folder failed (checkpoint or outbox): count it; the first failure is logged and pauses
    /// consuming, the next ones only count (a retry every checkpoint interval must not flood the log).
    func stateWriteFailed(_ what: String, _ error: Error) {
        stateWriteFailures += 1
        guard !stateFailing else { return }
        log.error("cannot write to the state directory; consuming paused and no offset committed until it can",
                  metadata: ["writing": "\(what)", "error": "\(error)", "state_dir": "\(config.state.dir)"])
        stateFailing = true
        updateDiskPause()
    }

    func stateWriteSucceeded() {
        guard stateFailing else { return }
        log.notice("state directory writable again", metadata: ["failed_attempts": "\(stateWriteFailures)"])
        stateFailing = false
        updateDiskPause()
    }

    /// Pauses the assigned partitions while a folder fails, resumes them once both are writable.
    func updateDiskPause() {
        let want = writeFailing || stateFailing || memoryPaused
        guard want != pausedForDisk, let consumer else { return }
        pausedForDisk = want
        if want {
            lastDiskReminder = WallClock.monotonicMillis()
            pausedAtRebalance = consumer.rebalanceCount
            consumer.pause(consumer.assignment())
        } else {
            consumer.resume(consumer.assignment())
            log.notice("consuming resumes")
        }
    }

    /// One line a minute while a folder keeps failing, with the number of failed attempts so far (the
    /// first line is the error logged when the trouble began).
    func remindDiskTrouble() {
        let now = WallClock.monotonicMillis()
        guard now - lastDiskReminder >= 60_000 else { return }
        lastDiskReminder = now
        log.warning("still cannot write; consuming stays paused",
                    metadata: ["rollup_dir_failing": "\(writeFailing)", "state_dir_failing": "\(stateFailing)",
                               "rollup_write_failures": "\(rollupWriteFailures)", "state_write_failures": "\(stateWriteFailures)"])
    }

    // MARK: Checkpoint and commit

    /// Puts the last checkpoint's state of `partitions` back into `restored`.
    func reloadFromCheckpoint(_ partitions: Set<TopicPartition>) {
        do {
            guard let bytes = try DurableFile.read(checkpointPath) else { return }
            for st in try pipeline.decodeCheckpoint(bytes, restoreAlerts: false).partitions {
                let tp = TopicPartition(topic: st.topic, partition: st.partition)
                if partitions.contains(tp) { restored[tp] = st }
            }
        } catch {
            log.error("cannot re-read the checkpoint after a lost assignment", metadata: ["error": "\(error)"])
        }
    }

    func restoreCheckpoint() throws {
        guard let bytes = try DurableFile.read(checkpointPath) else {
            log.info("no checkpoint; starting fresh", metadata: ["path": "\(checkpointPath)"])
            return
        }
        let r = try pipeline.decodeCheckpoint(bytes, restoreAlerts: true)
        if !r.droppedSizes.isEmpty {
            log.warning("checkpoint has window sizes no longer configured; their open rows are dropped",
                        metadata: ["sizes_ms": "\(r.droppedSizes.sorted())"])
        }
        if changelogMode {
            // The changelog is the truth about partitions: whoever held them last may have been another instance.
            for s in r.partitions { localCache[TopicPartition(topic: s.topic, partition: s.partition)] = s }
            log.info("checkpoint restored (partitions come from the changelog; the local copy serves those it has no record of)",
                     metadata: ["partitions": "\(r.partitions.count)"])
            return
        }
        for s in r.partitions { restored[TopicPartition(topic: s.topic, partition: s.partition)] = s }
        log.info("checkpoint restored", metadata: ["partitions": "\(r.partitions.count)",
                                                    "open_rows": "\(r.partitions.reduce(0) { $0 + $1.windows.openRowCount })"])
    }

    /// Files, dead letters, checkpoint, commit: see the type's comment for why in this order.
    @discardableResult
    func checkpoint(reason: String) -> Bool {
        lastCheckpoint = WallClock.monotonicMillis()
        let t0 = WallClock.monotonicNanos()
        let ok = checkpointSteps(reason: reason)
        observeCheckpoint(ok: ok, seconds: Double(WallClock.monotonicNanos() - t0) / 1e9)
        return ok
    }

    private func checkpointSteps(reason: String) -> Bool {
        // The checkpoint records crossings as published: they must be in the outbox first.
        guard publishAlerts() else { return false }
        flushFiles()
        guard pipeline.pending.isEmpty else { return false }
        // A checkpoint past a bad message whose dead letter is still only in the producer's memory would
        // lose that dead letter on a crash: wait for delivery, briefly (the loop must keep polling through
        // a broker outage), and otherwise postpone.
        if let producer, producer.outstanding > 0 {
            guard producer.flush(timeoutMs: reason == "shutdown" ? 5_000 : 200) else {
                if !checkpointPostponed {
                    log.warning("dead letters not yet delivered (broker unreachable?); checkpoints and commits wait for them",
                                metadata: ["outstanding": "\(producer.outstanding)"])
                }
                checkpointPostponed = true
                return false
            }
        }
        // Dead letters refused by the topic (seen in the delivery reports just served) are in the spill file.
        guard writePendingSpill() else { return false }
        guard writeChangelog(timeoutMs: reason == "shutdown" || reason == "rebalance" ? 10_000 : 2_000) else {
            if !checkpointPostponed {
                log.warning("changelog records not yet acknowledged (broker unreachable?); checkpoints and commits wait for them")
            }
            checkpointPostponed = true
            return false
        }
        compactNamesIfDue()
        do {
            try DurableFile.makeDirectories(config.state.dir)
            try DurableFile.write(pipeline.checkpointBytes(unassigned: Array(restored.values) + Array(localCache.values),
                                                             includeAssigned: !changelogMode), to: checkpointPath)
        } catch {
            stateWriteFailed("the checkpoint", error)
            return false
        }
        if checkpointPostponed {
            log.notice("dead letters and changelog records delivered; checkpoints and commits resume")
            checkpointPostponed = false
        }
        stateWriteSucceeded()
        alertPublisher.checkpointed()
        commitAssigned()
        checkpoints += 1
        return true
    }

    /// Moves new alerts into the outbox and onto the producer; false when the outbox cannot be written
    /// (then no checkpoint may be taken, or a restart would forget the alerts).
    @discardableResult
    func publishAlerts(consumedNanos: Int64? = nil) -> Bool {
        alertPublisher.poll()
        let new = pipeline.alerts.takePending()
        pendingAlerts.append(contentsOf: new)
        if !shards.isEmpty { pendingAlerts.append(contentsOf: takeShardAlerts()) }
        guard !pendingAlerts.isEmpty else { return true }
        do {
            try alertPublisher.publish(pendingAlerts, consumedNanos: consumedNanos)
            pendingAlerts.removeAll()
            return true
        } catch {
            // The outbox is in the state folder: the same trouble as a checkpoint that cannot be written.
            stateWriteFailed("alerts to the outbox", error)
            return false
        }
    }

    func publishProgress() {
        let metrics = pipeline.metrics
        let assigned = pipeline.assigned.count
        let open = pipeline.openRowCount
        let internedNames = pipeline.internedNames, internedBytes = pipeline.internedBytes
        let stateBytes = stateBytes, memoryPaused = memoryPaused
        let pending = pipeline.pending.count
        let checkpoints = checkpoints
        let alertsPublished = alertPublisher.published, alertsFailed = alertPublisher.failed, alertsRejected = alertPublisher.rejected
        let spilled = spill.spilled, spillDropped = spill.dropped, spillBytes = spill.bytes
        let outboxDepth = alertPublisher.outboxDepth, lastAlert = alertPublisher.lastAlert
        let alertLatency = alertPublisher.latency
        let openWindows = openWindowCount
        let clRecords = changelog?.recordsWritten ?? 0, clBytes = changelog?.bytesWritten ?? 0
        let shardCount = shards.count, applied = spendApplied, skipped = spendSkipped
        progress.update {
            $0.changelogRecords = clRecords
            $0.changelogBytes = clBytes
            $0.alertShards = shardCount
            $0.spendApplied = applied
            $0.spendSkipped = skipped
            $0.metrics = metrics
            $0.assignedPartitions = assigned
            $0.openRows = open
            $0.internedNames = internedNames
            $0.internedBytes = internedBytes
            $0.stateBytes = stateBytes
            $0.memoryPaused = memoryPaused
            $0.pendingFiles = pending
            $0.checkpoints = checkpoints
            $0.alertsPublished = alertsPublished
            $0.alertsFailed = alertsFailed
            $0.alertsRejected = alertsRejected
            $0.deadLettersSpilled = spilled
            $0.deadLetterSpillDropped = spillDropped
            $0.deadLetterSpillBytes = spillBytes
            $0.alertOutboxDepth = Int64(outboxDepth)
            $0.lastAlert = lastAlert
            $0.alertLatencySeconds = alertLatency
            $0.joined = assigned > 0 || $0.joined
            $0.openWindows = openWindows
            $0.rollupWriteFailing = writeFailing
            $0.rollupWriteFailures = rollupWriteFailures
            $0.stateWriteFailing = stateFailing
            $0.stateWriteFailures = stateWriteFailures
            fillOperations(&$0)
        }
    }

    /// Commit metadata says who holds the rows before the committed offset, for the handover protocol
    /// (see `awaitHandover`): `owned:<instance>` while we consume, `released:<instance>` once a revoked
    /// partition's rows are in partial files, `checkpointed:<instance>` after a shutdown (the rows wait
    /// in our checkpoint).
    var ownedMetadata: String { "owned:\(pipeline.instance)" }

    /// Every partition this instance consumes, with its next offset (-1: not known yet): the usage
    /// partitions in the pipeline and, in spend mode, the spend-topic partitions of its alert shards.
    var heldPartitions: [(tp: TopicPartition, next: Int64)] {
        var out = pipeline.assigned.map { (TopicPartition(topic: config.kafka.topics[$0.topicIndex], partition: $0.state.partition),
                                           $0.state.nextOffset) }
        if let spendTopic = config.kafka.spendTopic {
            for s in shards.values { out.append((TopicPartition(topic: spendTopic, partition: s.index), s.nextOffset)) }
        }
        return out
    }

    func commitAssigned(only: Set<TopicPartition>? = nil) {
        guard let consumer else { return }
        var offsets: [TopicPartitionOffset] = []
        for (tp, next) in heldPartitions {
            if let only, !only.contains(tp) { continue }
            // At shutdown the metadata changes to "checkpointed" even when the offset did not move.
            guard next >= 0, shuttingDown || committed[tp] != next else { continue }
            offsets.append(TopicPartitionOffset(tp, offset: next))
        }
        guard !offsets.isEmpty else { return }
        do {
            try consumer.commit(offsets, metadata: shuttingDown ? "checkpointed:\(pipeline.instance)" : ownedMetadata)
            for o in offsets { committed[TopicPartition(topic: o.topic, partition: o.partition)] = o.offset }
        } catch {
            log.warning("offset commit failed; retried at the next checkpoint", metadata: ["error": "\(error)"])
        }
    }

    func shutdown() {
        log.info("stopping: writing checkpoint and committing offsets")
        shuttingDown = true
        checkpoint(reason: "shutdown")
        consumer?.close()
        consumer = nil
        alertPublisher.flush(timeoutMs: 5_000)
        if let producer, !producer.flush(timeoutMs: 10_000) {
            log.warning("some dead letters were not delivered before the deadline", metadata: ["outstanding": "\(producer.outstanding)"])
        }
        publishProgress()
        let m = pipeline.metrics
        log.info("stopped", metadata: ["messages": "\(m.messages)", "usage": "\(m.usageEvents)", "outcomes": "\(m.outcomeEvents)",
                                       "rejected": "\(m.rejectedTotal)", "duplicates": "\(m.duplicates)", "late": "\(m.lateEvents)",
                                       "files": "\(m.filesWritten)"])
    }
}

public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
