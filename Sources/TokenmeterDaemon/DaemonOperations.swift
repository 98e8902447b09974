import Foundation
import Logging
import Synchronization
import TokenmeterCore
import TokenmeterKafka

/// The operational side of the daemon, kept out of the consume loop's file: systemd notifications,
/// STATUS, the watchdog, SIGHUP reloads, the HTTP endpoints, librdkafka statistics and logs, and the
/// shutdown deadline. All of it runs on the polling thread except the HTTP server (its own thread,
/// reading `DaemonProgress` snapshots) and the shutdown deadline (its own thread).
final class DaemonOperations {
    let notifier: SystemdNotifier
    /// The file SIGHUP re-reads (nil: the daemon was given a config value, e.g. by the demo).
    let configPath: String?
    var shutdownDeadlineSeconds: Double?
    /// What runs when the shutdown deadline passes (the command exits there); nil: only logged.
    var onShutdownDeadline: (@Sendable () -> Void)?
    let startWall: Int64
    var readiness = Readiness()
    var pacing = Pacing()
    var checkpoints = CheckpointRecord()
    var reload: ReloadRecord
    var http: HTTPServer?
    let finished = OnceFlag()

    static let statusIntervalMs: Int64 = 2000

    init(configPath: String?, startWall: Int64) {
        self.configPath = configPath
        self.notifier = SystemdNotifier()
        self.startWall = startWall
        self.reload = ReloadRecord(wall: startWall)
    }
}

/// Whether the instance is consuming, for /-/ready, READY=1 and STATUS (see `Daemon.readiness`).
struct Readiness {
    var joinedGroup = false
    var readySent = false
    /// Readiness as /-/ready last reported it.
    var ready = false
    /// Monotonic ms since which the instance holds no partition or reaches no broker; nil while it consumes.
    var notConsumingSince: Int64?
    /// librdkafka reported every broker down, and no statistics or assignment since showed one up.
    var brokersDown = false
    /// Monotonic ms of the last librdkafka statistics (0: none yet), and their interval.
    var lastStatisticsMono: Int64 = 0
    var statisticsIntervalMs: Int64 = 5_000
    var consumerLag: [PartitionLag] = []
    var stoppingSent = false

    /// Ready means consuming: the group joined, at least one partition held and a broker reachable; or
    /// less than `grace` since that stopped being true (a rebalance, a short broker restart). nil when
    /// ready, else why not.
    mutating func problem(held: Int, mono: Int64, grace: Int64, graceLabel: String) -> String? {
        guard joinedGroup else { return "joining the consumer group" }
        let problem: String? = brokersDown ? "no broker reachable" : (held == 0 ? "no partition assigned" : nil)
        guard let problem else {
            notConsumingSince = nil
            return nil
        }
        let since = notConsumingSince ?? mono
        notConsumingSince = since
        return mono - since < grace ? nil : "\(problem) for \((mono - since) / 1000) s (kafka.ready_grace \(graceLabel))"
    }
}

/// The watchdog ping, STATUS and the events-per-second rate: when each last ran (monotonic ms).
struct Pacing {
    var lastWatchdogMono: Int64 = 0
    var lastStatusMono: Int64 = 0
    var rateMessages: Int64 = 0
    var rateMono: Int64 = 0
    var eventsPerSecond: Double = 0
}

/// Checkpoints as /metrics shows them.
struct CheckpointRecord {
    var count = 0
    /// Wall clock (epoch ms) of the last durable checkpoint, 0 before the first, and how long it took.
    var lastWall: Int64 = 0
    var lastSeconds: Double = 0
    /// The longest durable checkpoint taken while consuming (the final one at shutdown left out): what
    /// holds the polling thread longest.
    var longestSeconds: Double = 0
    var failures: Int64 = 0
    var flushSeconds = Histogram(bounds: Histogram.flushBounds)
    /// CPU time of the polling thread inside checkpoints (every attempt), for the cost per event.
    var cpuSeconds: Double = 0
}

/// SIGHUP reloads as /metrics and STATUS show them.
struct ReloadRecord {
    var success = true
    /// Wall clock (epoch ms) of the last reload attempt (or of the start).
    var wall: Int64
    var count: Int64 = 0
    /// Said in STATUS while the last reload was refused.
    var problem: String?
}

extension Daemon {
    // MARK: Start

    /// Before the checkpoint is restored: librdkafka logs into ours, the HTTP listener, the deadline.
    func operationsStart() throws {
        let o = ops
        if let seconds = o.shutdownDeadlineSeconds { armShutdownDeadline(seconds) }
        if let w = o.notifier.watchdogIntervalMs { log.info("systemd watchdog enabled", metadata: ["ping_every_ms": "\(w)"]) }
        let progress = self.progress
        let start = o.startWall
        let clock = self.clock
        let server = try HTTPServer(listen: config.http.listen) { path in
            Daemon.serve(path, progress.snapshot, startWall: start, clock: clock)
        }
        server.start()
        o.http = server
        log.notice("http listening", metadata: ["address": "\(server.boundAddress)",
                                               "endpoints": "/metrics,/-/healthy,/-/ready"])
        o.notifier.status("starting: restoring checkpoint")
    }

    static func serve(_ path: String, _ s: DaemonProgress.Snapshot, startWall: Int64, clock: any DaemonClock) -> HTTPServer.Response {
        switch path {
        case "/metrics":
            return .init(status: 200, contentType: MetricsRenderer.contentType,
                         body: MetricsRenderer.render(s, startTimeMs: startWall, nowMs: clock.now()))
        case "/-/healthy":
            // Alive: the loop has not started yet (restoring), or it iterated within the last 30 s.
            let stale = s.readiness.loopHeartbeatMono > 0 && clock.monotonicMillis() - s.readiness.loopHeartbeatMono > 30_000
            return stale ? .init(status: 503, body: "consume loop stalled\n") : .init(status: 200, body: "healthy\n")
        case "/-/ready":
            if s.readiness.stopping { return .init(status: 503, body: "stopping\n") }
            return s.readiness.ready ? .init(status: 200, body: "ready\n")
                : .init(status: 503, body: "not ready: \(s.readiness.notReadyReason ?? "joining the consumer group")\n")
        default:
            return .init(status: 404, body: "not found; try /metrics, /-/healthy, /-/ready\n")
        }
    }

    /// librdkafka's log lines as ours (secret values redacted), and its statistics for consumer lag.
    static func installKafkaLog(_ log: Logger, secrets: [String]) {
        let secrets = secrets.filter { $0.utf8.count >= 4 }
        KafkaLog.setHandler { level, facility, message in
            var text = message
            for s in secrets where text.contains(s) { text = text.replacingOccurrences(of: s, with: "(value hidden)") }
            var l: Logger.Level
            switch level {
            case ...2: l = .critical
            case 3: l = .error
            case 4: l = .warning
            case 5: l = .notice
            case 6: l = .info
            default: l = .debug
            }
            // The same [kafka.properties] feed the consumer and the dead-letter producer: librdkafka's note
            // that a property of one is ignored by the other is expected, not a warning.
            if facility == "CONFWARN" && text.contains("will be ignored by this") { l = .debug }
            log.log(level: l, "librdkafka: \(text)", metadata: ["facility": "\(facility)"])
        }
    }

    func statisticsReceived(_ json: String) {
        guard let stats = KafkaStatistics.parse(json) else { return }
        ops.readiness.consumerLag = stats.lag
        ops.readiness.lastStatisticsMono = clock.monotonicMillis()
        ops.readiness.brokersDown = stats.brokersUp == 0
    }

    /// A librdkafka client error: all brokers down counts against readiness until a broker is seen up.
    func kafkaErrorReported(_ e: KafkaError) {
        if e.code == KafkaError.allBrokersDown { ops.readiness.brokersDown = true }
        if !e.alreadyLogged { log.warning("kafka: \(e)") }
    }

    // MARK: Each loop iteration

    /// Called once per loop iteration, after `publishProgress`: READY, the watchdog ping, STATUS.
    func operationsTick() {
        let o = ops
        let mono = clock.monotonicMillis()
        let problem = o.readiness.problem(held: pipeline.assignedCount + alerting.shards.byIndex.count, mono: mono,
                                          grace: config.kafka.readyGrace.millis, graceLabel: "\(config.kafka.readyGrace)")
        if (problem == nil) != o.readiness.ready {
            o.readiness.ready = problem == nil
            if o.readiness.readySent {
                if let problem { log.warning("not ready: \(problem)") } else { log.notice("ready again: consuming") }
            }
        }
        progress.update { $0.readiness.ready = problem == nil; $0.readiness.notReadyReason = problem }
        // READY=1 once, at the first readiness (a reload before it sends none, see `reloadConfig`).
        if !o.readiness.readySent && problem == nil {
            o.readiness.readySent = true
            log.notice("ready: checkpoint restored and consumer group joined")
            o.notifier.ready(status: statusLine())
            o.pacing.lastStatusMono = mono
        }
        // The ping comes from here, so a stuck loop (or a stuck callback inside poll) stops it.
        if let every = o.notifier.watchdogIntervalMs, mono - o.pacing.lastWatchdogMono >= every {
            o.pacing.lastWatchdogMono = mono
            o.notifier.watchdog()
        }
        if mono - o.pacing.rateMono >= Self.rateIntervalMs {
            let messages = pipeline.metrics.messages
            if o.pacing.rateMono > 0 { o.pacing.eventsPerSecond = Double(messages - o.pacing.rateMessages) * 1000 / Double(mono - o.pacing.rateMono) }
            o.pacing.rateMessages = messages
            o.pacing.rateMono = mono
        }
        if mono - o.pacing.lastStatusMono >= DaemonOperations.statusIntervalMs {
            o.pacing.lastStatusMono = mono
            o.notifier.status(statusLine())
        }
    }

    static let rateIntervalMs: Int64 = 2000

    /// Copies the operational fields into the snapshot (inside `publishProgress`'s update).
    func fillOperations(_ s: inout DaemonProgress.Snapshot) {
        let o = ops
        s.readiness.loopHeartbeatMono = clock.monotonicMillis()
        s.consumer.rebalances = consumer?.rebalanceCount ?? s.consumer.rebalances
        // Lag from statistics older than three intervals is not shown: it would be stale, not zero.
        let r = o.readiness
        let fresh = r.lastStatisticsMono > 0 && s.readiness.loopHeartbeatMono - r.lastStatisticsMono <= 3 * r.statisticsIntervalMs
        s.consumer.lag = fresh ? r.consumerLag : []
        s.checkpoint.rollupFlushSeconds = o.checkpoints.flushSeconds
        s.checkpoint.lastWall = o.checkpoints.lastWall
        s.checkpoint.lastSeconds = o.checkpoints.lastSeconds
        s.checkpoint.failures = o.checkpoints.failures
        s.checkpoint.cpuSeconds = o.checkpoints.cpuSeconds
        s.checkpoint.stateBytesWritten = local.bytesWritten
        s.checkpoint.idSegments = local.ids.fileCount
        s.reload.succeeded = o.reload.success
        s.reload.wall = o.reload.wall
        s.reload.count = o.reload.count
        s.pipeline.eventsPerSecond = o.pacing.eventsPerSecond
    }

    /// The one-line STATUS systemctl shows: rate, lag, open windows, last alert, reload trouble.
    func statusLine() -> String {
        let o = ops
        let s = progress.snapshot
        let lag = o.readiness.consumerLag.reduce(Int64(0)) { $0 + $1.lag }
        var line = o.readiness.ready ? "consuming" : (o.readiness.readySent ? "not ready (\(s.readiness.notReadyReason ?? "?"))" : "joining consumer group")
        line += ": \(Int(o.pacing.eventsPerSecond.rounded())) events/s, lag \(lag), \(s.pipeline.openWindows) open windows (\(s.pipeline.openRows) rows), "
            + "\(s.consumer.assignedPartitions) partitions, last alert: \(s.alerts.last ?? "none")"
        if let p = o.reload.problem { line += "; " + p }
        return line
    }

    // MARK: Reload (SIGHUP)

    /// Re-reads the config file between batches. Invalid: everything is logged, the running configuration
    /// stays, STATUS and `tokenmeter_config_reload_success` say so. Valid: prices and rules apply at once
    /// (open windows and totals are kept), and keys that need a restart are named in a warning.
    func reloadConfig() {
        let o = ops
        // Before the first readiness systemd still waits for the start: no RELOADING=1, and no READY=1 at
        // the end (that would tell systemd the daemon is up before it consumes).
        let started = o.readiness.readySent
        if started { o.notifier.reloading() }
        o.reload.count += 1
        o.reload.wall = clock.now()
        defer {
            publishProgress()
            if started { o.notifier.ready(status: statusLine()) } else { o.notifier.status(statusLine()) }
        }
        guard let path = o.configPath else {
            log.warning("SIGHUP: no configuration file to reload (the daemon was not started with --config)")
            return
        }
        log.notice("SIGHUP: reloading configuration", metadata: ["path": "\(path)"])
        switch ConfigLoader.load(path: path) {
        case .failure(let errors):
            for d in errors.diagnostics { log.error("\(d.description)") }
            log.error("configuration reload refused; the running configuration is kept",
                      metadata: ["path": "\(path)", "problems": "\(errors.diagnostics.count)"])
            o.reload.success = false
            o.reload.problem = "config reload FAILED at \(RFC3339.format(o.reload.wall, fraction: false)) (\(errors.diagnostics.count) problem(s) in \(path)); running the previous config"
        case .success(let new):
            apply(reloaded: new)
        }
    }

    /// A valid configuration read by a reload: what can change at once does, the rest is named.
    func apply(reloaded new: TokenmeterConfig) {
        let restart = ConfigReload.restartKeys(old: config, new: new)
        if !restart.isEmpty {
            log.warning("\(ConfigReload.restartNeeded(restart))", metadata: ["keys": "\(restart.joined(separator: ","))"])
            let instance = new.rollups.instance ?? pipeline.instance
            for d in ConfigReload.problemsForTheNextStart(old: config, new: new, instance: instance) {
                log.warning("the next start would refuse this configuration: \(d.description)")
            }
        }
        let pricesChanged = new.prices != config.prices
        if pricesChanged { pipeline.replacePrices(new.prices) }
        // Every engine keeps the totals of rules whose identity (name, scope, period) is unchanged.
        alerting.replaceRules(AlertRules(new), pipelineEngine: pipeline.alerts)
        config = ConfigReload.applied(config, new)
        ops.reload.success = true
        ops.reload.problem = nil
        log.notice("configuration reloaded", metadata: ["prices": "\(new.prices.count)", "prices_changed": "\(pricesChanged)",
                                                       "rules": "\(rules.count)", "restart_needed": "\(restart.count)"])
    }

    // MARK: Stop

    /// The loop saw SIGTERM/SIGINT: STOPPING=1, /-/ready turns 503.
    func operationsStopping() {
        let o = ops
        guard !o.readiness.stoppingSent else { return }
        o.readiness.stoppingSent = true
        progress.update { $0.readiness.stopping = true }
        o.notifier.stopping()
        o.notifier.status("stopping: writing checkpoint and committing offsets")
    }

    /// After the final checkpoint: the HTTP listener closes, the deadline is disarmed.
    func operationsFinish() {
        ops.finished.set()
        ops.http?.stop()
        ops.http = nil
        KafkaLog.setHandler(nil)
    }

    /// Once a stop is requested, the process must be gone within `seconds`: a broker that never answers
    /// cannot hold the shutdown forever. Past the deadline `onShutdownDeadline` runs: the command exits 1
    /// there (systemd's TimeoutStopSec is longer, so the daemon, not SIGKILL, decides). The deadline is
    /// real time on purpose: it guards against the polling thread being stuck, which no clock it reads
    /// could see.
    func armShutdownDeadline(_ seconds: Double) {
        let stop = self.loop.stop, log = self.log, finished = self.ops.finished, onDeadline = self.ops.onShutdownDeadline
        let t = Thread {
            while !stop.stopRequested {
                if finished.isSet { return }
                Thread.sleep(forTimeInterval: 0.1)
            }
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if finished.isSet { return }
                Thread.sleep(forTimeInterval: 0.1)
            }
            log.critical("shutdown deadline passed; exiting without a final checkpoint (the last one is kept)",
                         metadata: ["deadline_s": "\(seconds)"])
            onDeadline?()
        }
        t.name = "tokenmeter-deadline"
        t.start()
    }
}

/// A flag set once, read from any thread.
final class OnceFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// A relative `kafka.secret_files` path is a systemd credential name: it is resolved against
/// `$CREDENTIALS_DIRECTORY` (LoadCredential=) when that is set.
func secretPath(_ path: String, credentialsDirectory: String? = getenv("CREDENTIALS_DIRECTORY").map { String(cString: $0) }) -> String {
    guard !path.hasPrefix("/"), let dir = credentialsDirectory, !dir.isEmpty else { return path }
    return dir + "/" + path
}

