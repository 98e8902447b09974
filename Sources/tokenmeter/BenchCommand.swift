import ArgumentParser
import Foundation
import Logging
import TokenmeterCore
import TokenmeterDaemon
import TokenmeterKafka
import TrafficGenerator
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `tokenmeter bench`: how close the daemon gets to librdkafka's own ceiling. Starts a broker process,
/// fills a topic, then measures (each `--runs` times, median and spread) a raw consumer that discards what
/// it reads, the full daemon on the same topic, and the pipeline fed from memory. `--cardinality` measures
/// memory per open key and checkpoint encode/restore time instead.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput against a raw Kafka consumer, the core pipeline, and memory per key.",
        discussion: """
            Default mode: starts `tokenmeter broker` as a child process, fills a topic with --events generated \
            events over --span of event time (2,000 workflows, 50 owners, every event shape, 5% outcomes, 1% bad, 0.5% late; keyed by \
            sequence number so they spread over the partitions), then measures each --runs times: raw (the \
            project's Kafka consumer in a fresh group, same settings as the daemon, discarding messages), \
            tokenmeter (the full daemon in a fresh group until every message is counted), and core (the \
            pipeline fed from memory on one thread, canonical and provider-shaped events separately). \
            Times run from the first message consumed to the last (the mock broker's ~3 s group join is \
            left out). Progress goes to stderr; the table (or --json) to stdout.

            --state: bytes written per event over time by checkpoints (local and changelog mode) at --rate \
            events/s for --seconds, unique ids, a 1 h dedup window; --accelerate runs event time faster so the \
            window fills; then the restore's time and bytes read.

            --cardinality: --keys distinct (workflow, owner, model) keys into one window through the \
            pipeline; prints bytes per key (RSS delta / keys) and the time to encode and to restore a \
            checkpoint of them.
            """)

    @Option(help: "Events to produce and measure.")
    var events: Int = 1_000_000

    @Option(name: .customLong("partitions"),
            help: "Partitions of the bench topic (default 64, raised when the events would not fit the mock broker's ~5 MiB per partition).")
    var partitionsOption: Int?

    @Option(help: ArgumentHelp("Event-time span of the generated events (default 1h: a million LLM calls an hour).",
                               discussion: "A longer span closes more minute windows per event: 24h shows a day's backlog, one file per partition per minute."))
    var span: String = "1h"

    @Option(help: "Repetitions of each measurement (median and min-max are reported).")
    var runs: Int = 3

    @Option(help: "Random seed of the traffic.")
    var seed: UInt64 = 2026

    @Flag(help: "Machine-readable output (JSON on stdout).")
    var json = false

    @Flag(help: "Memory per open key and checkpoint encode/restore time instead of throughput.")
    var cardinality = false

    @Option(help: "Distinct keys for --cardinality.")
    var keys: Int = 1_000_000

    @Flag(help: "Bytes written per event over time by checkpoints and the changelog, and the restore, instead of throughput.")
    var state = false

    @Option(help: "--state: events per second produced.")
    var rate: Int = 2_000

    @Option(help: "--state: seconds to run each mode.")
    var seconds: Int = 150

    @Option(help: "--state: event time runs this many times faster than the wall clock (24 fills a 1 h window in 150 s).")
    var accelerate: Double = 1

    @Option(help: "--state: distinct (workflow, owner, model) series in the traffic.")
    var series: Int = 300

    @Option(help: "--state: `local`, `changelog` or `both`.")
    var stateMode: String = "both"

    @Option(name: .customLong("kafka-property"), parsing: .singleValue,
            help: ArgumentHelp("A librdkafka property KEY=VALUE for the raw consumer and, as in `[kafka.properties]`, the daemon's clients (repeatable).",
                               discussion: "For A/B runs of consumer settings: it wins over the daemon's consumer defaults, as `[kafka.properties]` does."))
    var kafkaProperties: [String] = []

    /// `--kafka-property` values as pairs (validated in `validate`).
    var extraProperties: [(String, String)] {
        kafkaProperties.compactMap { kv in
            guard let eq = kv.firstIndex(of: "=") else { return nil }
            return (String(kv[..<eq]), String(kv[kv.index(after: eq)...]))
        }
    }

    @Option(help: "Seconds without progress after which a Kafka measurement is abandoned.")
    var stallSeconds: Double = 30

    @Option(help: "Run only some measurements: `core` (the pipeline fed from memory; no broker, quick to iterate on) or `kafka` (the raw consumer and the daemon, without the core rows).")
    var only: BenchOnly?

    var spanMillis: Int64 { DurationSpec.parse(span)?.millis ?? 3_600_000 }

    func validate() throws {
        guard events >= 1 else { throw ValidationError("--events must be at least 1") }
        guard (1...10_000).contains(partitionsOption ?? 64) else { throw ValidationError("--partitions must be 1...10000") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard keys >= 1 else { throw ValidationError("--keys must be at least 1") }
        guard let ms = DurationSpec.parse(span)?.millis, ms > 0 else { throw ValidationError("--span: not a duration: \(span)") }
        for kv in kafkaProperties {
            guard let eq = kv.firstIndex(of: "="), eq != kv.startIndex,
                  !kv.contains("\""), !kv.contains("\\"), !kv.contains("\n") else {
                throw ValidationError("--kafka-property: KEY=VALUE without quotes, backslashes or newlines: \(kv)")
            }
        }
    }

    func run() throws {
        let progress = BenchProgress(quiet: false)
        let work = Self.newFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        if cardinality {
            let report = try CardinalityBench(keys: keys, dir: work, progress: progress).run()
            if json { writeOut(try Self.jsonText(report) + "\n") } else { writeOut(report.table()) }
            return
        }
        if state {
            let modes: [StateBench.Mode] = stateMode == "both" ? StateBench.Mode.allCases : [StateBench.Mode(rawValue: stateMode)].compactMap { $0 }
            guard !modes.isEmpty else { throw ValidationError("--state-mode: local, changelog or both") }
            let bench = StateBench(rate: rate, seconds: seconds, partitions: partitionsOption ?? 8, accelerate: accelerate, series: max(series, 1))
            let report = try bench.run(modes: modes, work: work, progress: progress)
            if json { writeOut(try Self.jsonText(report) + "\n") } else { writeOut(report.table()) }
            return
        }
        if only == .core {
            let report = try coreOnly(work: work, progress: progress)
            if json { writeOut(try Self.jsonText(report) + "\n") } else { writeOut(report.table()) }
            return
        }
        let report = try throughput(work: work, progress: progress)
        if json { writeOut(try Self.jsonText(report) + "\n") } else { writeOut(report.table()) }
    }

    static func jsonText<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    static func newFolder() -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let path = "\(base)/tokenmeter-bench-\(getpid())-\(Int(Date().timeIntervalSince1970))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    // MARK: Throughput

    struct ThroughputReport: Codable {
        var events: Int
        var partitions: Int
        var runs: Int
        var payloadBytes: Int64
        var fillSeconds: Double
        var machine: Machine
        var raw: BenchResult
        var tokenmeter: BenchResult
        /// nil with `--only kafka`.
        var coreCanonical: BenchResult?
        var coreProviderShaped: BenchResult?
        /// tokenmeter events/s divided by raw events/s (medians; min and max pair the extreme runs).
        var ratio: Spread
        /// tokenmeter CPU seconds per event divided by the raw consumer's, from the same bench (medians; min
        /// and max pair the extreme runs): how much more the daemon costs per event than reading it does.
        var cpuRatio: Spread
        /// The machine's load average when the measurements started and when they ended: other work on
        /// the machine slows the rates (CPU seconds per event much less), so every table says it.
        var load: LoadAverage

        /// The daemon's targets: throughput within 10% of the raw consumer's (on this broker both are held
        /// to its pace), and at most 4 CPU seconds per million events for the whole daemon process.
        static let targetThroughputRatio = 0.9
        static let targetCPUPerMillion = 4.0

        func table() -> String {
            var out = "tokenmeter bench: \(events) events (\(String(format: "%.1f", Double(payloadBytes) / 1e6)) MB), \(partitions) partitions, \(runs) runs each; median [min-max]\n"
            out += "machine: \(machine.cores) cores, \(machine.cpu); load average \(load.text)\n\n"
            let header = ["measurement", "events/s", "MB/s", "CPU s / M events", "peak RSS MB"]
            var rows: [[String]] = []
            for r in [raw, tokenmeter, coreCanonical, coreProviderShaped].compactMap({ $0 }) {
                rows.append([r.name, Self.spread(r.eventsPerSecond, "%.0f"), Self.spread(r.megabytesPerSecond, "%.1f"),
                             Self.spread(r.cpuSecondsPerMillionEvents, "%.2f"), String(format: "%.0f", Double(r.peakRSSBytes) / 1_048_576)])
            }
            out += Self.render(header: header, rows: rows)
            out += "\n" + [coreCanonical, coreProviderShaped].compactMap { $0?.checkpointLine }.joined()
            out += "tokenmeter / raw: events/s " + Self.spread(ratio, "%.3f") + "; CPU s per event " + Self.spread(cpuRatio, "%.1f") + "\n"
            let cpu = tokenmeter.cpuSecondsPerMillionEvents.median
            out += "targets: tokenmeter / raw events/s >= \(Self.targetThroughputRatio): " + String(format: "%.3f", ratio.median)
                + (ratio.median >= Self.targetThroughputRatio ? " (met)" : " (missed)")
                + "; tokenmeter CPU s per million events <= \(Self.targetCPUPerMillion): " + String(format: "%.2f", cpu)
                + (cpu <= Self.targetCPUPerMillion ? " (met)" : " (missed)") + "\n"
            let medians = tokenmeter.runs.compactMap(\.alertLatencyMedianMs), p99s = tokenmeter.runs.compactMap(\.alertLatencyP99Ms)
            if !medians.isEmpty {
                out += "alert latency, consumed to acknowledged by the broker, under full load: median "
                    + Self.spread(Spread(medians), "%.1f") + " ms, p99 " + Self.spread(Spread(p99s), "%.1f")
                    + " ms (\(tokenmeter.runs.compactMap(\.alerts).map(String.init).joined(separator: ", ")) alerts per run)\n"
            }
            let gaps = tokenmeter.runs.compactMap(\.longestPollGapMs)
            if !gaps.isEmpty {
                out += "longest gap between two polls (a checkpoint, a batch of rollup files): " + Self.spread(Spread(gaps), "%.0f") + " ms"
                let checkpoints = tokenmeter.runs.compactMap(\.longestCheckpointMs)
                if !checkpoints.isEmpty { out += "; longest checkpoint: " + Self.spread(Spread(checkpoints), "%.0f") + " ms" }
                out += "\n"
            }
            return out
        }

        static func spread(_ s: Spread, _ f: String) -> String {
            "\(String(format: f, s.median)) [\(String(format: f, s.min))-\(String(format: f, s.max))]"
        }

        static func render(header: [String], rows: [[String]]) -> String {
            var widths = header.map(\.count)
            for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
            func line(_ cells: [String]) -> String {
                "| " + cells.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: " | ") + " |\n"
            }
            var out = line(header)
            out += "|" + widths.enumerated().map { i, w in i == 0 ? String(repeating: "-", count: w + 2) : String(repeating: "-", count: w + 1) + ":" }.joined(separator: "|") + "|\n"
            for r in rows { out += line(r) }
            return out
        }
    }

    /// /proc/loadavg (1, 5 and 15 minutes) before the bench starts its broker, and after the last measurement.
    struct LoadAverage: Codable {
        var start: [Double]
        var end: [Double]
        var text: String {
            func f(_ l: [Double]) -> String { l.map { String(format: "%.2f", $0) }.joined(separator: " ") }
            return "at start \(f(start)), at end \(f(end))"
        }
        static func now() -> [Double] {
            guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return [] }
            return text.split(separator: " ").prefix(3).compactMap { Double($0) }
        }
    }

    struct Machine: Codable {
        var cores: Int
        var cpu: String
        static func current() -> Machine {
            var cpu = "unknown"
            if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
               let l = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
               let colon = l.firstIndex(of: ":") {
                cpu = l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return Machine(cores: ProcessInfo.processInfo.activeProcessorCount, cpu: cpu)
        }
    }

    func throughput(work: String, progress: BenchProgress) throws -> ThroughputReport {
        let topic = "bench"
        // Before the bench adds its own broker and producer: what else the machine was doing.
        let loadStart = LoadAverage.now()
        let partitions = try checkCapacity(progress: progress)
        progress.line("tokenmeter bench: \(events) events, \(partitions) partitions, \(runs) runs; work folder \(work)")
        if !extraProperties.isEmpty {
            progress.line("  consumer properties (raw and daemon): " + extraProperties.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
        }
        let broker = try BrokerProcess(partitions: partitions, topics: [topic, topic + "-dlq", topic + "-alerts"], log: work + "/broker.log")
        defer { broker.stop() }
        progress.line("  broker     tokenmeter broker (pid \(broker.process.processIdentifier)) at \(broker.bootstrap)")

        // Fill.
        let fillStart = monotonicSeconds()
        var totals = ExpectedTotals(prices: Catalogue.referencePrices)
        let payloadBytes = try fill(brokers: broker.bootstrap, topic: topic, progress: progress, totals: &totals)
        // One budget per owner at the owner's whole spend in this traffic: each crosses ten thresholds
        // spread over the run, which gives the alert latency its samples.
        let owners = Set(totals.byKey.keys.map(\.owner)).sorted()
        let ownerBudgets = owners.compactMap { o -> (owner: String, amount: Money)? in
            let spend = totals.total { $0.owner == o }.cost
            return spend > .zero ? (o, spend) : nil
        }
        let fillSeconds = monotonicSeconds() - fillStart
        progress.line(String(format: "  filled     %d events, %.1f MB in %.1f s", events, Double(payloadBytes) / 1e6, fillSeconds))

        // The daemon's exact consumer properties, for the raw consumer too.
        let baseConfig = try BenchTraffic.parse(BenchTraffic.daemonConfigText(brokers: broker.bootstrap, group: "unused", topic: topic, dir: work + "/unused",
                                                                                         properties: extraProperties))
        let base = try Daemon.kafkaProperties(baseConfig, instance: "bench")
        // The raw consumer gets the daemon's consumer properties, its throughput defaults included.
        let consumerBase = Daemon.consumerProperties(baseConfig, base: base, instance: "bench").filter { $0.0 != "group.id" }

        var rawRuns: [BenchRun] = []
        for i in 1...runs {
            let r = try rawRun(brokers: broker.bootstrap, topic: topic, base: consumerBase, group: "bench-raw-\(getpid())-\(i)", bytes: payloadBytes,
                               label: "raw \(i)/\(runs)", progress: progress)
            progress.line(String(format: "  raw        run %d/%d: %.0f events/s", i, runs, r.eventsPerSecond))
            rawRuns.append(r)
        }
        var tmRuns: [BenchRun] = []
        for i in 1...runs {
            let r = try daemonRun(brokers: broker.bootstrap, topic: topic, group: "bench-tm-\(getpid())-\(i)", dir: work + "/daemon-\(i)",
                                  bytes: payloadBytes, ownerBudgets: ownerBudgets, label: "tokenmeter \(i)/\(runs)", progress: progress)
            progress.line(String(format: "  tokenmeter run %d/%d: %.0f events/s, %d alerts, latency median %.1f ms, p99 %.1f ms", i, runs,
                                 r.eventsPerSecond, r.alerts ?? 0, r.alertLatencyMedianMs ?? .nan, r.alertLatencyP99Ms ?? .nan))
            tmRuns.append(r)
            // The run's files stay until the bench ends: deleting thousands of files just before the next
            // run makes that run's file creations slower on some file systems (ext4 without a journal
            // skips recently freed inodes one by one), a cost of the bench and not of the daemon.
        }
        broker.stop()

        let withCore = only != .kafka
        let canonical = withCore ? try coreRuns(shapes: .only(canonical: 1), label: "core canonical", partitions: partitions, work: work, progress: progress) : nil
        let native = withCore ? try coreRuns(shapes: .only(native: 1), label: "core provider-shaped", partitions: partitions, work: work, progress: progress) : nil

        let raw = BenchResult(name: "raw", description: "KafkaConsumer in a fresh group, same settings as the daemon, messages discarded", runs: rawRuns)
        let tm = BenchResult(name: "tokenmeter", description: "the full daemon (decode, price, windows 1m/1h/1d, budget, spike rule, rollup files) until all counted", runs: tmRuns)
        // The ratio: median of medians; its spread pairs the slowest and the fastest runs of each.
        var ratio = Spread([0])
        ratio.median = raw.eventsPerSecond.median > 0 ? tm.eventsPerSecond.median / raw.eventsPerSecond.median : 0
        ratio.min = raw.eventsPerSecond.max > 0 ? tm.eventsPerSecond.min / raw.eventsPerSecond.max : 0
        ratio.max = raw.eventsPerSecond.min > 0 ? tm.eventsPerSecond.max / raw.eventsPerSecond.min : 0
        var cpuRatio = Spread([0])
        let rawCPU = raw.cpuSecondsPerMillionEvents, tmCPU = tm.cpuSecondsPerMillionEvents
        cpuRatio.median = rawCPU.median > 0 ? tmCPU.median / rawCPU.median : 0
        cpuRatio.min = rawCPU.max > 0 ? tmCPU.min / rawCPU.max : 0
        cpuRatio.max = rawCPU.min > 0 ? tmCPU.max / rawCPU.min : 0
        let r = ThroughputReport(events: events, partitions: partitions, runs: runs, payloadBytes: payloadBytes, fillSeconds: fillSeconds,
                                 machine: .current(), raw: raw, tokenmeter: tm, coreCanonical: canonical, coreProviderShaped: native, ratio: ratio,
                                 cpuRatio: cpuRatio, load: LoadAverage(start: loadStart, end: LoadAverage.now()))
        return r
    }

    /// The mock broker keeps about 5 MiB per partition and silently drops older data: refuse up front
    /// when the events would not fit (estimated from the first 2,000 events of the same traffic).
    /// Returns the partition count to use.
    func checkCapacity(progress: BenchProgress) throws -> Int {
        var g = TrafficGenerator(BenchTraffic.config(events: events, seed: seed, span: spanMillis, realistic: true))
        let sample = min(events, 2000)
        var bytes = 0
        for _ in 0..<sample { bytes += g.next().line.utf8.count + 40 }  // + key and record overhead
        let limit = 4.5 * 1_048_576.0
        let needed = Int((Double(bytes) / Double(sample) * Double(events) / limit).rounded(.up))
        guard let partitions = partitionsOption else {
            if needed <= 64 { return 64 }
            let raised = (needed + 15) / 16 * 16
            progress.line("  note       \(events) events of about \(bytes / sample) bytes do not fit 64 partitions of the mock broker (~5 MiB each): using \(raised)")
            return raised
        }
        let perPartition = Double(bytes) / Double(sample) * Double(events) / Double(partitions)
        if perPartition > limit {
            throw BenchError(String(format: "%d events of about %d bytes need about %.1f MiB per partition over %d partitions; the mock broker keeps about 5 MiB per partition and drops the rest: use --partitions %d or more, or fewer --events",
                                    events, bytes / sample, perPartition / 1_048_576, partitions, needed))
        }
        return partitions
    }

    /// Produces the generated events, keyed by sequence number; returns the payload bytes.
    ///
    /// Batches are made as large as the producer allows (1 s linger, 1 MB): the mock broker answers a
    /// fetch with one stored batch per partition and finds it by walking the partition's batch list, so
    /// a topic filled in small batches (20 ms linger gave ~3 messages each at this fill rate) is read a
    /// few messages per round trip, slower the more it holds: a million events read at ~8,000/s and the
    /// bench measured the broker. A real broker fills a fetch from many batches; large batches let the
    /// mock do the same, so the raw consumer shows librdkafka's pace and the daemon its own.
    func fill(brokers: String, topic: String, progress: BenchProgress, totals: inout ExpectedTotals) throws -> Int64 {
        let producer = try KafkaProducer(properties: [("bootstrap.servers", brokers), ("linger.ms", "1000"), ("batch.size", "1000000"),
                                                      ("batch.num.messages", "10000"), ("queue.buffering.max.messages", "500000"),
                                                      ("queue.buffering.max.kbytes", "1048576")])
        let failures = SharedBox<Int>(0)
        let delivered = SharedBox<Int>(0)
        producer.onDelivery = { _, error in
            if error != nil { failures.set(failures.value + 1) }
            delivered.set(delivered.value + 1)
        }
        var generator = TrafficGenerator(BenchTraffic.config(events: events, seed: seed, span: spanMillis, realistic: true))
        var bytes: Int64 = 0
        for i in 0..<events {
            let event = generator.next()
            totals.add(event.expected)
            var line = event.line
            var key = String(i)
            bytes += Int64(line.utf8.count)
            try key.withUTF8 { k in
                try line.withUTF8 { v in
                    try producer.produce(topic: topic, key: UnsafeRawBufferPointer(k), value: UnsafeRawBufferPointer(v), token: UInt64(i))
                }
            }
            if i % 10_000 == 0 {
                _ = producer.poll(timeoutMs: 0)
                progress.update("  filling    \(i)/\(events) produced, \(delivered.value) delivered")
            }
        }
        while producer.outstanding > 0 {
            _ = producer.flush(timeoutMs: 500)
            progress.update("  filling    \(events)/\(events) produced, \(delivered.value) delivered")
        }
        progress.end()
        if failures.value > 0 { throw BenchError("\(failures.value) of \(events) messages failed delivery") }
        return bytes
    }

    func rawRun(brokers: String, topic: String, base: [(String, String)], group: String, bytes: Int64,
                label: String, progress: BenchProgress) throws -> BenchRun {
        let consumer = try KafkaConsumer(properties: base + [("group.id", group)],
                                         topics: [topic], rebalance: nil)
        defer { consumer.close() }
        var count = 0
        var first: (t: Double, u: Usage)?
        var lastProgress = monotonicSeconds()
        var lastCount = 0
        var lastShown = 0.0
        while count < events {
            _ = consumer.poll(maxMessages: 2000, timeoutMs: 100) { _ in
                if first == nil { first = (monotonicSeconds(), Usage.now()) }
                count += 1
            }
            let now = monotonicSeconds()
            if count != lastCount { lastCount = count; lastProgress = now }
            if now - lastProgress > stallSeconds {
                throw BenchError("raw consumer stalled at \(count) of \(events) messages (the broker keeps ~5 MiB per partition: use more --partitions or fewer --events)")
            }
            if now - lastShown > 0.2 { lastShown = now; progress.update("  measuring  \(label): \(count)/\(events) consumed") }
        }
        let end = monotonicSeconds(), u = Usage.now()
        progress.end()
        guard let f = first else { throw BenchError("raw consumer read nothing") }
        return BenchRun(events: events, bytes: bytes, seconds: end - f.t, cpuSeconds: u.cpuSeconds - f.u.cpuSeconds, peakRSSBytes: u.maxRSSBytes)
    }

    func daemonRun(brokers: String, topic: String, group: String, dir: String, bytes: Int64,
                   ownerBudgets: [(owner: String, amount: Money)], label: String, progress: BenchProgress) throws -> BenchRun {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let config = try BenchTraffic.parse(BenchTraffic.daemonConfigText(brokers: brokers, group: group, topic: topic, dir: dir,
                                                                          ownerBudgets: ownerBudgets, properties: extraProperties))
        let stop = StopSignal()
        let daemonProgress = DaemonProgress()
        let done = DispatchSemaphore(value: 0)
        let failure = SharedBox<String?>(nil)
        let latencies = SharedBox<[Double]>([])
        let pollGap = SharedBox<Int64>(0)
        let longestCheckpoint = SharedBox<Double>(0)
        var logger = Logger(label: "tokenmeter") { StderrLogHandler(label: $0) }
        logger.logLevel = .error
        let log = logger
        Thread.detachNewThread {
            do {
                let daemon = try Daemon(config: config, log: log, stop: stop, progress: daemonProgress)
                try daemon.run()
                latencies.set(daemon.alertLatencySamples)
                pollGap.set(daemon.longestPollGapMillis)
                longestCheckpoint.set(daemon.longestCheckpointMillis)
            } catch {
                failure.set("\(error)")
            }
            done.signal()
        }
        var stopped = false
        defer {
            if !stopped {
                stop.requestStop()
                done.wait()
            }
        }
        // The daemon publishes its count after each poll batch: the run is timed from the first count seen,
        // and only the events counted after it are in the rate.
        var first: (t: Double, u: Usage, m: Int64)?
        var lastCount: Int64 = 0
        var lastProgress = monotonicSeconds()
        var lastShown = 0.0
        let target = Int64(events)
        // Read once: an option's value read through its property wrapper each turn was a generic
        // metadata lookup, CPU of this process charged to the daemon's run like the rest of this loop.
        let stall = stallSeconds
        while true {
            // The count alone (a copy of the whole snapshot, a thousand times a second, was CPU of this
            // process charged to the daemon's run).
            let m = daemonProgress.messagesConsumed
            let now = monotonicSeconds()
            if m > 0 && first == nil { first = (now, Usage.now(), m) }
            if m >= target { break }
            if let e = failure.value { throw BenchError("daemon failed: \(e)") }
            if m != lastCount { lastCount = m; lastProgress = now }
            if now - lastProgress > stall { throw BenchError("daemon stalled at \(m) of \(target) messages") }
            if now - lastShown > 0.2 { lastShown = now; progress.update("  measuring  \(label): \(m)/\(target) counted") }
            // A look every 10 ms: each wake-up costs this process CPU; 10 ms is under 0.3% of a run of
            // 300,000 events or more.
            usleep(10_000)
        }
        let end = monotonicSeconds(), u = Usage.now()
        progress.end()
        let f = first!
        let measured = max(1, events - Int(f.m))
        var run = BenchRun(events: measured, bytes: bytes * Int64(measured) / Int64(events), seconds: end - f.t, cpuSeconds: u.cpuSeconds - f.u.cpuSeconds, peakRSSBytes: u.maxRSSBytes)
        // Alerts raised by the last messages may still be in flight: their reports arrive by shutdown.
        stop.requestStop()
        done.wait()
        stopped = true
        let l = latencies.value.sorted()
        run.longestPollGapMs = Double(pollGap.value)
        run.longestCheckpointMs = longestCheckpoint.value
        run.alerts = l.count
        if !l.isEmpty {
            run.alertLatencyMedianMs = Spread(l).median * 1000
            run.alertLatencyP99Ms = l[min(l.count - 1, Int((Double(l.count) * 0.99).rounded(.up)) - 1)] * 1000
        }
        return run
    }

    /// The pipeline fed from memory on this thread: `process` for every event, then `closeAll`.
    func coreRuns(shapes: ShapeMix, label: String, partitions: Int, work: String, progress: BenchProgress) throws -> BenchResult {
        progress.update("  preparing  \(label): generating \(events) events")
        var buffer = EventBuffer()
        buffer.bytes.reserveCapacity(events * 400)
        buffer.ends.reserveCapacity(events)
        var generator = TrafficGenerator(BenchTraffic.config(events: events, seed: seed &+ 1, span: spanMillis, shapes: shapes, realistic: false))
        for _ in 0..<events { buffer.append(generator.next().line) }
        progress.end()
        let totalBytes = Int64(buffer.bytes.count)
        var out: [BenchRun] = []
        for i in 1...runs {
            let dir = work + "/core-\(i)"
            let config = try BenchTraffic.parse(BenchTraffic.daemonConfigText(brokers: "127.0.0.1:9", group: "core", topic: "bench", dir: dir))
            let pipeline = Pipeline(config: config, instance: "bench")
            let wallNow = Int64(Date().timeIntervalSince1970 * 1000)
            let parts = Int32(partitions)
            let n = buffer.count
            var counted = 0
            progress.update("  measuring  \(label) \(i)/\(runs)")
            let u0 = Usage.now(), t0 = monotonicSeconds()
            buffer.bytes.withUnsafeBytes { all in
                var start = 0
                for j in 0..<n {
                    let end = buffer.ends[j]
                    let r = pipeline.process(UnsafeRawBufferPointer(rebasing: all[start..<end]), topicIndex: 0, partition: Int32(j) % parts,
                                             offset: Int64(j) / Int64(parts), messageTime: nil, wallNow: wallNow)
                    if r == .counted { counted += 1 }
                    start = end
                }
            }
            // A whole checkpoint of the state, left out of the measured time, CPU and peak RSS.
            let u1 = Usage.now(), c0 = monotonicSeconds()
            let checkpoint = pipeline.checkpointBytes(includeDedup: false)
            let c1 = monotonicSeconds(), u2 = Usage.now()
            pipeline.closeAll()
            let t1 = monotonicSeconds(), u3 = Usage.now()
            progress.end()
            if counted < n / 2 { throw BenchError("\(label): only \(counted) of \(n) events were counted") }
            let checkpointCPU = u2.cpuSeconds - u1.cpuSeconds
            var run = BenchRun(events: n, bytes: totalBytes, seconds: t1 - t0 - (c1 - c0),
                               cpuSeconds: u3.cpuSeconds - u0.cpuSeconds - checkpointCPU, peakRSSBytes: u1.maxRSSBytes)
            run.checkpointBytes = checkpoint.count
            run.checkpointEncodeSeconds = checkpointCPU
            out.append(run)
            progress.line(String(format: "  core       %@ run %d/%d: %.0f events/s", label, i, runs, Double(n) / (t1 - t0)))
        }
        let what = shapes == .only(canonical: 1) ? "canonical events" : "provider-shaped events (OpenAI, Anthropic, Gemini, Bedrock usage blocks)"
        return BenchResult(name: label, description: "Pipeline.process from memory, one thread, \(what), then closeAll (files not written)", runs: out)
    }
}

/// A `tokenmeter broker` child process; its bootstrap address is the first line it prints.
final class BrokerProcess {
    let process = Process()
    let bootstrap: String
    private var stopped = false

    init(partitions: Int, topics: [String], log: String) throws {
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        process.arguments = ["broker", "--partitions", String(partitions)] + topics.flatMap { ["--topic", $0] }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = pipe
        process.standardInput = Pipe()
        try process.run()
        var line = Data()
        let handle = pipe.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty || byte.first == 0x0A { break }
            line.append(byte)
        }
        bootstrap = String(decoding: line, as: UTF8.self)
        guard !bootstrap.isEmpty else {
            process.terminate()
            throw BenchError("broker printed no address; see \(log)")
        }
    }

    func stop() {
        if stopped { return }
        stopped = true
        process.terminate()
        process.waitUntilExit()
    }
}
