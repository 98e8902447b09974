import Foundation
import Logging
import TokenmeterCore
import TokenmeterDaemon
import TokenmeterKafka

/// `tokenmeter bench --state`: what the state costs over time. A producer paces unique-id events at
/// `rate` per second into a topic of the mock broker (a child process) while the daemon runs in this
/// process with a one-hour de-duplication window and 5 s checkpoints; every slice of the run prints the
/// bytes written per consumed event (changelog records, and the local checkpoint with its id segments),
/// all bytes the process wrote to disk per event, and the checkpoints' CPU per thousand events. With
/// `accelerate` > 1 event time runs that many times faster than the wall clock, so the window fills (a
/// 1 h window at 24x fills in 150 s) and the run reaches the steady state where ids expire as fast as
/// they come. At the end the restore is measured: time, bytes read, ids and open rows rebuilt.
struct StateBench {
    enum Mode: String, Codable, CaseIterable { case local, changelog }

    var rate: Int
    var seconds: Int
    var partitions: Int
    var accelerate: Double
    var series: Int
    var sliceSeconds = 30

    struct Slice: Codable {
        var from: Int
        var to: Int
        var events: Int64
        var changelogBytesPerEvent: Double
        var stateBytesPerEvent: Double
        var diskBytesPerEvent: Double
        var checkpointCPUMsPer1k: Double
        var idsHeld: Int64
        /// Resident memory of the process (daemon and producer) at the end of the slice.
        var rssMB: Double
    }

    struct ModeReport: Codable {
        var mode: Mode
        var slices: [Slice]
        var restoreSeconds: Double
        var restoreBytesRead: Int64
        var restoredIds: Int
        var restoredOpenRows: Int
        /// Last slice over the slice from 30 to 60 s (bytes per event), the flatness the targets ask for.
        var growth: Double
        /// Resident memory added per id held, first slice to last (rows and names change little meanwhile).
        var bytesPerIdInMemory: Double
    }

    struct Report: Codable {
        var rate: Int
        var seconds: Int
        var partitions: Int
        var accelerate: Double
        var series: Int
        var machine: BenchCommand.Machine
        var modes: [ModeReport]

        func table() -> String {
            var out = "tokenmeter bench --state: \(rate) events/s for \(seconds) s, \(partitions) partitions, event time x\(accelerate), "
            out += "\(series) series, dedup.window 1h, checkpoints every 5 s\nmachine: \(machine.cores) cores, \(machine.cpu)\n"
            for m in modes {
                out += "\n\(m.mode.rawValue) mode:\n"
                let header = ["seconds", "events", "changelog B/event", "state B/event", "disk B/event", "checkpoint CPU ms/1k events", "ids held", "RSS MB"]
                let rows = m.slices.map { s in
                    ["\(s.from)-\(s.to)", "\(s.events)", String(format: "%.0f", s.changelogBytesPerEvent), String(format: "%.0f", s.stateBytesPerEvent),
                     String(format: "%.0f", s.diskBytesPerEvent), String(format: "%.2f", s.checkpointCPUMsPer1k), "\(s.idsHeld)",
                     String(format: "%.0f", s.rssMB)]
                }
                out += BenchCommand.ThroughputReport.render(header: header, rows: rows)
                out += String(format: "last slice / 30-60 s (bytes per event): %.2f; memory per id held: %.0f bytes\n", m.growth, m.bytesPerIdInMemory)
                out += String(format: "restore: %.2f s, %.1f MB read, %d ids and %d open rows rebuilt\n",
                              m.restoreSeconds, Double(m.restoreBytesRead) / 1e6, m.restoredIds, m.restoredOpenRows)
            }
            return out
        }
    }

    func run(modes: [Mode], work: String, progress: BenchProgress) throws -> Report {
        var reports: [ModeReport] = []
        for mode in modes {
            reports.append(try run(mode, work: work + "/\(mode.rawValue)", progress: progress))
        }
        return Report(rate: rate, seconds: seconds, partitions: partitions, accelerate: accelerate, series: series,
                      machine: .current(), modes: reports)
    }

    func configText(brokers: String, dir: String, changelog: Bool) -> String {
        """
        [kafka]
        brokers = "\(brokers)"
        group_id = "state-bench"
        topics = ["usage"]
        alerts_topic = "alerts"
        dead_letter_topic = "dlq"
        \(changelog ? "changelog_topic = \"changelog\"" : "")

        [kafka.properties]
        "session.timeout.ms" = "6000"
        "heartbeat.interval.ms" = "500"

        [rollups]
        dir = "\(dir)/rollups"
        windows = ["1m", "1h", "1d"]
        grace = "5s"
        idle_close = "1m"
        instance = "bench"

        [state]
        dir = "\(dir)/state"
        checkpoint_interval = "5s"

        [dedup]
        window = "1h"

        [http]
        listen = "127.0.0.1:0"

        [[price]]
        model = "m*"
        input = 1.0
        output = 4.0
        """
    }

    func run(_ mode: Mode, work: String, progress: BenchProgress) throws -> ModeReport {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let broker = try BrokerProcess(partitions: partitions, topics: ["usage", "alerts", "dlq", "changelog"], log: work + "/broker.log")
        defer { broker.stop() }
        let config = try BenchTraffic.parse(configText(brokers: broker.bootstrap, dir: work, changelog: mode == .changelog))
        let stop = StopSignal()
        let daemonProgress = DaemonProgress()
        let done = DispatchSemaphore(value: 0)
        let failure = SharedBox<String?>(nil)
        var logger = Logger(label: "tokenmeter") { StderrLogHandler(label: $0) }
        logger.logLevel = .error
        let log = logger
        Thread.detachNewThread {
            do {
                try Daemon(config: config, log: log, stop: stop, progress: daemonProgress).run()
            } catch {
                failure.set("\(error)")
            }
            done.signal()
        }
        var stopped = false
        defer { if !stopped { stop.requestStop(); done.wait() } }

        let producer = try KafkaProducer(properties: [("bootstrap.servers", broker.bootstrap), ("linger.ms", "5")])
        let t0 = monotonicSeconds()
        // Accelerated event time starts in the past and reaches the present at the end: events from the
        // future are refused.
        let eventTime0 = Int64(Date().timeIntervalSince1970 * 1000) - Int64(Double(seconds) * 1000 * (accelerate - 1))
        var produced = 0
        var slices: [Slice] = []
        struct Sample { var events: Int64; var changelog: Int64; var state: Int64; var disk: Int64; var cpu: Double }
        func sample() -> Sample {
            let s = daemonProgress.snapshot
            return Sample(events: s.pipeline.metrics.messages, changelog: s.scaleOut.changelogBytes, state: s.checkpoint.stateBytesWritten,
                          disk: Self.processWriteBytes(), cpu: s.checkpoint.cpuSeconds)
        }
        var last = sample()
        var nextSlice = sliceSeconds
        while true {
            if let e = failure.value { throw BenchError("daemon failed: \(e)") }
            let elapsed = monotonicSeconds() - t0
            let due = min(Int(elapsed * Double(rate)), rate * seconds)
            while produced < due {
                let ms = eventTime0 + Int64(Double(produced) / Double(rate) * 1000 * accelerate)
                var line = event(produced, timeMs: ms)
                var key = String(produced)
                try key.withUTF8 { k in
                    try line.withUTF8 { v in
                        try producer.produce(topic: "usage", key: UnsafeRawBufferPointer(k), value: UnsafeRawBufferPointer(v), token: UInt64(produced))
                    }
                }
                produced += 1
            }
            _ = producer.poll(timeoutMs: 0)
            if Int(elapsed) >= nextSlice {
                let now = sample()
                let n = max(now.events - last.events, 1)
                slices.append(Slice(from: nextSlice - sliceSeconds, to: nextSlice, events: now.events - last.events,
                                    changelogBytesPerEvent: Double(now.changelog - last.changelog) / Double(n),
                                    stateBytesPerEvent: Double(now.state - last.state) / Double(n),
                                    diskBytesPerEvent: Double(now.disk - last.disk) / Double(n),
                                    checkpointCPUMsPer1k: (now.cpu - last.cpu) * 1000 / Double(n) * 1000,
                                    idsHeld: Int64(daemonProgress.snapshot.memory.dedupIds), rssMB: Self.residentMB()))
                progress.line(String(format: "  %@ %3d-%3d s: %lld events, changelog %.0f B/event, state %.0f B/event, disk %.0f B/event",
                                     mode.rawValue, nextSlice - sliceSeconds, nextSlice, now.events - last.events,
                                     slices.last!.changelogBytesPerEvent, slices.last!.stateBytesPerEvent, slices.last!.diskBytesPerEvent))
                last = now
                nextSlice += sliceSeconds
            }
            if elapsed >= Double(seconds) { break }
            usleep(2_000)
        }
        while producer.outstanding > 0 { _ = producer.flush(timeoutMs: 500) }
        stop.requestStop()
        done.wait()
        stopped = true
        if let e = failure.value { throw BenchError("daemon failed: \(e)") }

        progress.update("  \(mode.rawValue) restore")
        let restore: StateRestoreProbe.Result
        switch mode {
        case .local: restore = try StateRestoreProbe.local(config)
        case .changelog:
            restore = try StateRestoreProbe.changelog(config, properties: [("bootstrap.servers", broker.bootstrap)],
                                                     partitions: (0..<Int32(partitions)).map { $0 })
        }
        progress.end()
        func perEvent(_ s: Slice) -> Double { mode == .changelog ? s.changelogBytesPerEvent : s.stateBytesPerEvent }
        let early = slices.first { $0.from == 30 }.map(perEvent) ?? slices.first.map(perEvent) ?? 0
        let growth = early > 0 ? (slices.last.map(perEvent) ?? 0) / early : 0
        var perId = 0.0
        if let a = slices.first, let b = slices.last, b.idsHeld > a.idsHeld {
            perId = (b.rssMB - a.rssMB) * 1_048_576 / Double(b.idsHeld - a.idsHeld)
        }
        return ModeReport(mode: mode, slices: slices, restoreSeconds: restore.seconds, restoreBytesRead: restore.bytesRead,
                          restoredIds: restore.ids, restoredOpenRows: restore.openRows, growth: growth, bytesPerIdInMemory: perId)
    }

    /// A canonical usage event with a unique id: `series` (workflow, owner, model) keys in turn.
    func event(_ n: Int, timeMs: Int64) -> String {
        let k = n % series
        return #"{"id":"state-\#(n)","timestamp":\#(timeMs),"workflow":"wf-\#(k)","owner":"team-\#(k % 20)","model":"m\#(k % 3)","provider":"p","input_tokens":\#(100 + n % 50),"output_tokens":\#(20 + n % 7)}"#
    }

    /// Resident memory now (/proc/self/statm, pages).
    static func residentMB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
    }

    /// All bytes this process caused to be written to storage so far (/proc/self/io `write_bytes`).
    static func processWriteBytes() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("write_bytes:") {
            return Int64(line.dropFirst("write_bytes:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return 0
    }
}
