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
    var configPath: String?
    var shutdownDeadlineSeconds: Double?
    let startWall = WallClock.now()

    var joinedGroup = false
    var readySent = false
    /// Readiness as /-/ready last reported it, and why not (see `readiness`).
    var ready = false
    /// Monotonic ms since which the instance holds no partition or reaches no broker; nil while it consumes.
    var notConsumingSince: Int64?
    /// librdkafka reported every broker down, and no statistics or assignment since showed one up.
    var brokersDown = false
    /// Monotonic ms of the last librdkafka statistics (0: none yet), and their interval.
    var lastStatisticsMono: Int64 = 0
    var statisticsIntervalMs: Int64 = 5_000
    var stoppingSent = false
    var lastWatchdogMono: Int64 = 0
    var lastStatusMono: Int64 = 0
    var rateMessages: Int64 = 0
    var rateMono: Int64 = 0
    var eventsPerSecond: Double = 0
    var consumerLag: [PartitionLag] = []
    var flushHistogram = Histogram(bounds: Histogram.flushBounds)
    var lastCheckpointWall: Int64 = 0
    var lastCheckpointSeconds: Double = 0
    var checkpointFailures: Int64 = 0
    var reloadSuccess = true
    var reloadWall: Int64 = 0
    var reloads: Int64 = 0
    /// Said in STATUS while the last reload was refused.
    var reloadProblem: String?
    var http: HTTPServer?
    let finished = OnceFlag()

    static let statusIntervalMs: Int64 = 2000

    init(configPath: String?) {
        self.configPath = configPath
        self.notifier = SystemdNotifier()
        self.reloadWall = startWall
    }
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
        let server = try HTTPServer(listen: config.http.listen) { path in
            Daemon.serve(path, progress.snapshot, startWall: start)
        }
        server.start()
        o.http = server
        log.notice("http listening", metadata: ["address": "\(server.boundAddress)",
                                               "endpoints": "/metrics,/-/healthy,/-/ready"])
        o.notifier.status("starting: restoring checkpoint")
    }

    static func serve(_ path: String, _ s: DaemonProgress.Snapshot, startWall: Int64) -> HTTPServer.Response {
        switch path {
        case "/metrics":
            return .init(status: 200, contentType: MetricsRenderer.contentType,
                         body: MetricsRenderer.render(s, startTimeMs: startWall, nowMs: WallClock.now()))
        case "/-/healthy":
            // Alive: the loop has not started yet (restoring), or it iterated within the last 30 s.
            let stale = s.loopHeartbeatMono > 0 && WallClock.monotonicMillis() - s.loopHeartbeatMono > 30_000
            return stale ? .init(status: 503, body: "consume loop stalled\n") : .init(status: 200, body: "healthy\n")
        case "/-/ready":
            if s.stopping { return .init(status: 503, body: "stopping\n") }
            return s.ready ? .init(status: 200, body: "ready\n")
                : .init(status: 503, body: "not ready: \(s.notReadyReason ?? "joining the consumer group")\n")
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
        ops.consumerLag = stats.lag
        ops.lastStatisticsMono = WallClock.monotonicMillis()
        ops.brokersDown = stats.brokersUp == 0
    }

    /// A librdkafka client error: all brokers down counts against readiness until a broker is seen up.
    func kafkaErrorReported(_ e: KafkaError) {
        if e.code == KafkaError.allBrokersDown { ops.brokersDown = true }
        if !e.alreadyLogged { log.warning("kafka: \(e)") }
    }

    /// Ready means consuming: the consumer group joined, at least one partition held (fetched by this
    /// instance) and a broker reachable; or less than `kafka.ready_grace` since that stopped being true
    /// (a rebalance, a short broker restart). nil when ready, else why not.
    func readiness(mono: Int64) -> String? {
        let o = ops
        guard o.joinedGroup else { return "joining the consumer group" }
        let held = pipeline.assigned.count + shards.count
        let problem: String? = o.brokersDown ? "no broker reachable" : (held == 0 ? "no partition assigned" : nil)
        guard let problem else {
            o.notConsumingSince = nil
            return nil
        }
        let since = o.notConsumingSince ?? mono
        o.notConsumingSince = since
        let grace = config.kafka.readyGrace.millis
        return mono - since < grace ? nil : "\(problem) for \((mono - since) / 1000) s (kafka.ready_grace \(config.kafka.readyGrace))"
    }

    // MARK: Each loop iteration

    /// Called once per loop iteration, after `publishProgress`: READY, the watchdog ping, STATUS.
    func operationsTick() {
        let o = ops
        let mono = WallClock.monotonicMillis()
        let problem = readiness(mono: mono)
        if (problem == nil) != o.ready {
            o.ready = problem == nil
            if o.readySent {
                if let problem { log.warning("not ready: \(problem)") } else { log.notice("ready again: consuming") }
            }
        }
        progress.update { $0.ready = problem == nil; $0.notReadyReason = problem }
        // READY=1 once, at the first readiness (a reload before it sends none, see `reloadConfig`).
        if !o.readySent && problem == nil {
            o.readySent = true
            log.notice("ready: checkpoint restored and consumer group joined")
            o.notifier.ready(status: statusLine())
            o.lastStatusMono = mono
        }
        // The ping comes from here, so a stuck loop (or a stuck callback inside poll) stops it.
        if let every = o.notifier.watchdogIntervalMs, mono - o.lastWatchdogMono >= every {
            o.lastWatchdogMono = mono
            o.notifier.watchdog()
        }
        if mono - o.rateMono >= Self.rateIntervalMs {
            let messages = pipeline.metrics.messages
            if o.rateMono > 0 { o.eventsPerSecond = Double(messages - o.rateMessages) * 1000 / Double(mono - o.rateMono) }
            o.rateMessages = messages
            o.rateMono = mono
        }
        if mono - o.lastStatusMono >= DaemonOperations.statusIntervalMs {
            o.lastStatusMono = mono
            o.notifier.status(statusLine())
        }
    }

    static let rateIntervalMs: Int64 = 2000

    /// Copies the operational fields into the snapshot (inside `publishProgress`'s update).
    func fillOperations(_ s: inout DaemonProgress.Snapshot) {
        let o = ops
        s.loopHeartbeatMono = WallClock.monotonicMillis()
        s.rebalances = consumer?.rebalanceCount ?? s.rebalances
        // Lag from statistics older than three intervals is not shown: it would be stale, not zero.
        let fresh = o.lastStatisticsMono > 0 && s.loopHeartbeatMono - o.lastStatisticsMono <= 3 * o.statisticsIntervalMs
        s.consumerLag = fresh ? o.consumerLag : []
        s.rollupFlushSeconds = o.flushHistogram
        s.lastCheckpointWall = o.lastCheckpointWall
        s.lastCheckpointSeconds = o.lastCheckpointSeconds
        s.checkpointFailures = o.checkpointFailures
        s.configReloadSuccess = o.reloadSuccess
        s.configReloadWall = o.reloadWall
        s.configReloads = o.reloads
        s.eventsPerSecond = o.eventsPerSecond
    }

    var openWindowCount: Int {
        pipeline.assigned.reduce(0) { $0 + $1.state.windows.open.reduce(0) { $0 + $1.count } }
    }

    /// The one-line STATUS systemctl shows: rate, lag, open windows, last alert, reload trouble.
    func statusLine() -> String {
        let o = ops
        let s = progress.snapshot
        let lag = o.consumerLag.reduce(Int64(0)) { $0 + $1.lag }
        var line = o.ready ? "consuming" : (o.readySent ? "not ready (\(s.notReadyReason ?? "?"))" : "joining consumer group")
        line += ": \(Int(o.eventsPerSecond.rounded())) events/s, lag \(lag), \(s.openWindows) open windows (\(s.openRows) rows), "
            + "\(s.assignedPartitions) partitions, last alert: \(s.lastAlert ?? "none")"
        if let p = o.reloadProblem { line += "; " + p }
        return line
    }

    // MARK: Flushes and checkpoints

    func observeFlush(seconds: Double) { ops.flushHistogram.observe(seconds) }

    func observeCheckpoint(ok: Bool, seconds: Double) {
        if ok {
            ops.lastCheckpointWall = WallClock.now()
            ops.lastCheckpointSeconds = seconds
        } else {
            ops.checkpointFailures += 1
        }
    }

    // MARK: Reload (SIGHUP)

    /// Re-reads the config file between batches. Invalid: everything is logged, the running configuration
    /// stays, STATUS and `tokenmeter_config_reload_success` say so. Valid: prices and rules apply at once
    /// (open windows and totals are kept), and keys that need a restart are named in a warning.
    func reloadConfig() {
        let o = ops
        // Before the first readiness systemd still waits for the start: no RELOADING=1, and no READY=1 at
        // the end (that would tell systemd the daemon is up before it consumes).
        let started = o.readySent
        if started { o.notifier.reloading() }
        o.reloads += 1
        o.reloadWall = WallClock.now()
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
            o.reloadSuccess = false
            o.reloadProblem = "config reload FAILED at \(RFC3339.format(o.reloadWall, fraction: false)) (\(errors.diagnostics.count) problem(s) in \(path)); running the previous config"
        case .success(let new):
            let restart = ConfigReload.restartKeys(old: config, new: new)
            if !restart.isEmpty {
                log.warning("configuration changes that take effect only after a restart (systemctl restart tokenmeter)",
                            metadata: ["keys": "\(restart.joined(separator: ","))"])
                let instance = new.rollups.instance ?? pipeline.instance
                for d in ConfigReload.problemsForTheNextStart(old: config, new: new, instance: instance) {
                    log.warning("the next start would refuse this configuration: \(d.description)")
                }
            }
            let pricesChanged = new.prices != config.prices
            if pricesChanged { pipeline.replacePrices(new.prices) }
            rules = AlertRules(new)
            // The engine keeps the totals of rules whose identity (name, scope, period) is unchanged.
            pipeline.alerts.replaceRules(budgets: new.budgets, spikes: new.spikes, outcomeLimits: new.outcomeLimits)
            replaceShardRules()
            config = ConfigReload.applied(config, new)
            o.reloadSuccess = true
            o.reloadProblem = nil
            log.notice("configuration reloaded", metadata: ["prices": "\(new.prices.count)", "prices_changed": "\(pricesChanged)",
                                                           "rules": "\(rules.count)", "restart_needed": "\(restart.count)"])
        }
    }

    // MARK: Stop

    /// The loop saw SIGTERM/SIGINT: STOPPING=1, /-/ready turns 503.
    func operationsStopping() {
        let o = ops
        guard !o.stoppingSent else { return }
        o.stoppingSent = true
        progress.update { $0.stopping = true }
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
    /// cannot hold the shutdown forever. Past the deadline it exits 1 (systemd's TimeoutStopSec is longer,
    /// so the daemon, not SIGKILL, decides).
    func armShutdownDeadline(_ seconds: Double) {
        let stop = self.stop, log = self.log, finished = self.ops.finished
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
            exit(1)
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

