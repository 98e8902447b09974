import Foundation
import Testing
import TokenmeterCore
import TokenmeterKafka
#if canImport(Glibc)
import Glibc
#endif

/// `tokenmeter notify` with real processes: the mock broker (`tokenmeter broker`), Debian's Prometheus
/// Alertmanager on loopback, and an HTTP receiver in this test standing in for Slack and a webhook.
///
/// Alerts of every type (budget threshold, forecast, spike, unit cost, unpriced model) are produced to the
/// alerts topic as the daemon publishes them (TokenmeterCore's `Alert.json`), with one duplicate. Checked:
/// Alertmanager holds each with the right labels, annotations, `startsAt` and `endsAt` (read back through its
/// API); the Slack receiver got Block Kit; the webhook's HMAC signature verifies with the secret (computed by
/// Python's hmac, not by tokenmeter); the webhook answers 500, then 429 with `Retry-After: 1`, then hangs
/// past the sink's timeout, then 200, and notify follows that (the Retry-After wait is kept) while Slack is
/// served without waiting for it; notify is killed with SIGKILL after delivering and restarted with more
/// alerts on the topic, and every sink still sees each `alert_id` exactly once.
@Suite(.serialized) struct NotifyEndToEndTests {
    static var alertmanagerBinary: String? {
        ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager", "/usr/local/bin/alertmanager"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Alerts of each type in the current UTC day (Alertmanager shows an alert whose `endsAt` is past as
    /// resolved, and these must be active), as the daemon writes them.
    static func alerts(now: Int64, ids: [String]) -> [Alert] {
        let day = now - now % 86_400_000
        let end = day + 86_400_000
        let kinds: [(Alert.Kind, Alert.Severity, String, [KeyValue], Int64?, Alert.Details)] = [
            (.budgetThreshold, .warning, "finance-daily", [KeyValue("owner", "finance-ops")], 80_000, .threshold),
            (.budgetThreshold, .critical, "finance-daily", [KeyValue("owner", "finance-ops")], 100_000, .threshold),
            (.budgetForecast, .warning, "finance-daily", [KeyValue("owner", "finance-ops")], 100_000, .forecast(exhaustion: end - 3_600_000)),
            (.spendSpike, .warning, "triage-spike", [KeyValue("workflow", "support-triage")], 300_000,
             .spike(windowSpend: Money.parse("7")!, baseline: Money.parse("2")!, factorMilli: 3000, topModels: [])),
            (.costPerOutcome, .warning, "cost-per-ticket", [KeyValue("owner", "support")], 100_000,
             .costPerOutcome(outcome: "ticket", outcomes: 4, costPerOutcome: Money.parse("2.5")!, maxCost: Money.parse("2")!)),
            (.unpricedModel, .info, "unpriced_model", [KeyValue("model", "mystery-llm-9")], nil,
             .unpriced(model: "mystery-llm-9", requests: 1, workflow: "research-agent", owner: "labs")),
        ]
        return ids.enumerated().map { i, id in
            let k = kinds[i % kinds.count]
            return Alert(id: id, kind: k.0, severity: k.1, rule: k.2, scope: k.3, periodStart: day, periodEnd: end,
                         thresholdMilliPct: k.4, budget: k.4 == nil ? nil : Money.parse("100")!,
                         spent: k.4 == nil ? nil : Money.parse("80.25")!, usedHundredthsPct: k.4 == nil ? nil : 8025,
                         projected: k.4 == nil ? nil : Money.parse("120.10")!,
                         topWorkflows: [Alert.Share(name: "invoice-extraction", cost: Money.parse("60")!)],
                         eventTime: now - 60_000 + Int64(i) * 1000, emittedAt: now, message: "\(k.2): test alert \(i)", details: k.5)
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func alertsReachAlertmanagerSlackAndAWebhookOnceEachAcrossAKill() throws {
        guard let amBinary = Self.alertmanagerBinary else {
            Issue.record("prometheus-alertmanager is not installed (.ci/run installs it)")
            return
        }
        let dir = try Harness.tempDir("notify")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (am, amURL) = try Self.startAlertmanager(amBinary, dir: dir)
        defer { am.terminate(); am.waitUntilExit() }

        // The receiver: Slack always 200; the webhook 500, 429 + Retry-After, a hang, then 200.
        let receiver = try Receiver()
        defer { receiver.stop() }
        receiver.script("/hook", [.status(500), .retryAfter(1), .hang(seconds: 3)])

        let broker = try Harness.Broker(partitions: 2, topics: ["llm-alerts"], log: dir + "/broker.log")
        defer { broker.stop() }

        let secret = "whsec-\(UUID().uuidString)"
        try "http://127.0.0.1:\(receiver.port)/slack/T000/B000/slacktoken\n".write(toFile: dir + "/slack-url", atomically: true, encoding: .utf8)
        try "http://127.0.0.1:\(receiver.port)/hook\n".write(toFile: dir + "/hook-url", atomically: true, encoding: .utf8)
        try (secret + "\n").write(toFile: dir + "/hook-secret", atomically: true, encoding: .utf8)
        for f in ["slack-url", "hook-url", "hook-secret"] { chmod(dir + "/" + f, 0o600) }
        let config = dir + "/notify.toml"
        try """
        [kafka]
        brokers = "\(broker.bootstrap)"
        topic = "llm-alerts"
        group_id = "notify-e2e"
        [kafka.properties]
        "session.timeout.ms" = "6000"
        "heartbeat.interval.ms" = "500"
        [state]
        dir = "\(dir)/state"
        [delivery]
        initial_backoff = "200ms"
        max_backoff = "1s"
        timeout = "1s"
        [http]
        listen = "127.0.0.1:0"
        [[sink]]
        name = "pager"
        type = "alertmanager"
        url = "\(amURL)"
        [[sink]]
        name = "chat"
        type = "slack"
        url_file = "\(dir)/slack-url"
        [[sink]]
        name = "hook"
        type = "webhook"
        url_file = "\(dir)/hook-url"
        secret_file = "\(dir)/hook-secret"
        """.write(toFile: config, atomically: true, encoding: .utf8)

        // check --print shows the sinks but neither the secret nor the Slack token.
        let printLog = dir + "/print.log"
        let out = Pipe()
        let printer = try Harness.start(["notify", "--config", config, "--check", "--print"], log: printLog, stdout: out)
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        printer.waitUntilExit()
        #expect(printer.terminationStatus == 0, "see \(printLog)")
        #expect(printed.contains("sink chat: slack http://127.0.0.1:\(receiver.port)/…"))
        #expect(!printed.contains("slacktoken") && !printed.contains(secret))

        // Whole seconds: alerts publish event_time to the second.
        let now = Int64(Date().timeIntervalSince1970) * 1000
        let ids1 = (1...6).map { String(format: "%016x", 0xa1e7_0000 + $0) }
        let ids2 = (7...9).map { String(format: "%016x", 0xa1e7_0000 + $0) }
        let all = Self.alerts(now: now, ids: ids1 + ids2)
        // Phase 1: six alerts and a duplicate of the first (the daemon's rare re-send).
        try KafkaEdgeCaseTests.produce(broker, topic: "llm-alerts", all.prefix(6).map(\.json) + [all[0].json], dir: dir)

        let log1 = dir + "/notify-1.log"
        var notify = try Harness.start(["notify", "--config", config], log: log1)
        defer { if notify.isRunning { Harness.kill9(notify) } }

        #expect(Harness.await(seconds: 30) { Set(receiver.delivered("/hook")).isSuperset(of: ids1) }, "see \(log1)")
        // The delivered log has every phase-1 delivery before the kill (it is written before the commit, so
        // the kill very likely lands before some offsets were committed: they are consumed again).
        #expect(Harness.await(seconds: 10) {
            let text = (try? String(contentsOfFile: dir + "/state/delivered.log", encoding: .utf8)) ?? ""
            return ids1.allSatisfy { id in ["pager", "chat", "hook"].allSatisfy { text.contains(" \($0) \(id)\n") } }
        })
        Harness.kill9(notify)

        // The webhook's first alert took 4 attempts: 500, 429 (Retry-After 1 s kept), a hang cut by the 1 s
        // timeout, then 200. Slack got all six without waiting for the webhook.
        let hook = receiver.requests("/hook")
        #expect(hook.prefix(4).map(\.answer) == [500, 429, 0, 200])
        // The waits notify chose follow the policy: equal jitter on 200 ms, then Retry-After's 1 s (longer
        // than the 400 ms backoff), then equal jitter on 800 ms; and the requests were that far apart.
        let waits = try Self.retryWaits(log1, sink: "hook")
        #expect(waits.count == 3, "\(waits)")
        if waits.count == 3 {
            #expect((100...200).contains(waits[0]) && waits[1] == 1000 && (400...800).contains(waits[2]), "\(waits)")
        }
        if hook.count >= 4 && waits.count == 3 {
            #expect(hook[1].at - hook[0].at >= Double(waits[0]) / 1000, "no backoff after the 500")
            #expect(hook[2].at - hook[1].at >= 1.0, "Retry-After: 1 was not kept")
            #expect(hook[3].at - hook[2].at >= 1.0 + Double(waits[2]) / 1000, "the hang was not cut by the sink timeout, then backed off")
            let slackDone = receiver.requests("/slack/T000/B000/slacktoken").prefix(6).last?.at ?? .infinity
            #expect(slackDone < hook[3].at, "Slack waited for the webhook's retries")
        }
        // Every webhook request is signed: HMAC-SHA256(secret, timestamp "." body), checked by Python.
        for r in hook.prefix(5) {
            let ts = r.headers["x-tokenmeter-timestamp"] ?? ""
            #expect(r.headers["x-tokenmeter-signature"] == "sha256=" + (try Self.pythonHMAC(secret, ts + "." + r.body)))
            #expect(r.headers["content-type"] == "application/json")
        }
        // Slack's body is Block Kit.
        let slack = try #require(receiver.requests("/slack/T000/B000/slacktoken").first)
        let slackJSON = try #require(try JSONSerialization.jsonObject(with: Data(slack.body.utf8)) as? [String: Any])
        let blocks = try #require(slackJSON["blocks"] as? [[String: Any]])
        #expect(blocks.first?["type"] as? String == "header")
        #expect(blocks.contains { $0["type"] as? String == "context" })
        #expect(slackJSON["text"] is String)

        // Phase 2 while notify is down; then restart it.
        try KafkaEdgeCaseTests.produce(broker, topic: "llm-alerts", all.suffix(3).map(\.json), dir: dir)
        let log2 = dir + "/notify-2.log"
        notify = try Harness.start(["notify", "--config", config], log: log2)
        #expect(Harness.await(seconds: 30) { Set(receiver.delivered("/hook")).isSuperset(of: ids1 + ids2) }, "see \(log2)")
        #expect(Harness.await(seconds: 10) { Set(receiver.delivered("/slack/T000/B000/slacktoken").compactMap { $0 }).count == 9 })
        // /metrics counts what this run delivered: phase 2's three alerts per sink, none given up, the
        // phase-1 messages consumed again (if their commit had not happened before the kill) skipped.
        let address = try #require(Harness.await(seconds: 5) { Self.metricsAddress(log2) != nil } ? Self.metricsAddress(log2) : nil)
        #expect(Harness.await(seconds: 10) {
            let m = RobustnessTests.metrics(address)
            return ["pager", "chat", "hook"].allSatisfy { m["tokenmeter_notify_delivered_total{sink=\"\($0)\"}"] == 3 }
        }, "\(SystemdTests.get("http://\(address)/metrics")?.body ?? "no metrics")")
        let m = RobustnessTests.metrics(address)
        #expect(m["tokenmeter_notify_failed_total{sink=\"hook\"}"] == 0)
        #expect(m["tokenmeter_notify_queue_depth{sink=\"hook\"}"] == 0)
        // A clean stop drains what is in flight: every send there will be has happened once it exits.
        notify.terminate()
        notify.waitUntilExit()
        #expect(notify.terminationStatus == 0, "see \(log2)")

        // Each alert_id reached each sink exactly once.
        for path in ["/hook", "/slack/T000/B000/slacktoken"] {
            let got = receiver.delivered(path)
            #expect(got.count == 9 && Set(got) == Set(ids1 + ids2), "\(path): \(got)")
        }
        // Neither secret is in anything notify wrote: its logs, its state and its dead letters.
        for file in [log1, log2, dir + "/state/delivered.log", dir + "/state/dead-letters.jsonl"] {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            #expect(!text.contains(secret) && !text.contains("slacktoken"), "\(file)")
        }

        // Alertmanager holds the nine alerts with the labels, annotations and times notify gave them.
        let page = try #require(SystemdTests.get(amURL + "/api/v2/alerts"))
        let list = try #require(try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [[String: Any]])
        let byID = Dictionary(list.compactMap { a -> (String, [String: Any])? in
            guard let l = a["labels"] as? [String: String], let id = l["alert_id"] else { return nil }
            return (id, a)
        }, uniquingKeysWith: { a, _ in a })
        #expect(Set(byID.keys) == Set(ids1 + ids2))
        #expect(list.count == 9)
        for a in all {
            guard let got = byID[a.id], let labels = got["labels"] as? [String: String],
                  let ann = got["annotations"] as? [String: String] else { continue }
            #expect(labels["alertname"] == a.kind.rawValue)
            #expect(labels["rule"] == a.rule)
            #expect(labels["severity"] == a.severity.rawValue)
            for kv in a.scope { #expect(labels[kv.key] == kv.value) }
            #expect(labels["threshold_pct"] == (a.kind == .budgetThreshold ? String(a.thresholdMilliPct! / 1000) : nil))
            #expect(ann["summary"] == a.message)
            #expect(ann["spent_usd"] == a.spent?.decimalString())
            #expect(Self.millis(got["startsAt"]) == a.eventTime)
            #expect(Self.millis(got["endsAt"]) == a.periodEnd)
        }
    }

    /// Debian's Alertmanager on a free loopback port, clustering off, routing to nowhere; waits until its API answers.
    static func startAlertmanager(_ binary: String, dir: String) throws -> (Process, String) {
        let port = try freePort()
        try """
        route:
          receiver: blackhole
        receivers:
          - name: blackhole
        """.write(toFile: dir + "/alertmanager.yml", atomically: true, encoding: .utf8)
        let am = Process()
        am.executableURL = URL(fileURLWithPath: binary)
        am.arguments = ["--config.file=\(dir)/alertmanager.yml", "--storage.path=\(dir)/am-data",
                        "--web.listen-address=127.0.0.1:\(port)", "--cluster.listen-address="]
        _ = FileManager.default.createFile(atPath: dir + "/alertmanager.log", contents: nil)
        am.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/alertmanager.log"))
        am.standardOutput = FileHandle.nullDevice
        try am.run()
        let url = "http://127.0.0.1:\(port)"
        #expect(Harness.await(seconds: 20) { SystemdTests.get(url + "/api/v2/status")?.status == 200 },
                "alertmanager did not start; see \(dir)/alertmanager.log")
        return (am, url)
    }

    /// The daemon raises every type of alert from generated traffic, and notify takes them to Alertmanager
    /// and a signed webhook while it is killed with SIGKILL mid-stream and restarted.
    ///
    /// The daemon's rules: a budget with thresholds 50/80/100 and a forecast, a spike rule, a cost-per-outcome
    /// limit fed by outcome events, and (always on) the unpriced-model alert. The events are stamped around
    /// the wall clock, in rule periods that are still running, so that Alertmanager holds the alerts as
    /// active and its API lists them (an alert whose `endsAt` is past is resolved and not listed).
    ///
    /// 1. Healthy: the spike rule's baseline windows, an unpriced model, 70% of the budget (threshold 50 and
    ///    a forecast). Both sinks get the three alerts.
    /// 2. The webhook starts answering 503: the spike, the cost per outcome and threshold 80 reach
    ///    Alertmanager, while the webhook's first of them is in retry (its messages cannot be committed).
    /// 3. More spend (threshold 100) is produced and notify is killed with SIGKILL at once, while the daemon
    ///    is consuming and publishing it; the webhook recovers.
    /// 4. notify restarts; another unpriced model is called.
    /// Checked: the daemon published the eight expected alerts once each; the webhook answered 200 to each
    /// `alert_id` exactly once, with the body as published and a valid HMAC; Alertmanager received exactly
    /// eight alerts (its own `alertmanager_alerts_received_total`) and lists each active one with the right
    /// labels (`threshold_pct` for thresholds), `startsAt` and `endsAt`; the restarted notify skipped the
    /// alerts Alertmanager already had (its duplicates counter), and gave up nothing.
    @Test(.timeLimit(.minutes(20)))
    func alertsTheDaemonRaisesReachEachSinkOnce() throws {
        guard let amBinary = Self.alertmanagerBinary else {
            Issue.record("prometheus-alertmanager is not installed (.ci/run installs it)")
            return
        }
        // A budget period the clock is well inside: past the forecast's 10% guard, with time left to read
        // the alerts back. Almost always the day or the hour fits; in the rare hour when none of the four
        // does (around midnight on a Monday at a month's turn), wait for the clock to reach one.
        #expect(Harness.await(seconds: 900) { Self.budgetPeriod(now: Self.nowMillis()) != nil })
        let now = Self.nowMillis()
        let period = try #require(Self.budgetPeriod(now: now))
        let (periodStart, periodEnd) = Self.calendarPeriod(period, at: now)
        let window = Self.spikeWindow(now: now)
        let windowStart = now - now % window

        let dir = try Harness.tempDir("notify-daemon")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (am, amURL) = try Self.startAlertmanager(amBinary, dir: dir)
        defer { am.terminate(); am.waitUntilExit() }
        let receiver = try Receiver()
        defer { receiver.stop() }
        // One partition: the daemon judges the events in the order produced.
        let broker = try Harness.Broker(partitions: 1, topics: ["llm-usage", "llm-usage-dlq", "llm-alerts"], log: dir + "/broker.log")
        defer { broker.stop() }
        let daemonConfig = dir + "/tokenmeter.toml"
        try (Harness.configText(brokers: broker.bootstrap, group: "notify-daemon", topic: "llm-usage", dlq: "llm-usage-dlq",
                                rollups: dir + "/rollups", state: dir + "/daemon-state", idleClose: "2s") + """

            [[budget]]
            name = "finance-budget"
            owner = "finance-ops"
            period = "\(period)"
            amount_usd = 100
            thresholds = [50, 80, 100]
            forecast = true

            [[spike]]
            name = "triage-spike"
            by = "workflow"
            window = "\(window / 3_600_000)h"
            factor = 3.0
            min_usd = 1.0

            [[outcome_limit]]
            name = "cost-per-ticket"
            workflow = "support-triage"
            outcome = "ticket_resolved"
            max_cost_usd = 1.0
            period = "\(period)"
            """).write(toFile: daemonConfig, atomically: true, encoding: .utf8)
        let daemonLog = dir + "/daemon.log"
        let daemon = try Harness.start(["run", "--config", daemonConfig], log: daemonLog)
        defer { if daemon.isRunning { Harness.kill9(daemon) } }

        let secret = "whsec-\(UUID().uuidString)"
        try "http://127.0.0.1:\(receiver.port)/hook\n".write(toFile: dir + "/hook-url", atomically: true, encoding: .utf8)
        try (secret + "\n").write(toFile: dir + "/hook-secret", atomically: true, encoding: .utf8)
        for f in ["hook-url", "hook-secret"] { chmod(dir + "/" + f, 0o600) }
        let config = dir + "/notify.toml"
        try """
        [kafka]
        brokers = "\(broker.bootstrap)"
        topic = "llm-alerts"
        group_id = "notify-daemon-e2e"
        [kafka.properties]
        "session.timeout.ms" = "6000"
        "heartbeat.interval.ms" = "500"
        [state]
        dir = "\(dir)/notify-state"
        [delivery]
        initial_backoff = "100ms"
        max_backoff = "300ms"
        max_attempts = 1000
        timeout = "1s"
        [http]
        listen = "127.0.0.1:0"
        [[sink]]
        name = "pager"
        type = "alertmanager"
        url = "\(amURL)"
        [[sink]]
        name = "hook"
        type = "webhook"
        url_file = "\(dir)/hook-url"
        secret_file = "\(dir)/hook-secret"
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let delivered = dir + "/notify-state/delivered.log"
        func remembered(_ sink: String) -> Set<Substring> {
            let text = (try? String(contentsOfFile: delivered, encoding: .utf8)) ?? ""
            return Set(text.split(separator: "\n").compactMap { l in
                let p = l.split(separator: " ")
                return p.count == 3 && p[1] == sink ? p[2] : nil
            })
        }
        func at(_ t: Int64) -> String { RFC3339.format(t) }
        func finance(_ id: String, _ cost: String) -> String {
            AlertsEndToEndTests.usage(id, at(Self.nowMillis() - 1000), workflow: "invoice-extraction", owner: "finance-ops",
                                      model: "gpt-4o", cost: cost)
        }
        func mystery(_ id: String, model: String) -> String {
            AlertsEndToEndTests.usage(id, at(Self.nowMillis() - 1000), workflow: "research-agent", owner: "labs", model: model, cost: nil)
        }
        func triage(_ id: String, _ time: Int64, _ cost: String) -> String {
            AlertsEndToEndTests.usage(id, at(time), workflow: "support-triage", owner: "support", model: "claude-sonnet-4-5", cost: cost)
        }

        let notifyLog1 = dir + "/notify-1.log"
        var notify = try Harness.start(["notify", "--config", config], log: notifyLog1)
        defer { if notify.isRunning { Harness.kill9(notify) } }

        // 1. Three windows of $2 (the spike baseline), an unpriced model, 70% of the budget.
        try KafkaEdgeCaseTests.produce(broker, topic: "llm-usage", [3, 2, 1].map { k in
            triage("base-\(k)", windowStart - Int64(k) * window + 1000, "2.00")
        } + [mystery("u-1", model: "mystery-llm-9"), finance("f-1", "70.00")], dir: dir)
        #expect(Harness.await(seconds: 30) { receiver.delivered("/hook").count >= 3 && remembered("pager").count >= 3 },
                "see \(daemonLog) and \(notifyLog1)")

        // 2. The webhook fails from now on; a spike ($7 over a $2 baseline), outcomes that make $7 / 2
        //    tickets cost more than $1 each, and 85% of the budget.
        receiver.script("/hook", Array(repeating: .status(503), count: 10_000))
        let spikeTime = max(windowStart, Self.nowMillis() - 2000)
        try KafkaEdgeCaseTests.produce(broker, topic: "llm-usage", [
            triage("spike-1", spikeTime, "7.00"),
            #"{"type":"outcome","id":"o-1","timestamp":"\#(at(Self.nowMillis() - 1000))","workflow":"support-triage","owner":"support","outcome":"ticket_resolved","count":2}"#,
            finance("f-2", "15.00"),
        ], dir: dir)
        #expect(Harness.await(seconds: 30) {
            remembered("pager").count >= 6 && receiver.requests("/hook").contains { $0.answer == 503 }
        }, "see \(daemonLog) and \(notifyLog1)")
        #expect(receiver.delivered("/hook").count == 3, "the webhook answered 200 while it was failing")

        // 3. Threshold 100, and the kill while the daemon consumes it.
        try KafkaEdgeCaseTests.produce(broker, topic: "llm-usage", [finance("f-3", "20.00")], dir: dir)
        Harness.kill9(notify)
        receiver.script("/hook", [])

        // 4. Restart; a second unpriced model.
        let notifyLog2 = dir + "/notify-2.log"
        notify = try Harness.start(["notify", "--config", config], log: notifyLog2)
        try KafkaEdgeCaseTests.produce(broker, topic: "llm-usage", [mystery("u-2", model: "mystery-llm-10")], dir: dir)

        // What the daemon published: the eight expected alerts, once each.
        let want: [(type: String, rule: String, key: String, threshold: String?, severity: String, start: Int64, end: Int64)] = [
            ("budget_threshold", "finance-budget", "owner=finance-ops", "50", "warning", periodStart, periodEnd),
            ("budget_threshold", "finance-budget", "owner=finance-ops", "80", "warning", periodStart, periodEnd),
            ("budget_threshold", "finance-budget", "owner=finance-ops", "100", "critical", periodStart, periodEnd),
            ("budget_forecast", "finance-budget", "owner=finance-ops", "100", "warning", periodStart, periodEnd),
            ("spend_spike", "triage-spike", "workflow=support-triage", "300", "warning", windowStart, windowStart + window),
            ("cost_per_outcome", "cost-per-ticket", "workflow=support-triage", "100", "warning", periodStart, periodEnd),
            ("unpriced_model", "unpriced_model", "model=mystery-llm-9", nil, "info", 0, 0),
            ("unpriced_model", "unpriced_model", "model=mystery-llm-10", nil, "info", 0, 0),
        ]
        #expect(Harness.await(seconds: 30) { Set(receiver.delivered("/hook")).count >= want.count && remembered("pager").count >= want.count },
                "see \(daemonLog) and \(notifyLog2)")
        let published = try AlertsEndToEndTests.readAlerts(brokers: broker.bootstrap, expected: want.count, seconds: 20)
        #expect(published.count == want.count && Set(published.map(\.id)).count == want.count,
                "\(published.map { "\($0.object["type"] ?? "?") \($0.key) \($0.number("threshold_pct") ?? "-")" })")
        for w in want {
            let matches = published.filter { a in
                a.object["type"] as? String == w.type && a.object["rule"] as? String == w.rule && a.key == w.key
                    && a.number("threshold_pct") == w.threshold
            }
            #expect(matches.count == 1, "\(w.type) \(w.key) \(w.threshold ?? "-"): \(matches.count) published")
            guard let a = matches.first else { continue }
            #expect(a.object["severity"] as? String == w.severity, "\(a.text)")
            if w.type == "unpriced_model" {
                let day = RFC3339.parse(a.object["event_time"] as? String ?? "").map { $0 - $0 % 86_400_000 }
                #expect(RFC3339.parse(a.object["period_start"] as? String ?? "") == day, "\(a.text)")
            } else {
                #expect(RFC3339.parse(a.object["period_start"] as? String ?? "") == w.start, "\(a.text)")
                #expect(RFC3339.parse(a.object["period_end"] as? String ?? "") == w.end, "\(a.text)")
            }
        }
        let ids = Set(published.map(\.id))

        // /metrics of the restarted notify: the messages of step 2 were consumed again (the webhook's route
        // had not finished, so they were never committed) and Alertmanager's copies were skipped.
        let address = try #require(Harness.await(seconds: 5) { Self.metricsAddress(notifyLog2) != nil } ? Self.metricsAddress(notifyLog2) : nil)
        let m = RobustnessTests.metrics(address)
        #expect((m["tokenmeter_notify_duplicates_total{sink=\"pager\"}"] ?? 0) >= 3, "\(m)")
        #expect(m["tokenmeter_notify_failed_total{sink=\"pager\"}"] == 0 && m["tokenmeter_notify_failed_total{sink=\"hook\"}"] == 0)
        // A clean stop drains what is in flight: every send there will be has happened after it.
        notify.terminate(); notify.waitUntilExit()
        #expect(notify.terminationStatus == 0, "see \(notifyLog2)")

        // The webhook: each alert_id answered 200 exactly once, the body as published, signed with the secret.
        let hookDelivered = receiver.delivered("/hook")
        #expect(hookDelivered.count == want.count && Set(hookDelivered) == ids, "\(hookDelivered.sorted()) vs \(ids.sorted())")
        let texts = Set(published.map(\.text))
        for r in receiver.requests("/hook") where r.answer == 200 {
            #expect(texts.contains(r.body))
            let ts = r.headers["x-tokenmeter-timestamp"] ?? ""
            #expect(r.headers["x-tokenmeter-signature"] == "sha256=" + (try Self.pythonHMAC(secret, ts + "." + r.body)))
        }
        for log in [notifyLog1, notifyLog2] { #expect(!(try String(contentsOfFile: log, encoding: .utf8)).contains(secret)) }

        // Alertmanager: exactly eight alerts received (a re-send would count again), each active one listed
        // with the labels, startsAt and endsAt notify gave it.
        let amMetrics = SystemdTests.samples(SystemdTests.get(amURL + "/metrics")?.body ?? "")
        let received = amMetrics.filter { $0.key.hasPrefix("alertmanager_alerts_received_total") }.values.reduce(0, +)
        #expect(received == Double(want.count), "\(amMetrics.filter { $0.key.hasPrefix("alertmanager_alerts") })")
        let page = try #require(SystemdTests.get(amURL + "/api/v2/alerts"))
        let list = try #require(try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [[String: Any]])
        let listed = Dictionary(list.compactMap { a -> (String, [String: Any])? in
            guard let l = a["labels"] as? [String: String], let id = l["alert_id"] else { return nil }
            return (id, a)
        }, uniquingKeysWith: { a, _ in a })
        let readAt = Self.nowMillis()
        let active = published.filter { (RFC3339.parse($0.object["period_end"] as? String ?? "") ?? 0) > readAt + 1000 }
        #expect(active.count >= want.count - 2, "only the unpriced alerts' day may have ended during the test")
        #expect(Set(listed.keys) == Set(active.map(\.id)), "\(page.body)")
        for a in active {
            guard let got = listed[a.id], let labels = got["labels"] as? [String: String] else { continue }
            let type = a.object["type"] as? String ?? ""
            #expect(labels["alertname"] == type)
            #expect(labels["rule"] == a.object["rule"] as? String)
            #expect(labels["severity"] == a.object["severity"] as? String)
            for kv in a.key.split(separator: ",") {
                let p = kv.split(separator: "=", maxSplits: 1).map(String.init)
                #expect(labels[p[0]] == p[1], "\(labels)")
            }
            #expect(labels["threshold_pct"] == (type == "budget_threshold" ? a.number("threshold_pct") : nil), "\(labels)")
            #expect(Self.millis(got["startsAt"]) == RFC3339.parse(a.object["event_time"] as? String ?? ""))
            #expect(Self.millis(got["endsAt"]) == RFC3339.parse(a.object["period_end"] as? String ?? ""))
        }

        daemon.terminate(); daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0, "see \(daemonLog)")
        let dead = (try? String(contentsOfFile: dir + "/notify-state/dead-letters.jsonl", encoding: .utf8)) ?? ""
        #expect(dead.isEmpty, "\(dead)")
    }

    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// [start, end) of a UTC calendar period (`hour`, `day`, `week` from Monday, `month`) around `t`.
    static func calendarPeriod(_ period: String, at t: Int64) -> (Int64, Int64) {
        let hour: Int64 = 3_600_000, day: Int64 = 86_400_000
        switch period {
        case "hour": return (t - t % hour, t - t % hour + hour)
        case "day": return (t - t % day, t - t % day + day)
        case "week":
            // 1970-01-01 was a Thursday: its Monday was 3 days before.
            let d = t / day
            let start = (d - (d + 3) % 7) * day
            return (start, start + 7 * day)
        default:
            var cal = Calendar(identifier: .gregorian)
            cal.timeZone = TimeZone(identifier: "UTC")!
            let start = cal.date(from: cal.dateComponents([.year, .month], from: Date(timeIntervalSince1970: Double(t) / 1000)))!
            let end = cal.date(byAdding: .month, value: 1, to: start)!
            return (Int64(start.timeIntervalSince1970 * 1000), Int64(end.timeIntervalSince1970 * 1000))
        }
    }

    /// The first budget period `now` is 15% to 85% into: far enough for the forecast's guard (10% elapsed),
    /// and with $70 spent the projection reaches $100 for sure (70 + 420 x the share left, the recent rate
    /// alone), with minutes left before the period's alerts resolve.
    static func budgetPeriod(now: Int64) -> String? {
        ["day", "hour", "week", "month"].first { p in
            let (s, e) = calendarPeriod(p, at: now)
            return (now - s) * 100 >= (e - s) * 15 && (now - s) * 100 <= (e - s) * 85
        }
    }

    /// A spike window (whole hours, aligned as the daemon aligns them: multiples since the epoch) that
    /// began at least a minute ago and ends at least 5 minutes from now.
    static func spikeWindow(now: Int64) -> Int64 {
        for hours: Int64 in [1, 5, 7, 11, 13] {
            let w = hours * 3_600_000
            if now % w >= 60_000 && w - now % w >= 300_000 { return w }
        }
        return 17 * 3_600_000
    }

    /// `delivery.dead_letter_topic`: alerts a sink refuses for good, and a message that is not an alert, go
    /// to the topic (the value as published, keyed by alert_id, the reason in headers), acknowledged before
    /// the offsets pass them; the healthy sink gets every alert; nothing is left for the file.
    @Test(.timeLimit(.minutes(2)))
    func givenUpAlertsGoToTheDeadLetterTopic() throws {
        let dir = try Harness.tempDir("notify-dlq")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let receiver = try Receiver()
        defer { receiver.stop() }
        receiver.script("/gone", Array(repeating: .status(410), count: 100))
        let broker = try Harness.Broker(partitions: 1, topics: ["llm-alerts", "llm-alerts-dead"], log: dir + "/broker.log")
        defer { broker.stop() }
        let config = dir + "/notify.toml"
        try """
        [kafka]
        brokers = "\(broker.bootstrap)"
        group_id = "notify-dlq"
        [state]
        dir = "\(dir)/state"
        [delivery]
        dead_letter_topic = "llm-alerts-dead"
        initial_backoff = "100ms"
        [http]
        listen = "127.0.0.1:0"
        [[sink]]
        name = "gone"
        type = "webhook"
        url = "http://127.0.0.1:\(receiver.port)/gone"
        [[sink]]
        name = "ok"
        type = "webhook"
        url = "http://127.0.0.1:\(receiver.port)/ok"
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let out = Pipe()
        let printer = try Harness.start(["notify", "--config", config, "--check", "--print"], log: dir + "/print.log", stdout: out)
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        printer.waitUntilExit()
        #expect(printed.contains("dead letters: topic llm-alerts-dead, else file \(dir)/state/dead-letters.jsonl"), "\(printed)")

        let now = Int64(Date().timeIntervalSince1970) * 1000
        let ids = ["d1e7000000000001", "d1e7000000000002"]
        let alerts = Self.alerts(now: now, ids: ids)
        try KafkaEdgeCaseTests.produce(broker, topic: "llm-alerts", alerts.map(\.json) + ["not an alert"], dir: dir)
        let log = dir + "/notify.log"
        let notify = try Harness.start(["notify", "--config", config], log: log)
        defer { if notify.isRunning { Harness.kill9(notify) } }

        // Three dead letters on the topic: each alert for "gone", and the value that is not an alert.
        let consumer = try KafkaConsumer(properties: [("bootstrap.servers", broker.bootstrap), ("group.id", "dlq-reader"),
                                                      ("auto.offset.reset", "earliest")], topics: ["llm-alerts-dead"], rebalance: nil)
        defer { consumer.close() }
        var dead: [(key: String?, value: String, headers: [String: String])] = []
        #expect(Harness.await(seconds: 30) {
            consumer.poll(maxMessages: 100, timeoutMs: 100) { m in
                var h: [String: String] = [:]
                for (k, v) in m.headers() { h[k] = String(decoding: v, as: UTF8.self) }
                dead.append((m.key.map { String(decoding: $0, as: UTF8.self) }, String(decoding: m.payload, as: UTF8.self), h))
            }
            return dead.count >= 3
        }, "see \(log)")
        for a in alerts {
            let d = dead.filter { $0.key == a.id }
            #expect(d.count == 1 && d.first?.value == a.json, "\(dead)")
            #expect(d.first?.headers["tokenmeter-error"]?.hasPrefix("HTTP 410") == true && d.first?.headers["tokenmeter-sink"] == "gone")
            #expect(d.first?.headers["tokenmeter-topic"] == "llm-alerts" && d.first?.headers["tokenmeter-attempts"] == "1")
        }
        let junk = dead.filter { $0.key == nil }
        #expect(junk.count == 1 && junk.first?.value == "not an alert" && junk.first?.headers["tokenmeter-offset"] == "2"
                && junk.first?.headers["tokenmeter-error"]?.hasPrefix("not an alert") == true, "\(junk)")
        #expect(Set(receiver.delivered("/ok")) == Set(ids))

        // Committed past all three only once they were acknowledged; counted as on the topic, none in the file.
        let watcher = try Harness.CommitWatcher(brokers: broker.bootstrap, group: "notify-dlq", topic: "llm-alerts", partitions: 1)
        #expect(Harness.await(seconds: 10) { (try? watcher.total()) == 3 })
        let address = try #require(Self.metricsAddress(log))
        let m = RobustnessTests.metrics(address)
        #expect(m["tokenmeter_notify_dead_letters_total{to=\"topic\"}"] == 3 && m["tokenmeter_notify_dead_letters_total{to=\"file\"}"] == 0, "\(m)")
        #expect(m["tokenmeter_notify_failed_total{sink=\"gone\"}"] == 2)
        notify.terminate(); notify.waitUntilExit()
        #expect(notify.terminationStatus == 0, "see \(log)")
        #expect(((try? String(contentsOfFile: dir + "/state/dead-letters.jsonl", encoding: .utf8)) ?? "").isEmpty)
    }

    /// Two notify instances in one consumer group on a 4-partition alerts topic, each with its own state
    /// folder (as on two hosts), a slow webhook and a fast one. B joins while A has a backlog for the slow
    /// sink (A lets the revoked partitions' deliveries finish before it commits and lets go); then B is
    /// stopped with SIGTERM while alerts keep coming, and A takes its partitions over. Last, A is killed
    /// with SIGKILL and B started again: it waits for A's release until `kafka.handover_timeout`. Each
    /// alert_id reaches each sink exactly once, and both instances delivered some.
    @Test(.timeLimit(.minutes(2)))
    func twoInstancesShareTheAlertsAcrossARebalance() throws {
        let dir = try Harness.tempDir("notify-pair")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let receiver = try Receiver()
        defer { receiver.stop() }
        receiver.script("/slow", Array(repeating: .slow(seconds: 0.1), count: 1000))
        let broker = try Harness.Broker(partitions: 4, topics: ["llm-alerts"], log: dir + "/broker.log")
        defer { broker.stop() }
        func config(_ name: String) throws -> String {
            let path = dir + "/\(name).toml"
            try """
            [kafka]
            brokers = "\(broker.bootstrap)"
            group_id = "notify-pair"
            handover_timeout = "3s"
            [kafka.properties]
            "session.timeout.ms" = "6000"
            "heartbeat.interval.ms" = "500"
            [state]
            dir = "\(dir)/state-\(name)"
            [delivery]
            shutdown_timeout = "30s"
            [http]
            listen = "127.0.0.1:0"
            [[sink]]
            name = "slow"
            type = "webhook"
            url = "http://127.0.0.1:\(receiver.port)/slow"
            [[sink]]
            name = "fast"
            type = "webhook"
            url = "http://127.0.0.1:\(receiver.port)/fast"
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let now = Int64(Date().timeIntervalSince1970) * 1000
        var all: [String] = []
        func produce(_ n: Int) throws {
            let ids = (all.count..<(all.count + n)).map { String(format: "%016x", 0xb0b0_0000 + $0) }
            all += ids
            let file = dir + "/alerts-\(all.count).jsonl"
            try (Self.alerts(now: now, ids: ids).map(\.json).joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            // Keyed by alert_id: spread over the four partitions.
            #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-alerts", "--key-field", "alert_id", file],
                                    log: file + ".log") == 0)
        }
        let logA = dir + "/a.log", logB = dir + "/b.log"
        try produce(40)
        let a = try Harness.start(["notify", "--config", try config("a")], log: logA)
        defer { if a.isRunning { Harness.kill9(a) } }
        // A owns all four partitions and works through a backlog for the slow sink (0.1 s an alert).
        #expect(Harness.await(seconds: 20) { receiver.delivered("/slow").count >= 5 }, "see \(logA)")
        let b = try Harness.start(["notify", "--config", try config("b")], log: logB)
        defer { if b.isRunning { Harness.kill9(b) } }
        #expect(Harness.await(seconds: 30) { ((try? String(contentsOfFile: logB, encoding: .utf8)) ?? "").contains("assigned llm-alerts[") },
                "B was never assigned partitions; see \(logB)")
        try produce(40)
        #expect(Harness.await(seconds: 30) { Set(receiver.delivered("/fast")).count == 80 }, "see \(logA) and \(logB)")
        // B leaves while alerts keep coming: A takes over B's partitions.
        b.terminate()
        try produce(20)
        b.waitUntilExit()
        #expect(b.terminationStatus == 0, "see \(logB)")
        #expect(Harness.await(seconds: 40) { Set(receiver.delivered("/slow")).count == 100 && Set(receiver.delivered("/fast")).count == 100 },
                "see \(logA) and \(logB)")
        // A is killed with SIGKILL once its commits are through: they still say `owned:` A. B, started again,
        // waits for a release that never comes until kafka.handover_timeout, then starts from the committed
        // offsets: nothing is sent again, and the next alerts are delivered.
        let watcher = try Harness.CommitWatcher(brokers: broker.bootstrap, group: "notify-pair", topic: "llm-alerts", partitions: 4)
        #expect(Harness.await(seconds: 10) { (try? watcher.total()) == 100 })
        Harness.kill9(a)
        let logB2 = dir + "/b2.log"
        let b2 = try Harness.start(["notify", "--config", try config("b")], log: logB2)
        defer { if b2.isRunning { Harness.kill9(b2) } }
        try produce(4)
        #expect(Harness.await(seconds: 40) { Set(receiver.delivered("/fast")).count == all.count && Set(receiver.delivered("/slow")).count == all.count },
                "see \(logB2)")
        b2.terminate(); b2.waitUntilExit()
        #expect(b2.terminationStatus == 0, "see \(logB2)")
        let textB2 = try String(contentsOfFile: logB2, encoding: .utf8)
        #expect(textB2.contains("waiting for the previous owner to hand over llm-alerts[") && textB2.contains("did not hand it over within kafka.handover_timeout"),
                "see \(logB2)")

        for path in ["/slow", "/fast"] {
            let got = receiver.delivered(path)
            let twice = Dictionary(grouping: got, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
            #expect(got.count == all.count && Set(got) == Set(all), "\(path): \(got.count) deliveries, sent twice: \(twice)")
        }
        // Each instance's delivered log: both delivered some, together each alert once.
        func deliveredBy(_ name: String) -> Int {
            ((try? String(contentsOfFile: dir + "/state-\(name)/delivered.log", encoding: .utf8)) ?? "")
                .split(separator: "\n").filter { $0.contains(" fast ") }.count
        }
        let (byA, byB) = (deliveredBy("a"), deliveredBy("b"))
        #expect(byA > 0 && byB > 0 && byA + byB == all.count, "A \(byA), B \(byB)")
        // A was assigned three times: everything, its share beside B, everything again.
        let assignedA = try String(contentsOfFile: logA, encoding: .utf8).components(separatedBy: "assigned llm-alerts[").count - 1
        #expect(assignedA >= 3, "see \(logA)")
    }

    /// systemd/tokenmeter-notify.service verifies without warnings and is hardened as the daemon's unit.
    @Test func theUnitVerifiesAndIsHardened() throws {
        let analyze = try SystemdTests.systemdAnalyze()
        let dir = try Harness.tempDir("notify-unit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/tokenmeter-notify.service"
        let text = try String(contentsOfFile: CommandLineTests.repoRoot + "/systemd/tokenmeter-notify.service", encoding: .utf8)
        try text.replacingOccurrences(of: "/usr/local/bin/tokenmeter", with: Harness.binary).write(toFile: path, atomically: true, encoding: .utf8)
        let verify = try SystemdTests.capture(analyze, ["verify", path])
        #expect(verify.status == 0 && verify.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(verify.output)")
        for line in ["RestartPreventExitStatus=78", "notify --check", "LoadCredential=slack-url:", "SystemCallFilter=@system-service"] {
            #expect(text.contains(line), "the unit lacks \(line)")
        }
        let security = try SystemdTests.capture(analyze, ["security", "--offline=true", path])
        let line = security.output.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let score = line.flatMap { l in l.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) } }
        #expect(score != nil && score! <= 2.0, "\(security.output.suffix(300))")
    }

    /// A `--check` of a file with mistakes exits 78 with FILE:LINE:COL diagnostics.
    @Test func aBadConfigExits78() throws {
        let dir = try Harness.tempDir("notify-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = dir + "/notify.toml"
        try """
        [kafka]
        brokers = "127.0.0.1:1"
        [[sink]]
        name = "pager"
        type = "alertmanger"
        url = "http://127.0.0.1:1"
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let log = dir + "/check.log"
        #expect(try Harness.run(["notify", "--config", config, "--check"], log: log) == 78)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("\(config):5:8: error: sink.type must be one of"))
        #expect(text.contains("did you mean \"alertmanager\"?"))
    }

    /// The waits (ms) notify logged before each retry to `sink`, in order.
    static func retryWaits(_ log: String, sink: String) throws -> [Int64] {
        try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap { line in
            guard line.contains("sink \(sink): alert "), let r = line.range(of: "; retrying in ") else { return nil }
            return Int64(line[r.upperBound...].prefix { $0.isNumber })
        }
    }

    static func metricsAddress(_ log: String) -> String? {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8),
              let r = text.range(of: "metrics on http://") else { return nil }
        return String(text[r.upperBound...].prefix { $0 != "/" && $0 != "\n" })
    }

    static func millis(_ v: Any?) -> Int64? {
        guard let s = v as? String else { return nil }
        // Alertmanager answers with fractional seconds: compare at millisecond precision.
        return RFC3339.parse(s)
    }

    static func pythonHMAC(_ key: String, _ message: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import hmac,hashlib,sys; k=sys.argv[1].encode(); m=sys.stdin.buffer.read(); print(hmac.new(k,m,hashlib.sha256).hexdigest())", key]
        let inPipe = Pipe(), outPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        try p.run()
        inPipe.fileHandleForWriting.write(Data(message.utf8))
        inPipe.fileHandleForWriting.closeFile()
        let out = String(decoding: outPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw HarnessError("no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// A tiny HTTP/1.1 server on loopback: one thread per connection, `Connection: close`, every request kept
/// with the time it arrived and the status it was answered with (0 = no answer: hung up after a hang).
final class Receiver: @unchecked Sendable {
    enum Answer { case status(Int), retryAfter(Int), hang(seconds: Double), slow(seconds: Double) }
    struct Request { var path: String; var headers: [String: String]; var body: String; var at: Double; var answer: Int }

    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var scripts: [String: [Answer]] = [:]
    private var log: [Request] = []
    private var stopped = false

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, 64) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { close(fd); throw HarnessError("receiver: cannot listen") }
        self.fd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    func script(_ path: String, _ answers: [Answer]) { lock.withLock { scripts[path] = answers } }

    func requests(_ path: String) -> [Request] { lock.withLock { log.filter { $0.path == path } } }

    /// The alert_ids of the requests answered 200, in order (the webhook's header, Slack's context line).
    func delivered(_ path: String) -> [String] {
        requests(path).filter { $0.answer == 200 }.compactMap { r in
            if let id = r.headers["x-tokenmeter-alert-id"] { return id }
            guard let range = r.body.range(of: "alert_id `") else { return nil }
            return String(r.body[range.upperBound...].prefix { $0 != "`" })
        }
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private func acceptLoop() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 {
                if lock.withLock({ stopped }) { return }
                if errno == EINTR { continue }
                return
            }
            Thread { [self] in serve(c) }.start()
        }
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?
        var contentLength = 0
        while true {
            let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            data.append(contentsOf: buf[0..<n])
            if headerEnd == nil, let r = data.firstRange(of: Array("\r\n\r\n".utf8)) {
                headerEnd = r.upperBound
                let head = String(decoding: data[..<r.lowerBound], as: UTF8.self).lowercased()
                for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let h = headerEnd, data.count >= h + contentLength { break }
        }
        let at = Date().timeIntervalSince1970
        let h = headerEnd!
        let lines = String(decoding: data[..<(h - 4)], as: UTF8.self).components(separatedBy: "\r\n")
        let path = lines.first?.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = String(decoding: data[h..<(h + contentLength)], as: UTF8.self)
        let answer: Answer = lock.withLock {
            guard var s = scripts[path], !s.isEmpty else { return .status(200) }
            let a = s.removeFirst()
            scripts[path] = s
            return a
        }
        var status = 0
        var extra = ""
        switch answer {
        case .status(let s): status = s
        case .retryAfter(let seconds): status = 429; extra = "Retry-After: \(seconds)\r\n"
        case .slow(let seconds): Thread.sleep(forTimeInterval: seconds); status = 200
        case .hang(let seconds):
            lock.withLock { log.append(Request(path: path, headers: headers, body: body, at: at, answer: 0)) }
            Thread.sleep(forTimeInterval: seconds)
            return
        }
        lock.withLock { log.append(Request(path: path, headers: headers, body: body, at: at, answer: status)) }
        let response = "HTTP/1.1 \(status) X\r\nContent-Length: 2\r\nConnection: close\r\n\(extra)\r\nok"
        _ = response.withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }
}
