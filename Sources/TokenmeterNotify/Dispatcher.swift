import Foundation
import Synchronization
import TokenmeterCore
import TokenmeterDaemon

/// Counters per sink for `/metrics`, written by the workers and the loop, read by the HTTP thread.
public final class NotifyMetrics: Sendable {
    final class PerSink: Sendable {
        let delivered = Atomic<Int>(0)
        let gaveUp = Atomic<Int>(0)
        let retried = Atomic<Int>(0)
        let duplicates = Atomic<Int>(0)
    }
    let sinks: [String: PerSink]
    let names: [String]
    public let invalid = Atomic<Int>(0)
    public let commits = Atomic<Int>(0)
    /// Dead letters acknowledged by `delivery.dead_letter_topic`, and written to the dead-letter file.
    public let deadLettersOnTopic = Atomic<Int>(0)
    public let deadLettersInFile = Atomic<Int>(0)
    /// Consumed messages not yet committable (set by the loop after each step).
    public let pending = Atomic<Int>(0)

    public init(sinkNames: [String]) {
        names = sinkNames
        var m: [String: PerSink] = [:]
        for n in sinkNames { m[n] = PerSink() }
        sinks = m
    }

    public func delivered(_ sink: String) -> Int { sinks[sink]?.delivered.load(ordering: .relaxed) ?? 0 }
    public func gaveUp(_ sink: String) -> Int { sinks[sink]?.gaveUp.load(ordering: .relaxed) ?? 0 }
    public func retried(_ sink: String) -> Int { sinks[sink]?.retried.load(ordering: .relaxed) ?? 0 }
    public func duplicates(_ sink: String) -> Int { sinks[sink]?.duplicates.load(ordering: .relaxed) ?? 0 }

    /// Prometheus text format; `depth` gives each sink's queue depth.
    public func render(depth: (String) -> Int, pendingMessages: Int) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: (String) -> Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for n in names { out += "\(name){sink=\"\(n)\"} \(value(n))\n" }
        }
        family("tokenmeter_notify_delivered_total", "counter", "Alerts a sink accepted.", delivered)
        family("tokenmeter_notify_failed_total", "counter", "Alerts given up for a sink (written to the dead letters).", gaveUp)
        family("tokenmeter_notify_retries_total", "counter", "Attempts that failed and were tried again.", retried)
        family("tokenmeter_notify_duplicates_total", "counter", "Alerts not sent because the sink already has their alert_id.", duplicates)
        family("tokenmeter_notify_queue_depth", "gauge", "Alerts waiting for or in delivery to a sink.", depth)
        out += "# HELP tokenmeter_notify_invalid_total Messages on the alerts topic that are not alerts.\n"
        out += "# TYPE tokenmeter_notify_invalid_total counter\ntokenmeter_notify_invalid_total \(invalid.load(ordering: .relaxed))\n"
        out += "# HELP tokenmeter_notify_dead_letters_total Alerts and messages given up, by where they were kept.\n"
        out += "# TYPE tokenmeter_notify_dead_letters_total counter\n"
        out += "tokenmeter_notify_dead_letters_total{to=\"topic\"} \(deadLettersOnTopic.load(ordering: .relaxed))\n"
        out += "tokenmeter_notify_dead_letters_total{to=\"file\"} \(deadLettersInFile.load(ordering: .relaxed))\n"
        out += "# HELP tokenmeter_notify_pending_messages Consumed messages whose routes are not all finished (not yet committable).\n"
        out += "# TYPE tokenmeter_notify_pending_messages gauge\ntokenmeter_notify_pending_messages \(pendingMessages)\n"
        return out
    }
}

/// At most `perMinute` lines a minute to stderr, then one line saying how many were dropped.
public final class NotifyLog: @unchecked Sendable {
    private let lock = NSLock()
    private let perMinute: Int
    private var windowStart: Int64 = 0
    private var count = 0
    private var dropped = 0
    private let write: @Sendable (String) -> Void

    public init(perMinute: Int = 60, write: @escaping @Sendable (String) -> Void) {
        self.perMinute = perMinute; self.write = write
    }

    public func log(_ line: String, now: EpochMillis) {
        lock.lock()
        var lines: [String] = []
        if now - windowStart >= 60_000 {
            if dropped > 0 { lines.append("tokenmeter notify: \(dropped) log lines dropped in the last minute") }
            windowStart = now; count = 0; dropped = 0
        }
        count += 1
        if count <= perMinute { lines.append("tokenmeter notify: " + line) } else { dropped += 1 }
        lock.unlock()
        for l in lines { write(l) }
    }
}

/// The notifier without Kafka: routes each consumed message to its sinks' workers, skips what a sink already
/// has, records outcomes durably, and says which offsets may be committed.
///
/// Durability order, per route of a message: the sink answers 2xx → the id is appended to the delivered
/// log and fdatasync'ed (or, given up: the dead letter is fdatasync'ed to the file, or acknowledged by the
/// dead-letter topic) → the route counts as finished → once every route of the message has finished
/// (and every message before it in the partition), its offset is committable. A crash anywhere before the
/// commit re-consumes the message; the delivered log keeps it from being sent again to a sink that had it.
/// The only re-send left is a crash between the sink's answer and the log's fdatasync: at least once.
public final class Dispatcher {
    public let sinks: [Sink]
    public let routes: [Route]
    public let workers: [String: SinkWorker]
    public let metrics: NotifyMetrics
    let delivered: DeliveredLog
    public let deadLetters: DeadLetters
    let clock: NotifyClock
    let log: NotifyLog
    /// Filled by the workers' threads, emptied by the loop.
    final class Outcomes: Sendable {
        let list = Mutex<[(sink: String, id: String, outcome: DeliveryOutcome)]>([])
    }
    private let outcomes = Outcomes()
    private let outcomeSignal = DispatchSemaphore(value: 0)
    /// (sink, alert_id) in delivery → the alert and the messages waiting for it (a duplicate message that
    /// arrives while the first copy is still in delivery waits for that delivery instead of sending again).
    private var inFlight: [String: (alert: NotifyAlert, tokens: [OffsetTracker.Token])] = [:]
    public private(set) var tracker = OffsetTracker()

    public init(sinks: [Sink], routes: [Route], queueSize: Int, policy: RetryPolicy, delivered: DeliveredLog,
                deadLetters: DeadLetterFile, deadLetterTopic: String? = nil, sourceTopic: String = "llm-alerts",
                producer: (any MessageProducer)? = nil, clock: NotifyClock, log: NotifyLog,
                transport: (Sink) -> HTTPTransport, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.sinks = sinks; self.routes = routes; self.delivered = delivered
        self.clock = clock; self.log = log
        let metrics = NotifyMetrics(sinkNames: sinks.map(\.name))
        self.metrics = metrics
        self.deadLetters = DeadLetters(file: deadLetters, topic: deadLetterTopic, sourceTopic: sourceTopic, producer: producer,
                                       metrics: metrics, log: log)
        var w: [String: SinkWorker] = [:]
        for s in sinks {
            w[s.name] = SinkWorker(
                sink: s, capacity: queueSize, transport: transport(s), policy: policy, clock: clock, random: random,
                onRetry: { [log, clock] sink, id, attempt, reason, wait in
                    metrics.sinks[sink]?.retried.add(1, ordering: .relaxed)
                    log.log("sink \(sink): alert \(id) attempt \(attempt) failed (\(reason)); retrying in \(wait) ms", now: clock.nowMillis())
                },
                completion: { [outcomes, outcomeSignal] sink, id, outcome in
                    outcomes.list.withLock { $0.append((sink, id, outcome)) }
                    outcomeSignal.signal()
                })
        }
        workers = w
    }

    public func start() { for w in workers.values { w.start() } }

    public func stop(timeoutMillis: Int64) { for w in workers.values { w.stop(timeoutMillis: timeoutMillis) } }

    /// One consumed message.
    public func handle(partition: Int32, offset: Int64, value: [UInt8]) throws(DeliveredLog.Failure) {
        let token = OffsetTracker.Token(partition: partition, offset: offset)
        let now = clock.nowMillis()
        let alert: NotifyAlert
        do {
            alert = try NotifyAlert.parse(value)
        } catch {
            metrics.invalid.add(1, ordering: .relaxed)
            log.log("partition \(partition) offset \(offset): not an alert (\(error.reason)); written to the dead letters", now: now)
            let done = try deadLetters.write(.init(sink: "-", alertID: nil, reason: "not an alert: \(error.reason)", attempts: 0,
                                                   at: now, value: value, isAlert: false, source: token), waiting: [token])
            tracker.begin(token, routes: done ? 0 : 1)
            metrics.pending.store(tracker.pending, ordering: .relaxed)
            return
        }
        var open = 0
        var givenUp: [(String, String)] = []
        for name in Router.sinks(for: alert, routes: routes) {
            guard let worker = workers[name] else { continue }
            if delivered.contains(sink: name, id: alert.id, now: now) {
                metrics.sinks[name]?.duplicates.add(1, ordering: .relaxed)
                continue
            }
            let key = name + "\u{0}" + alert.id
            if inFlight[key] != nil {
                inFlight[key]!.tokens.append(token)
                metrics.sinks[name]?.duplicates.add(1, ordering: .relaxed)
                open += 1
                continue
            }
            if worker.offer(alert) {
                inFlight[key] = (alert, [token])
                open += 1
            } else {
                givenUp.append((name, "queue full (\(worker.capacity) alerts waiting for this sink)"))
            }
        }
        for (name, reason) in givenUp {
            metrics.sinks[name]?.gaveUp.add(1, ordering: .relaxed)
            log.log("sink \(name): alert \(alert.id) given up: \(reason)", now: now)
            let done = try deadLetters.write(.init(sink: name, alertID: alert.id, reason: reason, attempts: 0, at: now,
                                                   value: alert.raw, isAlert: true, source: token), waiting: [token])
            if !done { open += 1 }
        }
        tracker.begin(token, routes: open)
        metrics.pending.store(tracker.pending, ordering: .relaxed)
    }

    /// Records the outcomes the workers reported since the last call; returns how many. With
    /// `waitMillis` > 0 waits that long for the first one when none is there.
    @discardableResult
    public func drainOutcomes(waitMillis: Int = 0) throws(DeliveredLog.Failure) -> Int {
        if waitMillis > 0, outcomes.list.withLock({ $0.isEmpty }) {
            _ = outcomeSignal.wait(timeout: .now() + .milliseconds(waitMillis))
        }
        let batch = outcomes.list.withLock { o -> [(sink: String, id: String, outcome: DeliveryOutcome)] in
            defer { o.removeAll() }
            return o
        }
        let now = clock.nowMillis()
        for (sink, id, outcome) in batch {
            let key = sink + "\u{0}" + id
            guard let entry = inFlight.removeValue(forKey: key) else { continue }
            switch outcome {
            case .delivered:
                try delivered.record(sink: sink, id: id, periodEnd: entry.alert.periodEnd, now: now)
                metrics.sinks[sink]?.delivered.add(1, ordering: .relaxed)
            case .gaveUp(let reason, let attempts):
                metrics.sinks[sink]?.gaveUp.add(1, ordering: .relaxed)
                log.log("sink \(sink): alert \(id) given up after \(attempts) attempt(s): \(reason)", now: now)
                let source = entry.tokens.first ?? OffsetTracker.Token(partition: -1, offset: -1)
                let done = try deadLetters.write(.init(sink: sink, alertID: id, reason: reason, attempts: attempts, at: now,
                                                       value: entry.alert.raw, isAlert: true, source: source), waiting: entry.tokens)
                // On its way to the dead-letter topic: its messages finish when the topic acknowledges it.
                if !done { continue }
            case .abandoned:
                // Shutting down: not finished, so not committed; the next start sends it.
                continue
            }
            for t in entry.tokens { tracker.finish(t) }
        }
        let acknowledged = try deadLetters.poll()
        for t in acknowledged { tracker.finish(t) }
        metrics.pending.store(tracker.pending, ordering: .relaxed)
        return batch.count + acknowledged.count
    }

    public func committable() -> [(Int32, Int64)] { tracker.committable() }
    public func markCommitted(_ list: [(Int32, Int64)]) { tracker.markCommitted(list) }
    /// Forgets partitions taken away: their deliveries in flight go on (and are remembered when they
    /// succeed), but no longer finish anything here, so a message of such a partition consumed again after
    /// it comes back is tracked afresh.
    public func dropPartitions(_ p: [Int32]) {
        tracker.drop(p)
        deadLetters.drop(p)
        for key in Array(inFlight.keys) { inFlight[key]!.tokens.removeAll { p.contains($0.partition) } }
    }
    public var pendingMessages: Int { tracker.pending }
    public func pendingMessages(in partitions: [Int32]) -> Int { tracker.pending(in: partitions) }
    public func position(_ partition: Int32) -> Int64? { tracker.position(partition) }
    public func nextOffset(_ partition: Int32) -> Int64? { tracker.nextOffset(partition) }
    public func depth(_ sink: String) -> Int { workers[sink]?.depth ?? 0 }

    /// What the `/metrics` server's thread may read.
    public var metricsView: NotifyMetricsView { NotifyMetricsView(metrics: metrics, workers: workers) }
}

/// The counters and queue depths, readable from any thread.
public struct NotifyMetricsView: Sendable {
    let metrics: NotifyMetrics
    let workers: [String: SinkWorker]

    public func render() -> String {
        metrics.render(depth: { workers[$0]?.depth ?? 0 }, pendingMessages: metrics.pending.load(ordering: .relaxed))
    }
}
