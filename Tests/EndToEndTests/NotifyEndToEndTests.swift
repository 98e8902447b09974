import Foundation
import Testing
import TokenmeterCore
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
        if hook.count >= 4 {
            #expect(hook[2].at - hook[1].at >= 1.0, "Retry-After: 1 was not kept")
            #expect(hook[1].at - hook[0].at >= 0.1, "no backoff after the 500")
            #expect(hook[3].at - hook[2].at >= 1.0, "the hang was not cut by the sink timeout")
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
        // Let it settle: a re-send would come now, if at all.
        Thread.sleep(forTimeInterval: 1.5)
        notify.terminate()
        notify.waitUntilExit()
        #expect(notify.terminationStatus == 0, "see \(log2)")

        // Each alert_id reached each sink exactly once.
        for path in ["/hook", "/slack/T000/B000/slacktoken"] {
            let got = receiver.delivered(path)
            #expect(got.count == 9 && Set(got) == Set(ids1 + ids2), "\(path): \(got)")
        }
        #expect(!(try String(contentsOfFile: log1, encoding: .utf8)).contains(secret))
        #expect(!(try String(contentsOfFile: log1, encoding: .utf8)).contains("slacktoken"))

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
        FileManager.default.createFile(atPath: dir + "/alertmanager.log", contents: nil)
        am.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/alertmanager.log"))
        am.standardOutput = FileHandle.nullDevice
        try am.run()
        let url = "http://127.0.0.1:\(port)"
        #expect(Harness.await(seconds: 20) { SystemdTests.get(url + "/api/v2/status")?.status == 200 },
                "alertmanager did not start; see \(dir)/alertmanager.log")
        return (am, url)
    }

    /// The alerts the real daemon raises from usage events (AlertsEndToEndTests' events and rules: budget
    /// thresholds crossed one by one and several at once, a spend spike, an unpriced model on two days)
    /// reach the webhook once each and are accepted by Alertmanager (their periods are over, so Alertmanager
    /// takes them as resolved: its API does not list them, notify's counters say each was accepted).
    @Test(.timeLimit(.minutes(3)))
    func alertsTheDaemonRaisesReachEachSinkOnce() throws {
        guard let amBinary = Self.alertmanagerBinary else {
            Issue.record("prometheus-alertmanager is not installed (.ci/run installs it)")
            return
        }
        let dir = try Harness.tempDir("notify-daemon")
        let (am, amURL) = try Self.startAlertmanager(amBinary, dir: dir)
        defer { am.terminate(); am.waitUntilExit() }
        let receiver = try Receiver()
        defer { receiver.stop() }
        // One partition: the daemon judges the events in file order, as AlertsEndToEndTests expects.
        let broker = try Harness.Broker(partitions: 1, topics: ["llm-usage", "llm-usage-dlq", "llm-alerts"], log: dir + "/broker.log")
        defer { broker.stop() }
        let daemonConfig = dir + "/tokenmeter.toml"
        try (Harness.configText(brokers: broker.bootstrap, group: "notify-daemon", topic: "llm-usage", dlq: "llm-usage-dlq",
                                rollups: dir + "/rollups", state: dir + "/daemon-state", idleClose: "2s") + AlertsEndToEndTests.rules)
            .write(toFile: daemonConfig, atomically: true, encoding: .utf8)
        try KafkaEdgeCaseTests.produce(broker, topic: "llm-usage", AlertsEndToEndTests.phase1 + AlertsEndToEndTests.phase2, dir: dir)
        let daemonLog = dir + "/daemon.log"
        let daemon = try Harness.start(["run", "--config", daemonConfig], log: daemonLog)
        defer { if daemon.isRunning { Harness.kill9(daemon) } }

        let notifyLog = dir + "/notify.log"
        let notify = try Harness.start(["notify", "--brokers", broker.bootstrap, "--group", "notify-daemon-e2e",
                                        "--alertmanager", amURL, "--webhook", "http://127.0.0.1:\(receiver.port)/hook",
                                        "--state-dir", dir + "/notify-state"], log: notifyLog)
        defer { if notify.isRunning { Harness.kill9(notify) } }
        let expected = Set((AlertsEndToEndTests.expectedPhase1 + AlertsEndToEndTests.expectedPhase2).map(\.id))
        #expect(Harness.await(seconds: 60) { Set(receiver.delivered("/hook")) == expected },
                "got \(receiver.delivered("/hook")); see \(daemonLog) and \(notifyLog)")
        // Each request body is the alert exactly as the daemon published it.
        let onTopic = try AlertsEndToEndTests.readAlerts(brokers: broker.bootstrap, expected: expected.count, seconds: 20)
        let published = Set(onTopic.map(\.text))
        #expect(receiver.requests("/hook").allSatisfy { published.contains($0.body) })
        // Alertmanager answered 2xx to each (the quick form has no /metrics: the delivered log says so).
        #expect(Harness.await(seconds: 10) {
            let text = (try? String(contentsOfFile: dir + "/notify-state/delivered.log", encoding: .utf8)) ?? ""
            return expected.allSatisfy { text.contains(" alertmanager \($0)\n") }
        }, "see \(notifyLog)")
        Thread.sleep(forTimeInterval: 1)
        #expect(receiver.delivered("/hook").count == expected.count)
        notify.terminate(); notify.waitUntilExit()
        #expect(notify.terminationStatus == 0, "see \(notifyLog)")
        daemon.terminate(); daemon.waitUntilExit()
        let dead = (try? String(contentsOfFile: dir + "/notify-state/dead-letters.jsonl", encoding: .utf8)) ?? ""
        #expect(dead.isEmpty, "\(dead)")
    }

    /// systemd/tokenmeter-notify.service verifies without warnings and is hardened as the daemon's unit.
    @Test func theUnitVerifiesAndIsHardened() throws {
        let analyze = try SystemdTests.systemdAnalyze()
        let dir = try Harness.tempDir("notify-unit")
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
    enum Answer { case status(Int), retryAfter(Int), hang(seconds: Double) }
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
