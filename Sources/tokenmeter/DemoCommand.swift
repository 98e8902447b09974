import ArgumentParser
import Foundation
import Logging
import Synchronization
import TokenmeterCore
import TokenmeterDaemon
import TokenmeterKafka
import TrafficGenerator

/// `tokenmeter demo`: the whole system on one machine with nothing installed. An embedded broker
/// (librdkafka's mock cluster, real Kafka protocol on loopback), generated traffic in every provider's
/// native shape, the real daemon consuming it on its own thread, live progress, and a summary read back
/// from the rollup files it wrote.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole system on this machine: broker, traffic, daemon, summary.")

    @Option(parsing: .unconditional, help: "Number of events to generate.")
    var events: Int = 40_000

    @Option(parsing: .unconditional, help: "Seconds over which the traffic is sent (so progress can be watched).")
    var seconds: Double = 8

    @Option(help: "Folder for the rollups and state (default: a new folder under $TMPDIR or /tmp).")
    var dir: String?

    @Option(help: "Random seed of the traffic.")
    var seed: UInt64 = 2026

    func validate() throws {
        guard events > 0 else { throw ValidationError("--events must be positive, got \(events)") }
        guard seconds >= 0 && seconds <= 86_400 else { throw ValidationError("--seconds must be 0...86400, got \(seconds)") }
    }

    func run() throws {
        let started = Date()
        let work = dir ?? Self.newFolder()
        let out = Terminal()
        out.line("tokenmeter demo: everything runs in this process; files go to \(work)")

        // 1. The broker. Optional only so that it can be shut down before the closing lines (below).
        var cluster: MockCluster! = try MockCluster(brokers: 1)
        try cluster.createTopic("llm-usage", partitions: 8)
        try cluster.createTopic("llm-usage-dlq", partitions: 1)
        try cluster.createTopic("llm-alerts", partitions: 1)
        try cluster.createTopic("otlp_spans", partitions: 2)
        out.line("  broker     embedded Kafka (librdkafka mock cluster) at \(cluster.bootstrapServers), topic llm-usage with 8 partitions")

        // 2. The configuration: the bundled demo config, pointed at this broker and folder.
        var config: TokenmeterConfig
        switch ConfigLoader.parse(text: DemoConfiguration.toml, file: "demo.toml") {
        case .success(let c): config = c
        case .failure(let e): throw DemoFailure("bundled demo config is invalid: \(e)")
        }
        config.kafka.brokers = cluster.bootstrapServers
        config.rollups.dir = work + "/rollups"
        config.state.dir = work + "/state"

        // 3. The traffic: the day before yesterday (UTC), so every window, the day's included, can close.
        let today = floorDiv(Int64(Date().timeIntervalSince1970 * 1000), 86_400_000) * 86_400_000
        var traffic = TrafficConfig(seed: seed, start: today - 2 * 86_400_000, events: events, spanMillis: 86_400_000)
        traffic.spike = TrafficSpike(workflow: "support-triage", startFraction: 0.5, factor: 5)
        traffic.badFraction = 0.01
        traffic.lateFraction = 0.005
        var generator = TrafficGenerator(traffic)
        var expected = ExpectedTotals(prices: Catalogue.referencePrices, windows: [])
        var lines: [String] = []
        lines.reserveCapacity(events)
        for _ in 0..<events {
            let e = generator.next()
            lines.append(e.line)
            expected.add(e.expected)
        }
        let models = Set(expected.byKey.keys.compactMap(\.model)).count
        let workflows = Set(expected.byKey.keys.map(\.workflow)).count
        let owners = Set(expected.byKey.keys.map(\.owner)).count
        out.line("  traffic    \(events) events: \(workflows) workflows, \(owners) owners, \(models) models (OpenAI, Anthropic, Google, Bedrock)")
        out.line("             native usage shapes, OpenTelemetry, CloudEvents, outcomes; 1% bad input; support-triage spikes x5 at noon")
        let messages = Self.messages(lines, tracesOf: Self.tracedWorkflow)
        let spans = lines.count - messages.filter { $0.topic == "llm-usage" }.count
        out.line("  otlp       \(Self.tracedWorkflow) arrives as OpenTelemetry traces: \(spans) LLM spans in "
                 + "\(messages.filter { $0.topic == "otlp_spans" }.count) otlp_proto messages on topic otlp_spans")

        // 4. The daemon, on its own thread, exactly as `tokenmeter run` runs it.
        let stop = StopSignal()
        let progress = DaemonProgress()
        let daemonDone = DispatchSemaphore(value: 0)
        let daemonError = SharedBox<String?>(nil)
        var logger = Logger(label: "tokenmeter") { StderrLogHandler(label: $0) }
        logger.logLevel = .error
        let log = logger
        let daemonConfig = config
        Thread.detachNewThread {
            do {
                let daemon = try Daemon(config: daemonConfig, log: log, stop: stop, progress: progress)
                try daemon.run()
            } catch {
                daemonError.set("\(error)")
            }
            daemonDone.signal()
        }

        // 5. The producer, paced so that progress can be watched.
        let produced = SharedBox<Int>(0)
        let produceDone = DispatchSemaphore(value: 0)
        let bootstrap = cluster.bootstrapServers
        let pace = seconds
        Thread.detachNewThread {
            Self.produce(messages, brokers: bootstrap, seconds: pace, counter: produced)
            produceDone.signal()
        }

        // 6. A downstream consumer of the alerts topic: alerts print as they arrive.
        let alertLines = SharedBox<[String]>([])
        let alertsStop = SharedBox<Bool>(false)
        let followerDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            Self.followAlerts(brokers: bootstrap, into: alertLines, until: alertsStop)
            followerDone.signal()
        }
        var shownAlerts = 0
        func showNewAlerts() {
            let lines = alertLines.value
            while shownAlerts < lines.count {
                out.interrupt("  alert      " + lines[shownAlerts])
                shownAlerts += 1
            }
        }

        // 7. Progress until every event is counted and every window is on disk.
        let deadline = Date().addingTimeInterval(120)
        var finished = false
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.25)
            showNewAlerts()
            let s = progress.snapshot
            let m = s.pipeline.metrics
            out.progress("  running    produced \(produced.value)/\(messages.count) messages · consumed \(m.messages) · usage \(m.usageEvents) · outcomes \(m.outcomeEvents) · rejected \(m.rejectedTotal) · late \(m.lateEvents) · rollup files \(m.filesWritten) · open rows \(s.pipeline.openRows)")
            if let e = daemonError.value { throw DemoFailure("daemon failed: \(e)") }
            if produced.value == messages.count && m.messages >= Int64(messages.count) && s.pipeline.openRows == 0
                && s.pipeline.pendingFiles == 0 {
                finished = true
                break
            }
        }
        out.endProgress()
        produceDone.wait()
        stop.requestStop()
        daemonDone.wait()
        // The daemon's shutdown flushed its alert producer: give the follower a moment to print the last ones.
        let published = progress.snapshot.alerts.published
        let alertDeadline = Date().addingTimeInterval(5)
        while alertLines.value.count < Int(published) && Date() < alertDeadline { Thread.sleep(forTimeInterval: 0.1) }
        showNewAlerts()
        alertsStop.set(true)
        // Every Kafka client closed, then the broker: nothing of theirs can print after the closing lines
        // (a client outliving the broker logs "brokers are down" on its own).
        followerDone.wait()
        cluster = nil
        guard finished else { throw DemoFailure("the daemon did not count every event within two minutes") }

        // 8. The summary, read back from the rollup files.
        let summary = try DemoSummary(rollups: config.rollups.dir, day: traffic.start, expected: expected, metrics: progress.snapshot.pipeline.metrics)
        out.line("")
        summary.print(to: out)
        out.line("Alerts: \(alertLines.value.count) received on llm-alerts (\(published) published by the daemon); follow them live with `tokenmeter alerts --brokers B`.")
        out.line("")
        out.line("Rollup files (JSON Lines, one file per closed window per writer): \(config.rollups.dir)")
        out.line("  try: jq -s 'group_by(.owner) | map({owner: .[0].owner, usd: (map(.cost_usd) | add)})' \(config.rollups.dir)/1d/*/*.jsonl")
        ReportCommand.demoReport(rollups: config.rollups.dir, day: traffic.start, to: work + "/report.html", config: config, out: out)
        out.line(String(format: "Finished in %.1f s.", Date().timeIntervalSince(started)))
    }

    static func newFolder() -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let stamp = RFC3339.compact(Int64(Date().timeIntervalSince1970 * 1000))
        return "\(base)/tokenmeter-demo-\(stamp)-\(getpid())"
    }

    /// Reads the alerts topic from the start, de-duplicated by alert_id, one line each.
    static func followAlerts(brokers: String, into lines: SharedBox<[String]>, until stop: SharedBox<Bool>) {
        do {
            let consumer = try KafkaConsumer(properties: [("bootstrap.servers", brokers), ("group.id", "demo-alerts-\(getpid())"),
                                                          ("auto.offset.reset", "earliest")], topics: ["llm-alerts"], rebalance: nil)
            var seen = Set<String>()
            while !stop.value {
                consumer.poll(maxMessages: 100, timeoutMs: 100) { m in
                    guard let a = (try? JSONSerialization.jsonObject(with: Data(m.payload))) as? [String: Any],
                          let id = a["alert_id"] as? String, seen.insert(id).inserted else { return }
                    let line = AlertsCommand.line(a, key: m.key.map { String(decoding: $0, as: UTF8.self) })
                    var all = lines.value
                    all.append(line)
                    lines.set(all)
                }
            }
            consumer.close()
        } catch {
            printError("demo alert follower failed: \(error)")
        }
    }

    /// The workflow whose events the demo sends as OpenTelemetry traces.
    static let tracedWorkflow = "invoice-extraction"

    /// Each generated line as a message of `llm-usage`, except the events of `workflow` that OTLP's GenAI
    /// names say in full (no `cost_usd`, service tier, 1-hour cache write or unreadable block; bad input
    /// stays JSON, to be a dead letter): those go to `otlp_spans` as LLM spans of `otlp_proto` messages,
    /// so the totals the demo checks are the same whichever way an event arrives.
    static func messages(_ lines: [String], tracesOf workflow: String) -> [(topic: String, value: [UInt8])] {
        let decoder = EventDecoder()
        var batcher = TraceBatcher(json: false, spansPerMessage: 20)
        var out: [(topic: String, value: [UInt8])] = []
        for line in lines {
            let bytes = Array(line.utf8)
            let readable = decoder.decode(bytes) == nil
            let e = decoder.event
            let traced = readable && e.kind == .usage && decoder.string(e.workflow) == workflow
                && e.costOverride == nil && e.serviceTier.isAbsent && e.unrecognizedUsage.isAbsent && e.timestamp != nil
                && e.contributions.allSatisfy { $0.tokens.cacheWrite1h == 0 }
            if traced {
                for m in bytes.withUnsafeBytes({ batcher.add($0) }) { out.append(("otlp_spans", m)) }
            } else {
                out.append(("llm-usage", bytes))
            }
        }
        for m in batcher.finish() { out.append(("otlp_spans", m)) }
        return out
    }

    static func produce(_ messages: [(topic: String, value: [UInt8])], brokers: String, seconds: Double, counter: SharedBox<Int>) {
        do {
            let producer = try KafkaProducer(properties: [("bootstrap.servers", brokers), ("linger.ms", "5"),
                                                          ("sticky.partitioning.linger.ms", "0")])
            let start = Date()
            let perSlice = max(1, Int(Double(messages.count) / max(seconds, 0.1) / 20))
            var sent = 0
            while sent < messages.count {
                let end = min(messages.count, sent + perSlice)
                for i in sent..<end {
                    try messages[i].value.withUnsafeBytes {
                        try producer.produce(topic: messages[i].topic, key: nil, value: $0, token: UInt64(i))
                    }
                }
                sent = end
                _ = producer.poll(timeoutMs: 0)
                counter.set(sent)
                let due = start.addingTimeInterval(seconds * Double(sent) / Double(messages.count))
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            }
            _ = producer.flush(timeoutMs: 30_000)
        } catch {
            printError("demo producer failed: \(error)")
        }
    }
}

/// Progress on one rewritten line on a terminal; occasional plain lines otherwise (CI logs, pipes).
final class Terminal {
    let tty = isatty(1) != 0
    var lastPlain = Date.distantPast
    var progressShown = false

    func line(_ s: String) { writeOut(s + "\n") }

    func progress(_ s: String) {
        if tty {
            writeOut("\r\u{1B}[K" + s)
            progressShown = true
        } else if Date().timeIntervalSince(lastPlain) >= 2 {
            lastPlain = Date()
            line(s)
        }
    }

    /// A line printed above the progress line (which is redrawn on the next update).
    func interrupt(_ s: String) {
        if tty { writeOut("\r\u{1B}[K" + s + "\n") } else { line(s) }
    }

    func endProgress() {
        if tty && progressShown { writeOut("\n") }
    }
}

/// The demo failed for a reason that is not a command-line mistake: exit 1 with the reason, no usage.
struct DemoFailure: Error, CustomStringConvertible {
    let description: String
    init(_ reason: String) { description = "tokenmeter demo: " + reason }
}

/// A value shared between the demo's threads.
final class SharedBox<T: Sendable>: Sendable {
    private let state: Mutex<T>
    init(_ value: T) { state = Mutex(value) }
    var value: T { state.withLock { $0 } }
    func set(_ v: T) { state.withLock { $0 = v } }
}
