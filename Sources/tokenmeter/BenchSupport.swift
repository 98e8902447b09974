import Foundation
import TokenmeterCore
import TrafficGenerator
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Process resource usage: CPU seconds (user + system, all threads) and peak RSS.
struct Usage {
    var cpuSeconds: Double
    var maxRSSBytes: Int64

    static func now() -> Usage {
        var ru = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
        let cpu = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
            + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
        return Usage(cpuSeconds: cpu, maxRSSBytes: Int64(ru.ru_maxrss) * 1024)
    }

    /// The current resident set size, from /proc/self/statm (0 where unavailable).
    static func currentRSSBytes() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int64(fields[1]) else { return 0 }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Monotonic seconds.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// One timed run of one measurement.
struct BenchRun: Codable {
    var events: Int
    var bytes: Int64
    var seconds: Double
    var cpuSeconds: Double
    var peakRSSBytes: Int64
    var eventsPerSecond: Double { seconds > 0 ? Double(events) / seconds : 0 }
    var megabytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds / 1e6 : 0 }
    var cpuSecondsPerMillion: Double { events > 0 ? cpuSeconds / Double(events) * 1e6 : 0 }
    /// tokenmeter runs: alerts acknowledged by the broker, and the median and 99th percentile of the time
    /// from consuming the message that raised each to the acknowledgement, in milliseconds.
    var alerts: Int? = nil
    var alertLatencyMedianMs: Double? = nil
    var alertLatencyP99Ms: Double? = nil
    /// tokenmeter runs: the longest time the polling thread spent between two polls (a checkpoint, a
    /// batch of rollup files), in milliseconds: how long counting can lag behind consuming.
    var longestPollGapMs: Double? = nil
    /// tokenmeter runs: the longest checkpoint (encode and write the state, commit), in milliseconds.
    var longestCheckpointMs: Double? = nil
    /// core runs: a whole checkpoint of the state the events left (open windows of every partition, no
    /// de-duplication ids, as the daemon writes its records), encoded after the measured part: its size and
    /// the encoder's CPU seconds, the cost of a checkpoint when every row changed since the last one.
    var checkpointBytes: Int? = nil
    var checkpointEncodeSeconds: Double? = nil
}

/// Median and spread (min-max) of a value over the runs.
struct Spread: Codable {
    var median: Double
    var min: Double
    var max: Double
    init(_ values: [Double]) {
        let s = values.sorted()
        min = s.first ?? 0
        max = s.last ?? 0
        if s.isEmpty { median = 0 } else if s.count % 2 == 1 { median = s[s.count / 2] } else { median = (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
    }
}

/// A measurement summarised over its runs.
struct BenchResult: Codable {
    var name: String
    var description: String
    var runs: [BenchRun]
    var eventsPerSecond: Spread
    var megabytesPerSecond: Spread
    var cpuSecondsPerMillionEvents: Spread
    /// The process's peak RSS (getrusage ru_maxrss) at the end of this measurement's runs: process-wide
    /// and monotonic, so a later measurement includes what the earlier ones reached.
    var peakRSSBytes: Int64

    init(name: String, description: String, runs: [BenchRun]) {
        self.name = name
        self.description = description
        self.runs = runs
        eventsPerSecond = Spread(runs.map(\.eventsPerSecond))
        megabytesPerSecond = Spread(runs.map(\.megabytesPerSecond))
        cpuSecondsPerMillionEvents = Spread(runs.map(\.cpuSecondsPerMillion))
        peakRSSBytes = runs.map(\.peakRSSBytes).max() ?? 0
    }

    /// Core rows: the whole checkpoint of the state each run left, as one line (nil for other rows).
    var checkpointLine: String? {
        let seconds = runs.compactMap(\.checkpointEncodeSeconds), bytes = runs.compactMap(\.checkpointBytes)
        guard !seconds.isEmpty, let size = bytes.max() else { return nil }
        return "\(name): a whole checkpoint of the state after the run (\(String(format: "%.1f", Double(size) / 1e6)) MB) "
            + "encoded in " + BenchCommand.ThroughputReport.spread(Spread(seconds), "%.3f") + " CPU s\n"
    }
}

/// Progress on stderr (stdout stays clean for the table or `--json`): one rewritten line on a terminal,
/// a plain line every two seconds otherwise.
final class BenchProgress {
    let tty = isatty(2) != 0
    var lastPlain = 0.0
    var shown = false
    let quiet: Bool
    init(quiet: Bool) { self.quiet = quiet }

    func update(_ s: String) {
        if quiet { return }
        if tty {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + s).utf8))
            shown = true
        } else if monotonicSeconds() - lastPlain >= 2 {
            lastPlain = monotonicSeconds()
            FileHandle.standardError.write(Data((s + "\n").utf8))
        }
    }

    func line(_ s: String) {
        if quiet { return }
        end()
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }

    func end() {
        if tty && shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        shown = false
        lastPlain = 0
    }
}

/// The bench's traffic and configuration.
enum BenchTraffic {
    /// 2,000 workflows over 50 owners, cloned from the catalogue's workflows (their model mixes, sizes and
    /// outcome rates), so that key cardinality is that of a large company rather than the catalogue's 29.
    static func workflows(count: Int = 2000, owners: Int = 50) -> [CatalogueWorkflow] {
        let base = Catalogue.workflows
        return (0..<count).map { i in
            var w = base[i % base.count]
            w.name = "\(w.name)-\(i / base.count)"
            w.owner = "team-\(i % owners)"
            return w
        }
    }

    /// Generated events from the start of the day before yesterday (UTC), over `span` milliseconds (at
    /// most a day, so every window can close).
    static func config(events: Int, seed: UInt64, span: Int64, shapes: ShapeMix? = nil, realistic: Bool) -> TrafficConfig {
        let today = floorDiv(Int64(Date().timeIntervalSince1970 * 1000), 86_400_000) * 86_400_000
        var t = TrafficConfig(seed: seed, start: today - 2 * 86_400_000, events: events, spanMillis: min(span, 86_400_000))
        t.workflows = workflows()
        if let shapes { t.shapes = shapes }
        if realistic {
            t.badFraction = 0.01
            t.lateFraction = 0.005
        } else {
            t.badFraction = 0
            t.lateFraction = 0
        }
        return t
    }

    /// The daemon's configuration for a bench run: reference prices, windows 1m/1h/1d, a budget and a
    /// spike rule, rollups and state under `dir`; `ownerBudgets` adds a budget per owner with ten
    /// thresholds, so that alerts fire all through the run and their latency can be measured.
    static func daemonConfigText(brokers: String, group: String, topic: String, dir: String,
                                 ownerBudgets: [(owner: String, amount: Money)] = [],
                                 properties: [(String, String)] = []) -> String {
        """
        [kafka]
        brokers = "\(brokers)"
        group_id = "\(group)"
        topics = ["\(topic)"]
        alerts_topic = "\(topic)-alerts"
        dead_letter_topic = "\(topic)-dlq"

        [kafka.properties]
        # The mock broker forgets a member that left only when its session times out.
        "session.timeout.ms" = "6000"
        "heartbeat.interval.ms" = "500"
        \(properties.map { "\"\($0.0)\" = \"\($0.1)\"\n" }.joined())
        [rollups]
        dir = "\(dir)/rollups"
        windows = ["1m", "1h", "1d"]
        grace = "30s"
        idle_close = "2m"
        late_horizon = "7d"
        tags = ["environment"]
        instance = "bench"

        [state]
        dir = "\(dir)/state"
        checkpoint_interval = "5s"

        [dedup]
        window = "1h"

        [http]
        listen = "127.0.0.1:0"

        [[budget]]
        name = "team-0-monthly"
        owner = "team-0"
        period = "month"
        amount_usd = 500
        thresholds = [50, 80, 100]
        forecast = true

        [[spike]]
        name = "workflow-spike"
        by = "workflow"
        window = "5m"
        factor = 3.0
        min_usd = 1.0

        \(ownerBudgets.map { b in """
            [[budget]]
            name = "\(b.owner)-latency"
            owner = "\(b.owner)"
            period = "month"
            amount_usd = \(b.amount.decimalString())
            thresholds = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]

            """ }.joined())
        \(Catalogue.referencePricesTOML())
        """
    }

    static func parse(_ text: String) throws -> TokenmeterConfig {
        switch ConfigLoader.parse(text: text, file: "bench.toml") {
        case .success(let c): return c
        case .failure(let e): throw BenchError("bench config is invalid: \(e)")
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Events held in one contiguous buffer (no per-event allocation while the pipeline is measured).
struct EventBuffer {
    var bytes: [UInt8] = []
    var ends: [Int] = []
    var count: Int { ends.count }
    mutating func append(_ line: String) {
        bytes.append(contentsOf: line.utf8)
        ends.append(bytes.count)
    }
}
