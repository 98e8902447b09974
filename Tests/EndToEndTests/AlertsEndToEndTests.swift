import Foundation
import Testing
import TokenmeterCore
import TokenmeterKafka

/// Guardrail alerts end to end with real processes (issue 4): `tokenmeter broker` + `tokenmeter run`, a
/// hand-written event file whose alerts are known in advance (amounts via `cost_usd`, so every number is
/// exact), a consumer of the alerts topic, an outage of the broker holding the alerts topic while more
/// crossings happen, a restart of the daemon during that outage (the held alerts survive in the outbox),
/// and a restart after it: no alert is lost and none is published twice.
///
/// How the outage is made deterministic: the broker process runs a cluster of TWO mock brokers. Broker 1
/// leads `llm-usage` (and the DLQ) and coordinates the daemon's group; broker 2 leads `llm-alerts`. With
/// broker 2 down (`down 2`, librdkafka's `rd_kafka_mock_broker_set_down`) the daemon still fetches and
/// commits the phase-2 events from broker 1, so the crossings they make are computed WHILE the alerts
/// broker is down: the test waits for their offsets to be committed (the daemon checkpoints only after the
/// alerts are in the outbox) and sees them held in `<state.dir>/outbox`. With a single broker, a crossing
/// during an outage could only come from messages librdkafka happened to prefetch before `down`, a race.
@Suite(.serialized) struct AlertsEndToEndTests {
    static let group = "alerts-e2e"

    // MARK: The events

    /// One canonical usage event; `cost` nil = no `cost_usd` (priced from the table, or unpriced).
    static func usage(_ id: String, _ time: String, workflow: String, owner: String, model: String, cost: String?) -> String {
        var s = #"{"id":"\#(id)","timestamp":"\#(time)","workflow":"\#(workflow)","owner":"\#(owner)","model":"\#(model)","#
            + #""input_tokens":1000,"output_tokens":100"#
        if let cost { s += #","cost_usd":\#(cost)"# }
        return s + "}"
    }

    static func finance(_ id: String, _ time: String, _ cost: String, workflow: String = "invoice-extraction") -> String {
        usage(id, time, workflow: workflow, owner: "finance-ops", model: "gpt-4o", cost: cost)
    }

    static func triage(_ id: String, _ time: String, _ cost: String) -> String {
        usage(id, time, workflow: "support-triage", owner: "support", model: "claude-sonnet-4-5", cost: cost)
    }

    static func mystery(_ id: String, _ time: String) -> String {
        usage(id, time, workflow: "research-agent", owner: "labs", model: "mystery-llm-9", cost: nil)
    }

    /// Phase 1 (everything up): the budget crosses 50%, then one event crosses 80% and 100% at once; the
    /// spike workflow spends $2 in each of four 1-minute windows (baseline $2) and then $7 in the fifth
    /// (over 3 x $2 and $1); an unpriced model is called. The finance events all fall in one minute, so
    /// their workflows never get a spike baseline (no spike alert from them).
    static let phase1 = [
        finance("f-01", "2026-11-02T09:00:01Z", "30.00"),
        finance("f-02", "2026-11-02T09:00:02Z", "25.00"),                  // 55: 50%
        finance("f-03", "2026-11-02T09:00:03Z", "10.00", workflow: "contract-review"),
        finance("f-04", "2026-11-02T09:00:04Z", "40.00"),                  // 105: 80% and 100%
        triage("s-01", "2026-11-02T10:00:10Z", "2.00"),
        triage("s-02", "2026-11-02T10:01:10Z", "2.00"),
        triage("s-03", "2026-11-02T10:02:10Z", "2.00"),
        triage("s-04", "2026-11-02T10:03:10Z", "2.00"),
        triage("s-05", "2026-11-02T10:04:10Z", "2.00"),                    // window $2: no spike
        triage("s-06", "2026-11-02T10:04:20Z", "5.00"),                    // window $7 > 3 x $2: spike
        mystery("u-01", "2026-11-02T11:00:00Z"),
    ]

    /// Phase 2 (alerts broker down): late finance events (their minute is long closed; they still count)
    /// cross 120% and exactly 150%; the unpriced model is called again the next UTC day (a new day: a
    /// new alert).
    static let phase2 = [
        finance("f-05", "2026-11-02T09:00:10Z", "10.00"),                  // 115
        finance("f-06", "2026-11-02T09:00:11Z", "7.50"),                   // 122.50: 120%
        finance("f-07", "2026-11-02T09:00:12Z", "27.50"),                  // 150.00: 150%
        mystery("u-02", "2026-11-03T08:00:00Z"),
    ]

    /// Phase 3 (after the restart): more spend and another call to the unpriced model that day, neither
    /// crossing anything new: proof that the restarted daemon consumes and still publishes nothing twice.
    static let phase3 = [
        finance("f-08", "2026-11-03T08:01:00Z", "1.00", workflow: "invoice-archive"),   // 151: nothing new
        mystery("u-03", "2026-11-03T08:02:00Z"),
    ]

    static let rules = """

        [[budget]]
        name = "finance-monthly"
        owner = "finance-ops"
        period = "month"
        amount_usd = 100
        thresholds = [50, 80, 100, 120, 150]

        [[spike]]
        name = "workflow-spike"
        by = "workflow"
        window = "1m"
        factor = 3.0
        min_usd = 1.0
        """

    // MARK: The expected alerts

    struct Expected {
        var type: String
        var rule: String
        var key: String
        var thresholdPct: String?       // JSON text
        var budget: String?             // dollars
        var spent: String?
        var usedPct: String?            // JSON text, 2 decimals
        var eventTime: String
        var periodStart: String
        var periodEnd: String
        var id: String
        var severity: String
        var topWorkflows: [String: String] = [:]
    }

    static func t(_ s: String) -> EpochMillis { RFC3339.parse(s)! }

    static func budget(_ pct: Int, spent: String, used: String, at time: String, top: [String: String]) -> Expected {
        let scope = [KeyValue("owner", "finance-ops")]
        return Expected(type: "budget_threshold", rule: "finance-monthly", key: "owner=finance-ops", thresholdPct: String(pct),
                        budget: "100", spent: spent, usedPct: used, eventTime: time,
                        periodStart: "2026-11-01T00:00:00Z", periodEnd: "2026-12-01T00:00:00Z",
                        id: Alert.makeID(rule: "finance-monthly", scope: scope, periodStart: t("2026-11-01T00:00:00Z"),
                                         kind: .budgetThreshold, threshold: String(pct)),
                        severity: pct >= 100 ? "critical" : "warning", topWorkflows: top)
    }

    static func unpriced(day: String, at time: String) -> Expected {
        let start = day + "T00:00:00Z"
        return Expected(type: "unpriced_model", rule: "unpriced_model", key: "model=mystery-llm-9", thresholdPct: nil,
                        budget: nil, spent: nil, usedPct: nil, eventTime: time, periodStart: start,
                        periodEnd: RFC3339.format(t(start) + 86_400_000),
                        id: Alert.makeID(rule: "unpriced_model", scope: [KeyValue("model", "mystery-llm-9")],
                                         periodStart: t(start), kind: .unpricedModel, threshold: ""),
                        severity: "info")
    }

    static let expectedPhase1: [Expected] = [
        budget(50, spent: "55", used: "55.00", at: "2026-11-02T09:00:02Z", top: ["invoice-extraction": "55"]),
        budget(80, spent: "105", used: "105.00", at: "2026-11-02T09:00:04Z",
               top: ["invoice-extraction": "95", "contract-review": "10"]),
        budget(100, spent: "105", used: "105.00", at: "2026-11-02T09:00:04Z",
               top: ["invoice-extraction": "95", "contract-review": "10"]),
        Expected(type: "spend_spike", rule: "workflow-spike", key: "workflow=support-triage", thresholdPct: "300",
                 budget: "2", spent: "7", usedPct: "350.00", eventTime: "2026-11-02T10:04:20Z",
                 periodStart: "2026-11-02T10:04:00Z", periodEnd: "2026-11-02T10:05:00Z",
                 id: Alert.makeID(rule: "workflow-spike", scope: [KeyValue("workflow", "support-triage")],
                                  periodStart: t("2026-11-02T10:04:00Z"), kind: .spendSpike, threshold: "3"),
                 severity: "warning", topWorkflows: ["support-triage": "7"]),
        unpriced(day: "2026-11-02", at: "2026-11-02T11:00:00Z"),
    ]

    static let expectedPhase2: [Expected] = [
        budget(120, spent: "122.5", used: "122.50", at: "2026-11-02T09:00:11Z",
               top: ["invoice-extraction": "112.5", "contract-review": "10"]),
        budget(150, spent: "150", used: "150.00", at: "2026-11-02T09:00:12Z",
               top: ["invoice-extraction": "140", "contract-review": "10"]),
        unpriced(day: "2026-11-03", at: "2026-11-03T08:00:00Z"),
    ]

    // MARK: Reading the alerts topic

    struct Received {
        var key: String
        var text: String
        var object: [String: Any]
        var id: String { object["alert_id"] as? String ?? "" }
        /// A field's raw JSON number text (nil for null or absent): money is compared exactly, not as Double.
        func number(_ field: String) -> String? {
            guard let r = text.range(of: "\"\(field)\":") else { return nil }
            let v = String(text[r.upperBound...].prefix { $0 != "," && $0 != "}" })
            return v == "null" ? nil : v
        }
    }

    /// Every message of the alerts topic, read from the start by a fresh group, keys included; reads on for
    /// 2 s past `expected` so that duplicates show up too.
    static func readAlerts(brokers: String, expected: Int, seconds: Double) throws -> [Received] {
        let consumer = try KafkaConsumer(properties: [("bootstrap.servers", brokers), ("group.id", "alert-reader-\(UUID().uuidString)"),
                                                      ("auto.offset.reset", "earliest")], topics: ["llm-alerts"], rebalance: nil)
        defer { consumer.close() }
        var out: [Received] = []
        Harness.pollUntilQuiet(consumer, seconds: seconds, quiet: 2, maxMessages: 100, enough: { out.count >= expected }) { m in
            let text = String(decoding: m.payload, as: UTF8.self)
            let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
            out.append(Received(key: m.key.map { String(decoding: $0, as: UTF8.self) } ?? "", text: text, object: object))
        }
        return out
    }

    static func money(_ s: String?) -> Money? { s.flatMap { Money.parse($0) } }

    /// Each expected alert arrived exactly once, with exactly its numbers; nothing else arrived.
    func check(_ got: [Received], _ want: [Expected], sourceLocation: SourceLocation = #_sourceLocation) {
        let ids = got.map(\.id)
        #expect(Set(ids).count == ids.count, "duplicate alert_id on the topic: \(ids.sorted())", sourceLocation: sourceLocation)
        #expect(Set(ids) == Set(want.map(\.id)),
                "alert ids: got \(got.map { "\($0.object["type"] ?? "?") \($0.key) \($0.number("threshold_pct") ?? "-")" }), want \(want.map { "\($0.type) \($0.key) \($0.thresholdPct ?? "-")" })",
                sourceLocation: sourceLocation)
        for w in want {
            guard let a = got.first(where: { $0.id == w.id }) else { continue }
            let o = a.object
            let context = "\(w.type) \(w.key) \(w.thresholdPct ?? "-"): \(a.text)"
            #expect(o["type"] as? String == w.type, "\(context)", sourceLocation: sourceLocation)
            #expect(o["rule"] as? String == w.rule, "\(context)", sourceLocation: sourceLocation)
            #expect(o["severity"] as? String == w.severity, "\(context)", sourceLocation: sourceLocation)
            #expect(a.key == w.key, "\(context)", sourceLocation: sourceLocation)
            #expect(a.number("threshold_pct") == w.thresholdPct, "\(context)", sourceLocation: sourceLocation)
            #expect(Self.money(a.number("budget_usd")) == Self.money(w.budget), "\(context)", sourceLocation: sourceLocation)
            #expect(Self.money(a.number("spent_usd")) == Self.money(w.spent), "\(context)", sourceLocation: sourceLocation)
            #expect(a.number("used_pct") == w.usedPct, "\(context)", sourceLocation: sourceLocation)
            #expect(o["event_time"] as? String == w.eventTime, "\(context)", sourceLocation: sourceLocation)
            #expect(o["period_start"] as? String == w.periodStart, "\(context)", sourceLocation: sourceLocation)
            #expect(o["period_end"] as? String == w.periodEnd, "\(context)", sourceLocation: sourceLocation)
            #expect((o["message"] as? String)?.isEmpty == false, "\(context)", sourceLocation: sourceLocation)
            // Before the forecast guard (10% of the month elapsed) there is no projection.
            #expect(a.number("projected_usd") == nil, "\(context)", sourceLocation: sourceLocation)
            var top: [String: String] = [:]
            if let r = a.text.range(of: #""top_workflows":["#) {
                let list = a.text[r.upperBound...].prefix { $0 != "]" }
                for entry in list.components(separatedBy: "},") {
                    guard let n = entry.range(of: #""workflow":""#), let c = entry.range(of: #""cost_usd":"#) else { continue }
                    let name = String(entry[n.upperBound...].prefix { $0 != "\"" })
                    let cost = String(entry[c.upperBound...].prefix { $0 != "}" && $0 != "," })
                    top[name] = cost
                }
            }
            #expect(top.mapValues { Self.money($0) } == w.topWorkflows.mapValues { Self.money($0) }, "\(context)",
                    sourceLocation: sourceLocation)
            switch w.type {
            case "spend_spike":
                #expect(Self.money(a.number("window_spend_usd")) == Money.parse("7"), "\(context)", sourceLocation: sourceLocation)
                #expect(Self.money(a.number("baseline_usd")) == Money.parse("2"), "\(context)", sourceLocation: sourceLocation)
                #expect(a.number("factor") == "3", "\(context)", sourceLocation: sourceLocation)
                #expect(a.text.contains(#""top_models":[{"model":"claude-sonnet-4-5","cost_usd":7"#), "\(context)",
                        sourceLocation: sourceLocation)
            case "unpriced_model":
                #expect(o["model"] as? String == "mystery-llm-9", "\(context)", sourceLocation: sourceLocation)
                #expect(a.number("requests") == "1", "\(context)", sourceLocation: sourceLocation)
                #expect(o["workflow"] as? String == "research-agent" && o["owner"] as? String == "labs", "\(context)",
                        sourceLocation: sourceLocation)
            default:
                break
            }
        }
    }

    static func outboxCount(_ state: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: state + "/outbox")) ?? []).filter { $0.hasSuffix(".alert") }.count
    }

    static func stop(_ p: Process, _ log: String, sourceLocation: SourceLocation = #_sourceLocation) {
        p.terminate()
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "SIGTERM must stop cleanly; see \(log)",
                sourceLocation: sourceLocation)
    }

    // MARK: The scenario

    @Test(.timeLimit(.minutes(4)))
    func budgetSpikeAndUnpricedAlertsArriveOnceThroughAnOutageAndRestarts() throws {
        let dir = try Harness.tempDir("alerts")
        let broker = try Harness.Broker(partitions: 1, topics: ["llm-usage", "llm-usage-dlq", "llm-alerts"],
                                        log: dir + "/broker.log", brokers: 2)
        defer { broker.stop() }
        // One partition: the events are judged in file order, so every running total is known in advance.
        // The mock picks partition leaders at random: place all of them.
        try broker.command("leader llm-usage 0 1")
        try broker.command("leader llm-usage-dlq 0 1")
        try broker.command("leader llm-alerts 0 2")
        try broker.command("coordinator group \(Self.group) 1")
        let state = dir + "/state", configPath = dir + "/tokenmeter.toml"
        try (Harness.configText(brokers: broker.bootstrap, group: Self.group, topic: "llm-usage", dlq: "llm-usage-dlq",
                                rollups: dir + "/rollups", state: state, idleClose: "2s") + Self.rules)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        func write(_ lines: [String], _ name: String) throws -> String {
            let path = dir + "/" + name
            try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let phase1 = try write(Self.phase1, "phase1.jsonl"), phase2 = try write(Self.phase2, "phase2.jsonl")
        let phase3 = try write(Self.phase3, "phase3.jsonl")
        let all = try write(Self.phase1 + Self.phase2 + Self.phase3, "all.jsonl")
        let expectedAll = Self.expectedPhase1 + Self.expectedPhase2

        // `replay` of the same events raises the same alerts with the same ids (judged in event time).
        let replayConfig = dir + "/replay.toml"
        try (Harness.configText(brokers: broker.bootstrap, group: "replay", topic: "llm-usage", dlq: "llm-usage-dlq",
                                rollups: dir + "/replay-rollups", state: dir + "/replay-state", idleClose: "2s") + Self.rules)
            .write(toFile: replayConfig, atomically: true, encoding: .utf8)
        #expect(try Harness.run(["replay", "--config", replayConfig, "--alerts", dir + "/replay-alerts.jsonl", all],
                                log: dir + "/replay.log") == 0)
        let replayed = try String(contentsOfFile: dir + "/replay-alerts.jsonl", encoding: .utf8).split(separator: "\n").map {
            Received(key: "", text: String($0), object: (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:])
        }
        #expect(replayed.map(\.id) == expectedAll.map(\.id), "replay raises the expected alerts, in order")

        // Phase 1: everything up.
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", phase1], log: dir + "/produce1.log") == 0)
        var daemon = try Harness.start(["run", "--config", configPath], log: dir + "/run1.log")
        let commits = try Harness.CommitWatcher(brokers: broker.bootstrap, group: Self.group, topic: "llm-usage", partitions: 1)
        let first = try Self.readAlerts(brokers: broker.bootstrap, expected: Self.expectedPhase1.count, seconds: 60)
        check(first, Self.expectedPhase1)
        #expect(try Harness.await(seconds: 30) { try commits.total() == Int64(Self.phase1.count) }, "see \(dir)/run1.log")

        // Phase 2: the alerts' broker is down while the daemon consumes events that cross more thresholds.
        try broker.command("down 2")
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", phase2], log: dir + "/produce2.log") == 0)
        let consumed = Int64(Self.phase1.count + Self.phase2.count)
        #expect(try Harness.await(seconds: 60) { try commits.total() == consumed }, "phase 2 not consumed; see \(dir)/run1.log")
        // The daemon checkpoints (and so commits) only once the new alerts are in the outbox: all three are there.
        #expect(Self.outboxCount(state) == Self.expectedPhase2.count, "held alerts in the outbox")
        Thread.sleep(forTimeInterval: 2)   // a few producer retries against the down broker: nothing may be lost
        #expect(Self.outboxCount(state) == Self.expectedPhase2.count)
        #expect(daemon.isRunning)

        // A restart in the middle of the outage: the held alerts survive it in the outbox (the checkpoint
        // already says they were published, so only the outbox remembers them) and are resent at start.
        Self.stop(daemon, dir + "/run1.log")
        #expect(Self.outboxCount(state) == Self.expectedPhase2.count, "held alerts survive a stop")
        daemon = try Harness.start(["run", "--config", configPath], log: dir + "/run2.log")
        #expect(Harness.await(seconds: 30) {
            ((try? String(contentsOfFile: dir + "/run2.log", encoding: .utf8)) ?? "").contains("resending alerts left in the outbox")
        }, "see \(dir)/run2.log")

        // Up again: the held alerts arrive, the outbox empties.
        try broker.command("up 2")
        #expect(Harness.await(seconds: 60) { Self.outboxCount(state) == 0 }, "held alerts not delivered; see \(dir)/run2.log")
        let afterOutage = try Self.readAlerts(brokers: broker.bootstrap, expected: expectedAll.count, seconds: 60)
        check(afterOutage, expectedAll)

        // Restart: the checkpoint carries the published crossings, so nothing is published again, not even
        // when more events arrive (phase 3 crosses nothing new).
        Self.stop(daemon, dir + "/run2.log")
        daemon = try Harness.start(["run", "--config", configPath], log: dir + "/run3.log")
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", phase3], log: dir + "/produce3.log") == 0)
        let total = consumed + Int64(Self.phase3.count)
        #expect(try Harness.await(seconds: 60) { try commits.total() == total }, "phase 3 not consumed; see \(dir)/run3.log")
        Thread.sleep(forTimeInterval: 1)
        #expect(Self.outboxCount(state) == 0)
        Self.stop(daemon, dir + "/run3.log")
        let afterRestart = try Self.readAlerts(brokers: broker.bootstrap, expected: expectedAll.count, seconds: 30)
        check(afterRestart, expectedAll)
        #expect(afterRestart.count == expectedAll.count, "each alert exactly once on the topic; see \(dir)")
        let log = try String(contentsOfFile: dir + "/run3.log", encoding: .utf8)
        #expect(!log.contains("resending alerts left in the outbox"), "nothing was left to resend after a clean stop")
        if afterRestart.count == expectedAll.count && Set(afterRestart.map(\.id)) == Set(expectedAll.map(\.id)) {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
}
