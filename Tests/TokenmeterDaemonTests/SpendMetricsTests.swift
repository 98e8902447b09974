import Foundation
import Testing
import TokenmeterCore
@testable import TokenmeterDaemon

/// The spend metrics read through /metrics from a real daemon in-process: the counters add up to the
/// rollup files, the series cap sends the rest to `__other__` without losing money, and the budget gauges
/// show the alert engine's own state.
@Suite("Spend metrics")
struct SpendMetricsTests {
    /// `count` usage events per owner (each written into the JSON as it is) on partition 0, a second apart: input 1,000 and output 500 tokens of
    /// m1 (1 USD and 2 USD per million: 0.002 USD each), every third one an error.
    static func produce(_ h: DaemonHarness, owners: [String], count: Int, workflow: String = "wf") -> Int {
        var n = 0
        for (o, owner) in owners.enumerated() {
            for i in 0..<count {
                let ts = h.firstEventMs + Int64(n) * 1000
                let error = i % 3 == 0 ? #","status":"error""# : ""
                let json = #"{"id":"s-\#(o)-\#(i)","timestamp":\#(ts),"workflow":"\#(workflow)","owner":"\#(owner)","model":"m1","provider":"p","input_tokens":1000,"output_tokens":500\#(error)}"#
                h.broker.append(h.topic, partition: 0, value: Array(json.utf8), timestampMs: ts)
                n += 1
            }
        }
        return n
    }

    /// The samples of one family as (labels, value), from the rendered text.
    static func samples(_ text: String, _ family: String) -> [(labels: String, value: String)] {
        text.split(separator: "\n").compactMap { line -> (String, String)? in
            guard line.hasPrefix(family + "{") || line.hasPrefix(family + " ") else { return nil }
            let parts = line.split(separator: " ")
            let head = parts.dropLast().joined(separator: " ")
            return (String(head.dropFirst(family.count)), String(parts.last!))
        }
    }

    /// A decimal USD value in nano-dollars, exactly (the renderer prints at most 15 decimals).
    static func nanos(_ text: String) -> Int64 {
        let parts = text.split(separator: ".")
        let frac = parts.count > 1 ? String((String(parts[1]) + "000000000").prefix(9)) : "0"
        return Int64(parts[0])! * 1_000_000_000 + Int64(frac)!
    }

    static func metrics(_ d: Daemon, _ clock: ManualClock) -> String {
        d.publishProgress()
        return MetricsRenderer.render(d.progress.snapshot, startTimeMs: 0, nowMs: clock.now())
    }

    @Test func countersAddUpToTheRollupFiles() throws {
        let h = DaemonHarness(partitions: [0], extraConfig: """
        [metrics]
        dimensions = ["owner", "workflow"]
        """)
        let d = try h.startDaemon()
        h.assignAll()
        // The third owner as JSON text: `te"am\c` once decoded.
        let owners = ["team-a", "team-b", #"te\"am\\c"#]
        let n = Self.produce(h, owners: owners, count: 9)
        try h.drainAndStop()
        let text = Self.metrics(d, h.clock)
        let rollups = h.totals(window: "1h")
        #expect(rollups.requests == Int64(n))

        let cost = Self.samples(text, "tokenmeter_spend_cost_usd_total")
        #expect(cost.count == 3)
        #expect(cost.map { Self.nanos($0.value) }.reduce(0, +) == rollups.costNanos)
        #expect(cost.contains { $0.labels == #"{owner="team-a",workflow="wf"}"# && Self.nanos($0.value) == 9 * 2_000_000 })
        #expect(cost.contains { $0.labels == #"{owner="te\"am\\c",workflow="wf"}"# })
        let requests = Self.samples(text, "tokenmeter_spend_requests_total")
        #expect(requests.map { Int64($0.value)! }.reduce(0, +) == rollups.requests)
        #expect(Self.samples(text, "tokenmeter_spend_errors_total").allSatisfy { $0.value == "3" })
        let tokens = Self.samples(text, "tokenmeter_spend_tokens_total")
        #expect(tokens.filter { $0.labels.hasSuffix(#"kind="input"}"#) }.map { Int64($0.value)! }.reduce(0, +) == rollups.input)
        #expect(tokens.filter { $0.labels.hasSuffix(#"kind="output"}"#) }.map { Int64($0.value)! }.reduce(0, +) == rollups.output)
        #expect(Self.samples(text, "tokenmeter_spend_series").first?.value == "3")
        #expect(Self.samples(text, "tokenmeter_spend_overflow_events_total").first?.value == "0")
    }

    @Test func pastTheCapTheRestGoesToOtherAndTheTotalStays() throws {
        let h = DaemonHarness(partitions: [0], extraConfig: """
        [metrics]
        max_series = 4
        """)
        let d = try h.startDaemon()
        h.assignAll()
        let owners = (0..<11).map { "owner-\($0)" }
        let n = Self.produce(h, owners: owners, count: 2)
        try h.drainAndStop()
        let text = Self.metrics(d, h.clock)
        let cost = Self.samples(text, "tokenmeter_spend_cost_usd_total")
        #expect(cost.count == 4 + 1)
        #expect(cost.first?.labels == #"{owner="__other__"}"#)
        #expect(cost.map { Self.nanos($0.value) }.reduce(0, +) == h.totals(window: "1h").costNanos)
        #expect(Self.samples(text, "tokenmeter_spend_requests_total").map { Int64($0.value)! }.reduce(0, +) == Int64(n))
        // The first four owners seen have their series; the other seven owners' events went to __other__.
        #expect(Self.samples(text, "tokenmeter_spend_overflow_events_total").first?.value == "\(7 * 2)")
        #expect(Self.samples(text, "tokenmeter_spend_series").first?.value == "4")
        #expect(Self.samples(text, "tokenmeter_spend_series_limit").first?.value == "4")
    }

    @Test func budgetGaugesShowTheAlertEngineState() throws {
        let h = DaemonHarness(partitions: [0], extraConfig: """
        [[budget]]
        name = "team-a daily"
        owner = "team-a"
        period = "day"
        amount_usd = 0.1
        thresholds = [50, 100]
        [[outcome_limit]]
        name = "per ticket"
        outcome = "ticket"
        max_cost_usd = 0.01
        period = "day"
        """)
        let d = try h.startDaemon()
        h.assignAll()
        let n = Self.produce(h, owners: ["team-a", "team-b"], count: 5)
        let ts = h.firstEventMs + Int64(n) * 1000
        let outcome = #"{"id":"o-1","type":"outcome","timestamp":\#(ts),"workflow":"wf","owner":"team-a","outcome":"ticket","count":4}"#
        h.broker.append(h.topic, partition: 0, value: Array(outcome.utf8), timestampMs: ts)
        try h.consumeAll()
        let text = Self.metrics(d, h.clock)
        let engineSpent = try #require(d.pipeline.alerts.budgetSpent(rule: "team-a daily", at: ts))
        #expect(engineSpent == Money(nanos: 5 * 2_000_000))
        let labels = #"{rule="team-a daily",scope="owner=team-a",period="day"}"#
        #expect(Self.samples(text, "tokenmeter_budget_spent_usd").map(\.labels) == [labels])
        #expect(Self.nanos(Self.samples(text, "tokenmeter_budget_spent_usd")[0].value) == Int64(engineSpent.femtos / 1_000_000))
        #expect(Self.samples(text, "tokenmeter_budget_amount_usd")[0].value == "0.1")
        #expect(Self.samples(text, "tokenmeter_budget_used_ratio")[0].value == "0.1")
        let dayEnd = (ts / 86_400_000 + 1) * 86_400_000 / 1000
        #expect(Self.samples(text, "tokenmeter_budget_period_end_timestamp_seconds")[0].value == "\(dayEnd)")
        let limit = #"{rule="per ticket",scope="all",outcome="ticket",period="day"}"#
        #expect(Self.samples(text, "tokenmeter_outcome_limit_outcomes").map { $0.labels + " " + $0.value } == [limit + " 4"])
        // Both owners' spend (0.02 USD) over 4 tickets.
        #expect(Self.samples(text, "tokenmeter_outcome_limit_spent_usd")[0].value == "0.02")
        #expect(Self.samples(text, "tokenmeter_outcome_limit_cost_per_outcome_usd")[0].value == "0.005")
        #expect(Self.samples(text, "tokenmeter_spend_outcomes_total").map(\.value) == ["4", "0"])
    }

    /// What docs/metrics.md promises across a kill -9: the spend counters start again at 0 in the new
    /// process (Prometheus sees a reset) and count only what that process consumes, while the budget gauge
    /// comes back with the checkpoint's totals.
    @Test func afterACrashCountersStartFromZeroAndBudgetsFromTheCheckpoint() throws {
        let h = DaemonHarness(partitions: [0], extraConfig: """
        [[budget]]
        name = "all daily"
        period = "day"
        amount_usd = 10
        thresholds = [100]
        """)
        var d = try h.startDaemon()
        h.assignAll()
        _ = Self.produce(h, owners: ["team-a"], count: 6)
        try h.consumeAll()
        let checkpoints = d.progress.snapshot.checkpoint.written
        try h.iterate(until: { d.progress.snapshot.checkpoint.written > checkpoints + 1 })
        let before = Self.metrics(d, h.clock)
        #expect(Self.samples(before, "tokenmeter_spend_requests_total").map(\.value) == ["6"])
        let spentBefore = Self.samples(before, "tokenmeter_budget_spent_usd").map(\.value)
        #expect(spentBefore == ["0.012"])

        h.crash()
        d = try h.startDaemon()
        h.assignAll()
        try h.consumeAll()
        let restarted = Self.metrics(d, h.clock)
        #expect(Self.samples(restarted, "tokenmeter_spend_requests_total").isEmpty)
        #expect(Self.samples(restarted, "tokenmeter_budget_spent_usd").map(\.value) == spentBefore)

        let ts = h.firstEventMs + 10_000
        let json = #"{"id":"after","timestamp":\#(ts),"workflow":"wf","owner":"team-a","model":"m1","input_tokens":1000,"output_tokens":500}"#
        h.broker.append(h.topic, partition: 0, value: Array(json.utf8), timestampMs: ts)
        try h.consumeAll()
        let after = Self.metrics(d, h.clock)
        #expect(Self.samples(after, "tokenmeter_spend_requests_total").map(\.value) == ["1"])
        #expect(Self.samples(after, "tokenmeter_spend_cost_usd_total").map(\.value) == ["0.002"])
        #expect(Self.samples(after, "tokenmeter_budget_spent_usd").map(\.value) == ["0.014"])
        try h.drainAndStop()
    }

    /// The spend table is built once at start: a reload that changes its keys says they need a restart.
    @Test func metricsKeysTakeEffectAtTheNextRestart() {
        let old = TokenmeterConfig()
        var new = old
        new.metrics.dimensions = [.owner, .workflow]
        new.metrics.maxSeries = 50
        #expect(ConfigReload.restartKeys(old: old, new: new) == ["metrics.dimensions", "metrics.max_series"])
    }
}
