import Logging
import TokenmeterCore
import TokenmeterKafka

/// `tokenmeter run`: the consume loop that binds Kafka to the pipeline.
///
/// One thread does everything on the hot path: it polls the consumer (which also runs the rebalance, error
/// and statistics callbacks on this thread), feeds the pipeline, writes closed windows, and checkpoints.
/// The loop is thin; the decisions live in parts it owns, each with one job:
///  - `PartitionOwnership` (+ `HandoverView`): which partitions are held, restored, awaited, committed;
///    the hand-over protocol is in Daemon+Rebalance, changelog restore in Daemon+Changelog;
///  - the checkpoint sequence (Daemon+Checkpoint, `CheckpointStep`): the durable order of every flush;
///  - `FlowControl`: pause and resume for a failing disk or a state over `state.max_memory`;
///  - `Alerting`: the one home of alerts (the pipeline's engine, the alert shards, the outbox publisher);
///  - `DeadLetterSink`: the dead-letter topic and the spill file;
///  - `DaemonOperations`: readiness, systemd, the HTTP endpoints, reloads.
/// Kafka is reached through `KafkaClients` and time through `DaemonClock`: the daemon's tests run it
/// in-process against an in-memory broker and a manual clock.
///
/// A fatal condition (`DaemonFailure`) stops the loop where it happens: no further checkpoint, no commit;
/// `run` throws it and the command exits with its code.
public final class Daemon {
    /// The running configuration; a SIGHUP reload replaces its prices, rules and checkpoint interval.
    public internal(set) var config: TokenmeterConfig
    let log: Logger
    let clock: any DaemonClock
    let pipeline: Pipeline
    let kafka: KafkaSetup
    var consumer: (any GroupConsumer)?
    var ownership = PartitionOwnership()
    var flow = FlowControl()
    let deadLetters: DeadLetterSink
    let alerting: Alerting
    /// Changelog mode (`kafka.changelog_topic`): partition state in Kafka, see Daemon+Changelog.
    let changelog: ChangelogBook?
    let ops: DaemonOperations
    public let progress: DaemonProgress
    var loop: LoopState
    /// `checkpoint.bin` and the de-duplication ids beside it (see `LocalCheckpoint`).
    let local: LocalCheckpoint

    /// The guardrail rules in force (budgets, spikes, outcome limits); replaced at once by a reload.
    public var rules: AlertRules { alerting.rules }

    /// Seconds from consuming a message to the acknowledgement of the alert it raised, most recent last
    /// (read it after `run` returns: the polling thread owns it).
    public var alertLatencySamples: [Double] { alerting.publisher.latencySamples }

    /// The longest time between two polls of the consumer, in milliseconds (read it after `run` returns):
    /// what a checkpoint or a batch of files holds back the counting of the messages that wait meanwhile.
    public var longestPollGapMillis: Int64 { loop.longestPollGap }

    /// The longest durable checkpoint taken while consuming, in milliseconds (read it after `run`
    /// returns): whether the longest gap between polls was a checkpoint.
    public var longestCheckpointMillis: Double { ops.checkpoints.longestSeconds * 1000 }

    /// Once a stop is requested the process must end within this many seconds; nil: no limit. Past it,
    /// `onShutdownDeadline` runs (the command exits 1 there).
    public var shutdownDeadlineSeconds: Double? {
        get { ops.shutdownDeadlineSeconds }
        set { ops.shutdownDeadlineSeconds = newValue }
    }
    public var onShutdownDeadline: (@Sendable () -> Void)? {
        get { ops.onShutdownDeadline }
        set { ops.onShutdownDeadline = newValue }
    }

    /// A test's fault injection (a crash after a checkpoint step); nil in production.
    public var faults: DaemonFaults? {
        get { loop.faults }
        set { loop.faults = newValue }
    }

    /// `configPath`: the file a SIGHUP re-reads (nil: reload is refused with a warning).
    /// `kafkaProperties`: the properties `StartupChecks` built (secret files already read); nil reads them here.
    /// `clients` and `clock`: librdkafka and the system clock, unless a test passes its own.
    public init(config: TokenmeterConfig, configPath: String? = nil, log: Logger, stop: StopSignal,
                progress: DaemonProgress = DaemonProgress(), kafkaProperties: [(String, String)]? = nil,
                clients: any KafkaClients = LibrdkafkaClients(), clock: any DaemonClock = SystemClock()) throws {
        self.config = config
        self.ops = DaemonOperations(configPath: configPath, startWall: clock.now())
        self.progress = progress
        self.log = log
        self.loop = LoopState(stop: stop)
        self.local = LocalCheckpoint(stateDir: config.state.dir)
        self.clock = clock
        let instance = config.rollups.instance ?? WallClock.hostName()
        self.pipeline = Pipeline(config: config, instance: instance)
        let base = try kafkaProperties ?? Daemon.kafkaProperties(config, instance: instance)
        self.kafka = KafkaSetup(clients: clients, base: base)
        Daemon.installKafkaLog(log, secrets: base.filter { p in config.kafka.secretFiles.contains { $0.key == p.0 } }.map(\.1))
        let deadLetterProducer = try config.kafka.deadLetterTopic.map { _ in
            try clients.producer(properties: base + [("enable.idempotence", "true"), ("linger.ms", "5")])
        }
        self.deadLetters = DeadLetterSink(topic: config.kafka.deadLetterTopic, stateDir: config.state.dir,
                                          producer: deadLetterProducer, log: log, clock: clock)
        self.changelog = try config.kafka.changelogTopic.map {
            ChangelogBook(store: try ChangelogStore(topic: $0, group: config.kafka.groupId, properties: base, clients: clients, log: log, clock: clock))
        }
        let publisher = try AlertPublisher(topic: config.kafka.alertsTopic, properties: base, stateDir: config.state.dir,
                                           clients: clients, log: log, clock: clock)
        self.alerting = Alerting(publisher: publisher, rules: AlertRules(config))
        deadLetters.onSpillFailure = { [unowned self] error in self.stateWriteFailed("a dead letter to the spill file", error) }
        log.info("tokenmeter starting", metadata: ["version": "\(BuildInfo.version)", "commit": "\(BuildInfo.gitCommit)", "instance": "\(instance)", "topics": "\(config.kafka.topics.joined(separator: ","))",
                                                   "rollups": "\(config.rollups.dir)", "state": "\(config.state.dir)"])
    }

    /// librdkafka properties: brokers, client id, the pass-through properties, then secrets read from files
    /// (for callers that did not run `StartupChecks`, which builds the same list).
    public static func kafkaProperties(_ c: TokenmeterConfig, instance: String) throws -> [(String, String)] {
        var props = StartupChecks.plainProperties(c, instance: instance)
        for (kv, read) in StartupChecks.readSecretFiles(c) {
            switch read {
            case .success(let contents): props.append((kv.key, contents.value))
            case .failure(let problem): throw DaemonError("kafka.secret_files \"\(kv.key)\": \(problem.message)")
            }
        }
        return props
    }

    /// The consumer's librdkafka properties: our defaults (a property the user sets wins), the shared
    /// ones, the group, and with `kafka.static_membership` the instance name as `group.instance.id`.
    public static func consumerProperties(_ c: TokenmeterConfig, base: [(String, String)], instance: String) -> [(String, String)] {
        var props = [("auto.offset.reset", "earliest"), ("statistics.interval.ms", "5000")] + throughputDefaults + base
            + [("group.id", c.kafka.groupId)]
        if c.kafka.staticMembership { props.append(("group.instance.id", instance)) }
        return props
    }

    /// Consumer settings chosen for throughput (docs/performance.md says why, with measurements); a
    /// property set in `[kafka.properties]` wins over each.
    ///  - `fetch.min.bytes` 64 KiB with `fetch.wait.max.ms` 100 (librdkafka: 1 byte, 500 ms): a consumer
    ///    that has caught up gets each fetch response with up to 64 KiB (about 170 events) or 100 ms of
    ///    traffic, instead of one response per message that arrived, each a request, a response and a
    ///    wake-up of the polling thread on both sides. 100 ms is the most it adds to an event's way in,
    ///    far below a window's grace and the alert latency that matters. With a backlog nothing changes:
    ///    responses are full anyway.
    ///  - `queued.max.messages.kbytes` 64 MiB (librdkafka's own) with `queued.min.messages` 1,000,000
    ///    (librdkafka: 100,000): the prefetched messages held in memory beside the state. Once the queue
    ///    is over either limit, librdkafka stops fetching, and in scheduler traces the next fetch came
    ///    about a second later; so the queue must hold more than a second of what the polling thread
    ///    consumes, or the thread runs dry (with 32 MiB and 100,000 messages, about 37 MB of these ~375-byte
    ///    events, it waited on an empty queue 40% of the time, 100 ms polls in a row). The message count
    ///    is raised so that the byte limit decides for events this small.
    public static let throughputDefaults: [(String, String)] = [
        ("fetch.min.bytes", "65536"), ("fetch.wait.max.ms", "100"), ("queued.max.messages.kbytes", "65536"),
        ("queued.min.messages", "1000000"),
    ]

    // MARK: The loop

    /// Runs until a stop is requested (then a final checkpoint) or a fatal condition (thrown).
    public func run() throws {
        defer { operationsFinish() }
        try start()
        while !loop.stop.stopRequested {
            try iterate()
        }
        try finish()
    }

    /// Everything before the first poll: operations (HTTP, deadline), the checkpoint, the outbox, the consumer.
    public func start() throws {
        try operationsStart()
        try restoreCheckpoint()
        try alerting.publisher.resendOutbox()
        let consumerProperties = Daemon.consumerProperties(config, base: kafka.base, instance: pipeline.instance)
        loop.offsetResetLatest = ["latest", "largest", "end"].contains(consumerProperties.last { $0.0 == "auto.offset.reset" }?.1 ?? "")
        // The spend topic comes after the usage topics in the subscription (`spendTopicIndex`).
        let consumer = try kafka.clients.consumer(
            properties: consumerProperties,
            topics: config.kafka.topics + (config.kafka.spendTopic.map { [$0] } ?? []), rebalance: self)
        consumer.onError = { [unowned self] e in self.kafkaErrorReported(e) }
        ops.readiness.statisticsIntervalMs = Int64(consumerProperties.last { $0.0 == "statistics.interval.ms" }?.1 ?? "") ?? 5_000
        consumer.onStatistics = { [unowned self] json in self.statisticsReceived(json) }
        self.consumer = consumer
        loop.lastCheckpoint = clock.monotonicMillis()
    }

    /// One turn of the loop: a batch polled and processed, then what is due (hand-overs, idle close, files,
    /// checkpoint, progress). Throws the fatal condition that stopped the daemon, if any.
    public func iterate() throws {
        guard let consumer else { return }
        try failIfFatal()
        if loop.stop.takeReload() { reloadConfig() }
        if flow.wantsPause {
            iteratePaused(consumer)
        } else {
            let wallNow = clock.now()
            let polled = clock.monotonicMillis()
            if loop.lastPoll > 0 { loop.longestPollGap = max(loop.longestPollGap, polled - loop.lastPoll) }
            loop.lastPoll = polled
            _ = consumer.poll(maxMessages: 2000, timeoutMs: 100) { m in
                self.handle(m, wallNow: wallNow)
            }
            try failIfFatal()
            deadLetters.poll()
            publishAlerts()
            warnOnOverflow()
            let mono = clock.monotonicMillis()
            if !ownership.awaitingHandover.isEmpty && mono - ownership.lastHandoverCheck >= 200 {
                ownership.lastHandoverCheck = mono
                resolveHandovers()
            }
            if mono - loop.lastIdleCheck >= 1000 {
                loop.lastIdleCheck = mono
                deadLetters.reportSuppressed(now: mono)
                loop.overflowLog.reportSuppressed(now: mono, log: log)
                closeIdleWindows(consumer)
            }
            // Closed windows wait for the checkpoint, which writes them first, all in one durable batch
            // (see `Pipeline.pendingRowsToWrite`); only a large backlog of them is written before it.
            if pipeline.pendingDue { flushFiles() }
            if mono - loop.lastCheckpoint >= config.state.checkpointInterval.millis {
                checkpoint(reason: "interval")
            }
            // Ten snapshots a second are plenty for /metrics, STATUS and the demo; one per batch walked
            // every partition's windows on the hot thread several times per batch.
            if mono - loop.lastProgressPublish >= 100 {
                loop.lastProgressPublish = mono
                checkMemory()
                publishProgress()
            }
        }
        try failIfFatal()
        operationsTick()
    }

    /// Nothing new is fetched while closed windows cannot reach the disk, no checkpoint can be written, or
    /// the state is over its memory ceiling (the partitions are paused, and no checkpoint or commit passes
    /// rows that exist only in memory); polling goes on, so the group membership holds, delivery reports
    /// are served and the loop does not spin. Files are retried every turn, the checkpoint at its interval.
    /// No idle close for a failing disk: the partitions are quiet because WE paused them.
    private func iteratePaused(_ consumer: any GroupConsumer) {
        _ = consumer.poll(maxMessages: 2000, timeoutMs: 200) { m in self.handle(m, wallNow: self.clock.now()) }
        if flow.paused && consumer.rebalanceCount != flow.pausedAtRebalance {
            flow.pausedAtRebalance = consumer.rebalanceCount
            consumer.pause(consumer.assignment())
        }
        deadLetters.poll()
        alerting.publisher.poll()
        flushFiles()
        if flow.stateFailing && !flow.rollupFailing
            && clock.monotonicMillis() - loop.lastCheckpoint >= config.state.checkpointInterval.millis {
            checkpoint(reason: "retry")
        }
        if flow.memoryOver && !flow.diskFailing { relieveMemory() }
        if flow.diskReminderDue(now: clock.monotonicMillis()) {
            log.warning("still cannot write; consuming stays paused",
                        metadata: ["rollup_dir_failing": "\(flow.rollupFailing)", "state_dir_failing": "\(flow.stateFailing)",
                                   "rollup_write_failures": "\(flow.rollupFailures)", "state_write_failures": "\(flow.stateFailures)"])
        }
        publishProgress()
    }

    /// After the loop: STOPPING, the final checkpoint and commit, the clients closed.
    public func finish() throws {
        operationsStopping()
        try failIfFatal()
        try awaitUnreleasedCommit()
        shutdown()
        try failIfFatal()
    }

    func failIfFatal() throws(DaemonFailure) {
        if let f = loop.fatal { throw f }
    }

    /// Records a fatal condition met inside a callback (where it cannot be thrown): the loop throws it at
    /// its next check, and nothing durable happens meanwhile (see `checkpoint`).
    func fail(_ failure: DaemonFailure) {
        guard loop.fatal == nil else { return }
        log.critical("stopping: \(failure)")
        loop.fatal = failure
    }

    /// Windows with no traffic for `rollups.idle_close` close by the wall clock.
    private func closeIdleWindows(_ consumer: any GroupConsumer) {
        let topics = config.kafka.topics
        pipeline.closeIdle(wallNow: clock.now()) { t, p, next in
            // Messages fetched but not yet handed to us (or known on the broker) are not quiet; nor is a
            // partition resumed from the checkpoint before its first fetch response says where it ends.
            guard next >= 0 else { return false }
            guard let high = consumer.cachedHighWatermark(topic: topics[t], partition: p) else { return true }
            return next < high
        }
    }

    private func warnOnOverflow() {
        guard pipeline.metrics.overflowEvents != loop.lastOverflowEvents else { return }
        if loop.overflowLog.allow(now: clock.monotonicMillis(), log: log) {
            log.warning("a window reached rollups.max_keys_per_window; new keys are counted under __overflow__",
                        metadata: ["overflow_events": "\(pipeline.metrics.overflowEvents)",
                                   "max_keys_per_window": "\(config.rollups.maxKeysPerWindow)"])
        }
        loop.lastOverflowEvents = pipeline.metrics.overflowEvents
    }

    /// Index of the spend topic in the subscription (after the usage topics), nil without spend mode.
    var spendTopicIndex: Int? { config.kafka.spendTopic == nil ? nil : config.kafka.topics.count }

    func handle(_ m: KafkaMessage, wallNow: EpochMillis) {
        if m.topicIndex == spendTopicIndex { handleSpend(m); return }
        let result = pipeline.process(m.payload, topicIndex: m.topicIndex, partition: m.partition, offset: m.offset,
                                      messageTime: m.timestampMs, wallNow: wallNow)
        // An alert goes out as soon as the message that raised it is counted, not at the end of the batch
        // (up to 2,000 messages later): alerts are rare, and a crossing should reach the topic in milliseconds.
        if !pipeline.alerts.pending.isEmpty { publishAlerts(consumedNanos: clock.monotonicNanos()) }
        if case .rejected(let reason) = result {
            deadLetters.reject(m, sourceTopic: config.kafka.topics[m.topicIndex], reason: reason)
        }
    }

    // MARK: Files and disk trouble

    func flushFiles() {
        guard !pipeline.pending.isEmpty else { return }
        do {
            let t0 = clock.monotonicNanos()
            try pipeline.writePending()
            ops.checkpoints.flushSeconds.observe(Double(clock.monotonicNanos() - t0) / 1e9)
            if flow.rollupWriteSucceeded() {
                log.notice("rollup directory writable again", metadata: ["failed_attempts": "\(flow.rollupFailures)"])
                applyFlow()
            }
        } catch {
            if flow.rollupWriteFailed() {
                log.error("cannot write rollup file; consuming paused until it can", metadata: ["error": "\(error)"])
                applyFlow()
            }
        }
    }

    /// The state folder failed (checkpoint, outbox, spill file): the first failure is logged and pauses
    /// consuming, the next ones only count (a retry every checkpoint interval must not flood the log).
    func stateWriteFailed(_ what: String, _ error: Error) {
        guard flow.stateWriteFailed() else { return }
        log.error("cannot write to the state directory; consuming paused and no offset committed until it can",
                  metadata: ["writing": "\(what)", "error": "\(error)", "state_dir": "\(config.state.dir)"])
        applyFlow()
    }

    func stateWriteSucceeded() {
        guard flow.stateWriteSucceeded() else { return }
        log.notice("state directory writable again", metadata: ["failed_attempts": "\(flow.stateFailures)"])
        applyFlow()
    }

    /// Pauses the assigned partitions while a folder fails or memory is over, resumes them once all is well.
    func applyFlow() {
        guard let consumer else { return }
        switch flow.settle(now: clock.monotonicMillis(), rebalanceCount: consumer.rebalanceCount) {
        case .none: break
        case .pause: consumer.pause(consumer.assignment())
        case .resume:
            consumer.resume(consumer.assignment())
            log.notice("consuming resumes")
        }
    }

    func shutdown() {
        log.info("stopping: writing checkpoint and committing offsets")
        loop.shuttingDown = true
        checkpoint(reason: "shutdown")
        awaitRefusedShutdownCommit()
        consumer?.close()
        consumer = nil
        alerting.publisher.flush(timeoutMs: 5_000)
        deadLetters.finish(timeoutMs: 10_000)
        publishProgress()
        let m = pipeline.metrics
        log.info("stopped", metadata: ["messages": "\(m.messages)", "usage": "\(m.usageEvents)", "outcomes": "\(m.outcomeEvents)",
                                       "rejected": "\(m.rejectedTotal)", "duplicates": "\(m.duplicates)", "late": "\(m.lateEvents)",
                                       "files": "\(m.filesWritten)"])
    }
}

/// The librdkafka properties every client starts from (secrets included: read once per start), and the
/// factory of the clients.
struct KafkaSetup {
    let clients: any KafkaClients
    let base: [(String, String)]
}

/// The loop's own bookkeeping: when things last ran (monotonic ms), and how the run stands.
struct LoopState {
    /// SIGTERM/SIGINT (stop) and SIGHUP (reload), set by the signal thread.
    let stop: StopSignal
    var lastCheckpoint: Int64 = 0
    var lastIdleCheck: Int64 = 0
    var lastProgressPublish: Int64 = 0
    /// When the consumer was last polled while consuming (0: not yet), and the longest gap between two polls.
    var lastPoll: Int64 = 0
    var longestPollGap: Int64 = 0
    var lastOverflowEvents: Int64 = 0
    let overflowLog = RateLimitedLog(perMinute: 1, what: "rollups.max_keys_per_window warnings")
    var shuttingDown = false
    /// The shutdown's commit (`checkpointed:<instance>` at the checkpoint's offsets) when the broker refused
    /// it: sent again until taken, before the consumer leaves the group (see `awaitRefusedShutdownCommit`).
    var refusedShutdownCommit: (offsets: [TopicPartitionOffset], metadata: [String])? = nil
    /// A checkpoint is waiting for dead letters or changelog records to be acknowledged (said once).
    var checkpointPostponed = false
    /// `auto.offset.reset` is `latest`: a partition the group never committed starts at its end.
    var offsetResetLatest = false
    /// The state's memory by the pipeline's model, as last measured.
    var stateBytes = 0
    /// Set once by `fail`: the loop stops and throws it.
    var fatal: DaemonFailure?
    var faults: DaemonFaults?
}

public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
