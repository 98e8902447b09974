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
        s.checkpoint.cpuSeconds = 0.25
        s.checkpoint.stateBytesWritten = 45_678
        s.checkpoint.idSegments = 17
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
        var sp = SpendSeriesSnapshot()
        sp.labelNames = ["owner", "tag_team"]
        sp.labels = [["__other__", "__other__"], ["team-a", ""], ["we\"ird\\\n", "x"]]
        func counters(_ base: Int64, cost: String) -> SpendSeriesCounters {
            var c = SpendSeriesCounters()
            c.requests = base; c.errors = base + 1; c.input = base + 2; c.cacheRead = base + 3; c.cacheWrite = base + 4
            c.output = base + 5; c.reasoning = base + 6; c.unpricedRequests = base + 7; c.outcomes = base + 8
            c.cost = Money.parse(cost)!
            return c
        }
        sp.counters = [counters(100, cost: "0.5"), counters(200, cost: "1.000000000000001"), counters(300, cost: "12")]
        sp.overflowEvents = 35
        sp.maxSeries = 2
        sp.seriesCount = 2
        s.spend.series = sp
        s.spend.budgets = [
            BudgetGauge(rule: "team-a daily", scope: "owner=team-a", period: "day", amount: Money(dollars: 100),
                        spent: Money.parse("80.5")!, projected: Money(dollars: 120), periodEnd: 1_700_006_400_000),
            BudgetGauge(rule: "all monthly", scope: "all", period: "month", amount: Money(dollars: 1000),
                        spent: .zero, projected: nil, periodEnd: 1_701_388_800_000),
        ]
        s.spend.outcomeLimits = [
            OutcomeLimitGauge(rule: "per ticket", scope: "workflow=support", outcome: "ticket_resolved", period: "day",
                              maxCostPerOutcome: Money.parse("0.5")!, spent: Money(dollars: 12), outcomes: 30,
                              periodEnd: 1_700_006_400_000),
        ]
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
            "tokenmeter_checkpoint_cpu_seconds_total 0.25",
            "tokenmeter_state_bytes_written_total 45678",
            "tokenmeter_dedup_segments 17",
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
        // Spend series: the overflow series first, label values escaped (quote, backslash, newline).
        let series = [("owner=\"__other__\",tag_team=\"__other__\"", 100, "0.5"), ("owner=\"team-a\",tag_team=\"\"", 200, "1.000000000000001"),
                      ("owner=\"we\\\"ird\\\\\\n\",tag_team=\"x\"", 300, "12")]
        for (l, _, cost) in series { lines.append("tokenmeter_spend_cost_usd_total{\(l)} \(cost)") }
        for (l, b, _) in series { lines.append("tokenmeter_spend_requests_total{\(l)} \(b)") }
        for (l, b, _) in series { lines.append("tokenmeter_spend_errors_total{\(l)} \(b + 1)") }
        for (l, b, _) in series {
            for (i, kind) in ["input", "cache_read", "cache_write", "output", "reasoning"].enumerated() {
                lines.append("tokenmeter_spend_tokens_total{\(l),kind=\"\(kind)\"} \(b + 2 + i)")
            }
        }
        for (l, b, _) in series { lines.append("tokenmeter_spend_unpriced_requests_total{\(l)} \(b + 7)") }
        for (l, b, _) in series { lines.append("tokenmeter_spend_outcomes_total{\(l)} \(b + 8)") }
        lines += ["tokenmeter_spend_series 2", "tokenmeter_spend_series_limit 2", "tokenmeter_spend_overflow_events_total 35"]
        let daily = "{rule=\"team-a daily\",scope=\"owner=team-a\",period=\"day\"}"
        let monthly = "{rule=\"all monthly\",scope=\"all\",period=\"month\"}"
        lines += [
            "tokenmeter_budget_amount_usd\(daily) 100", "tokenmeter_budget_amount_usd\(monthly) 1000",
            "tokenmeter_budget_spent_usd\(daily) 80.5", "tokenmeter_budget_spent_usd\(monthly) 0",
            "tokenmeter_budget_used_ratio\(daily) 0.805", "tokenmeter_budget_used_ratio\(monthly) 0.0",
            "tokenmeter_budget_projected_usd\(daily) 120",   // none for monthly: no projection yet
            "tokenmeter_budget_period_end_timestamp_seconds\(daily) 1700006400",
            "tokenmeter_budget_period_end_timestamp_seconds\(monthly) 1701388800",
        ]
        let ticket = "{rule=\"per ticket\",scope=\"workflow=support\",outcome=\"ticket_resolved\",period=\"day\"}"
        lines += [
            "tokenmeter_outcome_limit_max_cost_usd\(ticket) 0.5",
            "tokenmeter_outcome_limit_spent_usd\(ticket) 12",
            "tokenmeter_outcome_limit_outcomes\(ticket) 30",
            "tokenmeter_outcome_limit_cost_per_outcome_usd\(ticket) 0.4",   // 12 / 30
            "tokenmeter_outcome_limit_used_ratio\(ticket) 0.8",             // 12 / (0.5 x 30)
            "tokenmeter_outcome_limit_period_end_timestamp_seconds\(ticket) 1700006400",
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
        #expect(families.count == 70)
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
