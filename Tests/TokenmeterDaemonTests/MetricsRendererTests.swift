import Foundation
import Testing
import TokenmeterCore
@testable import TokenmeterDaemon

/// `/metrics` from a snapshot in which every field holds its own value: each value must reach its line, so
/// a field the renderer stops reading (or reads in place of another) fails here, and the whole text is
/// compared with a golden file so that names, label order and HELP/TYPE lines stay as scrapers know them.
@Suite("Metrics rendering")
struct MetricsRendererTests {
    static let startMs: Int64 = 1_700_000_000_125
    static let nowMs: Int64 = 1_700_000_065_557

    /// Distinct, non-default values; the histograms observe powers of two so their sums print exactly.
    static func populated() -> DaemonProgress.Snapshot {
        var s = DaemonProgress.Snapshot()
        var m = PipelineMetrics()
        m.messages = 9_001
        m.usageEvents = 7_002
        m.outcomeEvents = 503
        m.duplicates = 404
        m.lateEvents = 35
        for (i, code) in RejectReason.Code.allCases.enumerated() { m.rejected[code] = Int64(60 + i) }
        m.windowsClosed = 306
        m.filesWritten = 307
        m.unpricedRequests = 308
        m.unrecognizedUsage = 309
        m.overflowEvents = 310
        m.nameCompactions = 311
        s.pipeline.metrics = m
        s.consumer.assignedPartitions = 12
        s.pipeline.openRows = 4_321
        s.memory.internedNames = 765
        s.memory.internedBytes = 98_765
        s.memory.stateBytes = 1_234_567
        s.memory.paused = true
        s.pipeline.pendingFiles = 13
        s.checkpoint.written = 14
        s.consumer.joined = true
        s.readiness.ready = true
        s.readiness.notReadyReason = nil
        s.readiness.stopping = false
        s.readiness.loopHeartbeatMono = 777_000
        s.pipeline.openWindows = 15
        s.consumer.rebalances = 16
        s.consumer.lag = [PartitionLag(topic: "llm-usage", partition: 0, lag: 17),
                         PartitionLag(topic: "llm-usage", partition: 3, lag: 18)]
        s.checkpoint.rollupFlushSeconds.observe(0.00390625)
        s.checkpoint.rollupFlushSeconds.observe(8)
        s.checkpoint.lastWall = startMs + 5_125
        s.checkpoint.lastSeconds = 0.5
        s.checkpoint.failures = 19
        s.disk.rollupFailing = true
        s.disk.rollupFailures = 20
        s.disk.stateFailing = true
        s.disk.stateFailures = 21
        s.scaleOut.changelogRecords = 22
        s.scaleOut.changelogBytes = 23_456
        s.scaleOut.alertShards = 24
        s.scaleOut.spendApplied = 25
        s.scaleOut.spendSkipped = 26
        s.reload.succeeded = false
        s.reload.wall = 1_700_000_030_250
        s.reload.count = 27
        s.pipeline.eventsPerSecond = 2_048.5
        s.alerts.published = 28
        s.alerts.failed = 29
        s.alerts.rejected = 30
        s.deadLetters.spilled = 31
        s.deadLetters.dropped = 32
        s.deadLetters.bytes = 33_333
        s.alerts.outboxDepth = 34
        s.alerts.latencySeconds.observe(0.0078125)
        s.alerts.latencySeconds.observe(0.75)
        s.alerts.latencySeconds.observe(16)
        s.alerts.last = "budget team-a daily: 80% of $100"
        return s
    }

    static func render(_ s: DaemonProgress.Snapshot = populated()) -> String {
        MetricsRenderer.render(s, startTimeMs: startMs, nowMs: nowMs)
    }

    /// The sample lines (not HELP/TYPE) the populated snapshot must give, written out by hand.
    static var expectedSamples: [String] {
        var lines = [
            "tokenmeter_build_info{version=\"\(BuildInfo.version)\",commit=\"\(BuildInfo.gitCommit)\"} 1",
            "tokenmeter_process_start_time_seconds 1700000000.125",
            "tokenmeter_ready 1",
            "tokenmeter_messages_consumed_total 9001",
            "tokenmeter_events_processed_total{result=\"counted\"} 7470",   // 7002 usage + 503 outcomes - 35 late
            "tokenmeter_events_processed_total{result=\"late\"} 35",
            "tokenmeter_events_processed_total{result=\"duplicate\"} 404",
            "tokenmeter_events_processed_total{result=\"rejected\"} \(rejectedTotal)",
            "tokenmeter_events_counted_total{kind=\"usage\"} 7002",
            "tokenmeter_events_counted_total{kind=\"outcome\"} 503",
        ]
        for (i, code) in RejectReason.Code.allCases.enumerated() {
            lines.append("tokenmeter_dead_letters_total{reason=\"\(code.rawValue)\"} \(60 + i)")
        }
        lines += [
            "tokenmeter_dead_letters_spilled_total 31",
            "tokenmeter_dead_letters_spill_dropped_total 32",
            "tokenmeter_dead_letter_spill_bytes 33333",
            "tokenmeter_unpriced_requests_total 308",
            "tokenmeter_unrecognized_usage_total 309",
            "tokenmeter_kafka_consumer_lag_messages{topic=\"llm-usage\",partition=\"0\"} 17",
            "tokenmeter_kafka_consumer_lag_messages{topic=\"llm-usage\",partition=\"3\"} 18",
            "tokenmeter_kafka_assigned_partitions 12",
            "tokenmeter_kafka_rebalances_total 16",
            "tokenmeter_open_windows 15",
            "tokenmeter_open_rows 4321",
            "tokenmeter_interned_names 765",
            "tokenmeter_interned_bytes 98765",
            "tokenmeter_name_table_rebuilds_total 311",
            "tokenmeter_state_memory_bytes 1234567",
            "tokenmeter_memory_paused 1",
            "tokenmeter_windows_closed_total 306",
            "tokenmeter_rollup_files_written_total 307",
            "tokenmeter_rollup_pending_files 13",
        ]
        // Flushes of 1/256 s and 8 s.
        let flush = [("0.001", 0), ("0.005", 1), ("0.01", 1), ("0.025", 1), ("0.05", 1), ("0.1", 1), ("0.25", 1),
                     ("0.5", 1), ("1.0", 1), ("2.5", 1), ("5.0", 1), ("10.0", 2), ("+Inf", 2)]
        lines += flush.map { "tokenmeter_rollup_flush_duration_seconds_bucket{le=\"\($0.0)\"} \($0.1)" }
        lines += ["tokenmeter_rollup_flush_duration_seconds_sum 8.00390625", "tokenmeter_rollup_flush_duration_seconds_count 2"]
        // Alerts acknowledged after 1/128 s, 0.75 s and 16 s.
        let latency = [("0.001", 0), ("0.0025", 0), ("0.005", 0), ("0.01", 1), ("0.025", 1), ("0.05", 1), ("0.1", 1),
                       ("0.25", 1), ("0.5", 1), ("1.0", 2), ("5.0", 2), ("30.0", 3), ("+Inf", 3)]
        lines += latency.map { "tokenmeter_alert_latency_seconds_bucket{le=\"\($0.0)\"} \($0.1)" }
        lines += ["tokenmeter_alert_latency_seconds_sum 16.7578125", "tokenmeter_alert_latency_seconds_count 3"]
        lines += [
            "tokenmeter_checkpoint_age_seconds 60.307",   // now - (start + 5.125 s)
            "tokenmeter_checkpoint_duration_seconds 0.5",
            "tokenmeter_checkpoints_total 14",
            "tokenmeter_checkpoint_failures_total 19",
            "tokenmeter_rollup_write_failing 1",
            "tokenmeter_rollup_write_failures_total 20",
            "tokenmeter_state_write_failing 1",
            "tokenmeter_state_write_failures_total 21",
            "tokenmeter_changelog_records_total 22",
            "tokenmeter_changelog_bytes_total 23456",
            "tokenmeter_alert_shards 24",
            "tokenmeter_spend_ranges_applied_total 25",
            "tokenmeter_spend_ranges_skipped_total 26",
            "tokenmeter_alerts_published_total 28",
            "tokenmeter_alerts_failed_total 29",
            "tokenmeter_alerts_rejected_total 30",
            "tokenmeter_alert_outbox_depth 34",
            "tokenmeter_config_reload_success 0",
            "tokenmeter_config_reload_timestamp_seconds 1700000030.250",
            "tokenmeter_config_reloads_total 27",
        ]
        return lines
    }

    static var rejectedTotal: Int { RejectReason.Code.allCases.indices.reduce(0) { $0 + 60 + $1 } }

    @Test func everyFieldReachesItsLine() {
        let text = Self.render()
        let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        let missing = Self.expectedSamples.filter { !samples.contains($0) }
        #expect(missing.isEmpty, "missing or changed:\n\(missing.joined(separator: "\n"))")
        // Nothing more, nothing twice: a new metric is added here on purpose, not by accident.
        let unexpected = samples.filter { !Self.expectedSamples.contains($0) }
        #expect(unexpected.isEmpty, "not expected:\n\(unexpected.joined(separator: "\n"))")
        #expect(samples.count == Self.expectedSamples.count)
    }

    /// Each family once, in the order `# HELP`, `# TYPE`, then its samples.
    @Test func everyFamilyHasHelpThenTypeThenSamples() {
        let lines = Self.render().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.last == "")
        var families: [String] = []
        var current: String?
        for (i, line) in lines.dropLast().enumerated() {
            if line.hasPrefix("# HELP ") {
                let name = String(line.dropFirst(7).prefix { $0 != " " })
                #expect(!families.contains(name), "\(name) twice")
                families.append(name)
                #expect(lines[i + 1].hasPrefix("# TYPE \(name) "), "\(name): TYPE does not follow HELP")
                current = name
            } else if !line.hasPrefix("# TYPE ") {
                guard let current else { Issue.record("sample before any HELP: \(line)"); continue }
                #expect(line.hasPrefix(current), "\(line) is not a sample of \(current)")
            }
        }
        #expect(families.count == 47)
    }

    /// Flags read as gauges of 0 and 1; not ready while stopping.
    @Test func flagsFollowTheirFields() {
        var s = Self.populated()
        #expect(Self.render(s).contains("\ntokenmeter_ready 1\n"))
        s.readiness.stopping = true
        #expect(Self.render(s).contains("\ntokenmeter_ready 0\n"))
        s.memory.paused = false
        s.disk.rollupFailing = false
        s.disk.stateFailing = false
        s.reload.succeeded = true
        let text = Self.render(s)
        for line in ["tokenmeter_memory_paused 0", "tokenmeter_rollup_write_failing 0", "tokenmeter_state_write_failing 0",
                     "tokenmeter_config_reload_success 1"] {
            #expect(text.contains("\n\(line)\n"), "\(line)")
        }
    }

    /// The whole text, byte for byte, with the build's version and commit replaced (they vary by build).
    @Test func theTextIsUnchanged() throws {
        let text = Self.render()
            .replacingOccurrences(of: "version=\"\(BuildInfo.version)\",commit=\"\(BuildInfo.gitCommit)\"",
                                  with: "version=\"VERSION\",commit=\"COMMIT\"")
        try MetricsGolden.check(text, "metrics.txt")
    }

    /// The health endpoints read the same snapshot: ready, the reason when not, stopping, a stalled loop.
    @Test func healthEndpointsAnswerFromTheSnapshot() {
        let clock = ManualClock()
        var s = Self.populated()
        #expect(Daemon.serve("/-/ready", s, startWall: Self.startMs, clock: clock).status == 200)
        s.readiness.ready = false
        s.readiness.notReadyReason = "no broker reachable for 31 s"
        let notReady = Daemon.serve("/-/ready", s, startWall: Self.startMs, clock: clock)
        #expect(notReady.status == 503)
        #expect(notReady.body == "not ready: no broker reachable for 31 s\n")
        s.readiness.stopping = true
        #expect(Daemon.serve("/-/ready", s, startWall: Self.startMs, clock: clock).body == "stopping\n")
        s.readiness.loopHeartbeatMono = clock.monotonicMillis()
        clock.advance(ms: 30_000)
        #expect(Daemon.serve("/-/healthy", s, startWall: Self.startMs, clock: clock).status == 200)
        clock.advance(ms: 1)
        #expect(Daemon.serve("/-/healthy", s, startWall: Self.startMs, clock: clock).status == 503)
        s.readiness.loopHeartbeatMono = 0   // restoring: the loop has not started
        #expect(Daemon.serve("/-/healthy", s, startWall: Self.startMs, clock: clock).status == 200)
        let metrics = Daemon.serve("/metrics", Self.populated(), startWall: Self.startMs, clock: clock)
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("\ntokenmeter_alert_outbox_depth 34\n"))
    }
}

/// The expected `/metrics` text in `Golden/`, found through `#filePath`. After an intended change of a metric:
///
///     TOKENMETER_UPDATE_GOLDEN=1 swift test --filter MetricsRendererTests
///
/// then review `git diff Tests/TokenmeterDaemonTests/Golden/` before committing.
enum MetricsGolden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    static func check(_ actual: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = directory.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["TOKENMETER_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data(actual.utf8).write(to: url)
            return
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            Issue.record("missing golden file \(url.path); create it with TOKENMETER_UPDATE_GOLDEN=1", sourceLocation: sourceLocation)
            return
        }
        let expected = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let got = actual.split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(expected.count, got.count) {
            let e = i < expected.count ? String(expected[i]) : "<end>", g = i < got.count ? String(got[i]) : "<end>"
            if e != g {
                Issue.record("\(name) line \(i + 1): expected \(e.debugDescription), got \(g.debugDescription)", sourceLocation: sourceLocation)
                return
            }
        }
    }
}
