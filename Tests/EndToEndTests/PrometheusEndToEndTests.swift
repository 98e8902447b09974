import Foundation
import Testing
import TokenmeterCore
import TrafficGenerator

/// The spend metrics as an operator sees them: a real Prometheus (Debian's `prometheus`, installed by
/// `.ci/run`) scrapes a real daemon on loopback that consumed generated traffic from the development
/// broker. The sum of the cost counters must equal the rollup files' total, the budget gauge the rollups'
/// spend in the rule's period, `promtool` must accept the scrape and the shipped rules, and every PromQL
/// expression of the shipped dashboard must return data: a renamed metric fails here, not in Grafana.
@Suite(.serialized) struct PrometheusEndToEndTests {
    static let prometheus = "/usr/bin/prometheus"
    static let promtool = "/usr/bin/promtool"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: prometheus) }

    static let repository: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)   // Tests/EndToEndTests/PrometheusEndToEndTests.swift
        return parts.joined(separator: "/")
    }()
    static var dashboardPath: String { repository + "/contrib/grafana/tokenmeter-spend.json" }
    static var rulesPath: String { repository + "/contrib/prometheus/tokenmeter.rules.yml" }

    /// Every `expr` of the dashboard's panels, with Grafana's variables given values Prometheus can read.
    static func dashboardExpressions() throws -> [String] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dashboardPath)))
        var out: [String] = []
        func walk(_ v: Any) {
            if let d = v as? [String: Any] {
                if let e = d["expr"] as? String { out.append(e) }
                d.values.forEach(walk)
            } else if let a = v as? [Any] {
                a.forEach(walk)
            }
        }
        walk(json)
        return out.map {
            $0.replacingOccurrences(of: "$__rate_interval", with: "1m").replacingOccurrences(of: "$__range", with: "1h")
                .replacingOccurrences(of: "$owner", with: ".*")
        }
    }

    /// The `expr:` lines of the rules file.
    static func ruleExpressions() throws -> [String] {
        try String(contentsOfFile: rulesPath, encoding: .utf8).split(separator: "\n").compactMap { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            return t.hasPrefix("expr: ") ? String(t.dropFirst(6)) : nil
        }
    }

    /// A port free on loopback right now (Prometheus takes a fixed address).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw HarnessError("no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Runs a tool to completion: exit status and everything it printed.
    static func tool(_ path: String, _ args: [String], stdin: Data? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// An instant query: the result's samples as (labels, value), nil when Prometheus answered an error.
    static func query(_ base: String, _ promql: String) -> [(labels: [String: String], value: String)]? {
        var c = URLComponents(string: base + "/api/v1/query")!
        c.queryItems = [URLQueryItem(name: "query", value: promql)]
        guard let answer = SystemdTests.get(c.url!.absoluteString), answer.status == 200,
              let o = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
              o["status"] as? String == "success", let data = o["data"] as? [String: Any] else { return nil }
        if data["resultType"] as? String == "scalar", let v = data["result"] as? [Any] { return [([:], "\(v[1])")] }
        return (data["result"] as? [[String: Any]] ?? []).map {
            (($0["metric"] as? [String: String]) ?? [:], "\((($0["value"] as? [Any]) ?? [0, "NaN"])[1])")
        }
    }

    @Test(.enabled(if: PrometheusEndToEndTests.available, "Debian's prometheus is not installed (.ci/run installs it)"),
          .timeLimit(.minutes(2)))
    func prometheusScrapesTheSpendMetricsAndEveryDashboardQueryAnswers() throws {
        let dir = try Harness.tempDir("prometheus")
        let broker = try Harness.Broker(partitions: 2, topics: ["llm-usage", "llm-usage-dlq", "llm-alerts"], log: dir + "/broker.log")
        defer { broker.stop() }

        // Three hours of traffic from 22:30: the newest hour (01:00-02:00) is the budget's current period.
        var c = TrafficConfig(seed: 17, start: RFC3339.parse("2026-11-20T22:30:00Z")!, events: 3_000, spanMillis: 3 * 3_600_000)
        c.lateFraction = 0
        c.duplicateFraction = 0
        var gen = TrafficGenerator(c)
        var expected = ExpectedTotals(prices: Catalogue.referencePrices, windows: [60_000, 3_600_000, 86_400_000])
        try gen.write(count: 3_000, toFile: dir + "/events.jsonl", into: &expected)

        let configPath = dir + "/tokenmeter.toml"
        let config = Harness.configText(brokers: broker.bootstrap, group: "prom", topic: "llm-usage", dlq: "llm-usage-dlq",
                                        rollups: dir + "/rollups", state: dir + "/state", idleClose: "2s")
            .replacingOccurrences(of: "\"heartbeat.interval.ms\" = \"500\"",
                                  with: "\"heartbeat.interval.ms\" = \"500\"\n\"statistics.interval.ms\" = \"1000\"")
            + """

            [metrics]
            dimensions = ["owner", "workflow", "model"]

            [[budget]]
            name = "all hourly"
            period = "hour"
            amount_usd = 1
            thresholds = [50, 100]
            forecast = true

            [[outcome_limit]]
            name = "per invoice"
            outcome = "invoice_processed"
            max_cost_usd = 0.5
            period = "day"
            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", dir + "/events.jsonl"],
                                log: dir + "/produce.log") == 0)
        let log = dir + "/run.log"
        let daemon = try Harness.start(["run", "--config", configPath], log: log)
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }
        var sums = try RollupSums(dir: dir + "/rollups")
        let complete = try Harness.await(seconds: 60) {
            sums = try RollupSums(dir: dir + "/rollups")
            return sums.rows == expected.byWindow
        }
        #expect(complete, "rollups incomplete; see \(log)")
        let address = try #require(SystemdTests.httpAddress(log: log))

        // promtool reads the scrape as Prometheus would and lints the names.
        let scrape = try #require(SystemdTests.get("http://\(address)/metrics")?.body)
        let lint = try Self.tool(Self.promtool, ["check", "metrics"], stdin: Data(scrape.utf8))
        #expect(lint.status == 0 && lint.output.isEmpty, "promtool check metrics: \(lint.output)")
        let rules = try Self.tool(Self.promtool, ["check", "rules", Self.rulesPath])
        #expect(rules.status == 0, "promtool check rules: \(rules.output)")

        let port = try Self.freePort()
        try """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        rule_files: ["\(Self.rulesPath)"]
        scrape_configs:
          - job_name: tokenmeter
            static_configs: [{targets: ["\(address)"]}]
        """.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prom = Process()
        prom.executableURL = URL(fileURLWithPath: Self.prometheus)
        prom.arguments = ["--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/tsdb",
                          "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
        FileManager.default.createFile(atPath: dir + "/prometheus.log", contents: nil)
        prom.standardOutput = FileHandle.nullDevice
        prom.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/prometheus.log"))
        try prom.run()
        defer { prom.terminate(); prom.waitUntilExit() }
        let base = "http://127.0.0.1:\(port)"

        // The money: every series summed equals the rollups' total (1e-6 relative: Prometheus keeps floats).
        let total = sums.total(window: 86_400_000)
        let want = Double(total.cost.femtos) / 1e15
        var got = 0.0
        let summed = Harness.await(seconds: 30) {
            guard let r = Self.query(base, "sum(tokenmeter_spend_cost_usd_total)"), let v = r.first.flatMap({ Double($0.value) }) else { return false }
            got = v
            return abs(v - want) <= 1e-6 * want
        }
        #expect(summed, "sum(tokenmeter_spend_cost_usd_total) = \(got), rollups say \(want); see \(dir)")
        #expect(want > 0)
        let requests = Self.query(base, "sum(tokenmeter_spend_requests_total)")?.first.flatMap { Double($0.value) }
        #expect(requests == Double(total.requests))
        let input = Self.query(base, "sum(tokenmeter_spend_tokens_total{kind=\"input\"})")?.first.flatMap { Double($0.value) }
        #expect(input == Double(total.inputTokens))

        // The budget's spend is the rollups' spend in its current period: the newest hour with events.
        let hours = sums.rows.filter { $0.key.windowMillis == 3_600_000 }
        let newest = try #require(hours.keys.map(\.windowStart).max())
        let hourCost = hours.filter { $0.key.windowStart == newest }.reduce(Money.zero) { $0 + $1.value.cost }
        let budget = Self.query(base, "tokenmeter_budget_spent_usd{rule=\"all hourly\"}")?.first
        #expect(budget.flatMap { Double($0.value) }.map { abs($0 - Double(hourCost.femtos) / 1e15) <= 1e-9 } == true,
                "budget spent \(String(describing: budget)), rollups' newest hour \(hourCost)")
        #expect(budget?.labels["scope"] == "all" && budget?.labels["period"] == "hour")
        let end = Self.query(base, "tokenmeter_budget_period_end_timestamp_seconds")?.first.flatMap { Double($0.value) }
        #expect(end == Double((newest + 3_600_000) / 1000))

        // Every metric the dashboard and the rules name exists on /metrics.
        let dashboard = try Self.dashboardExpressions(), ruleExprs = try Self.ruleExpressions()
        #expect(dashboard.count >= 15)
        let named = Set((dashboard + ruleExprs).flatMap { e in
            e.matches(of: /tokenmeter_[a-z_]+/).map { String($0.output) }
        })
        let families = Set(scrape.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) })
        #expect(named.subtracting(families).isEmpty, "not on /metrics: \(named.subtracting(families).sorted())")

        // Every dashboard expression answers with data (a rate needs two scrapes: awaited), every rule parses.
        var empty: [String] = []
        _ = Harness.await(seconds: 30) {
            empty = dashboard.filter { (Self.query(base, $0) ?? []).isEmpty }
            return empty.isEmpty
        }
        #expect(empty.isEmpty, "dashboard expressions without data: \(empty)")
        for e in ruleExprs { #expect(Self.query(base, e) != nil, "rule expression refused: \(e)") }
        let owners = SystemdTests.get(base + "/api/v1/label/owner/values?match[]=tokenmeter_spend_cost_usd_total")?.body ?? ""
        #expect(owners.contains("\"success\"") && Catalogue.owners.contains { owners.contains("\"\($0)\"") })

        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0, "see \(log)")
        try? FileManager.default.removeItem(atPath: dir)
    }
}
