import Foundation
import Testing
import TokenmeterCore

/// The demo's generated traffic (`tokenmeter generate`, every wire shape, events with and without a
/// `provider`) through `tokenmeter replay` with the demo's configuration: no rollup row has a null
/// provider for a model whose name starts with a prefix of the provider table (contract 1b), so
/// `report --by model,provider` shows one row per model, not a named one and a `-` one.
@Suite struct DemoProvidersTests {
    @Test func replayOfTheDemosTrafficNamesAProviderForEveryKnownModel() throws {
        let dir = try Harness.tempDir("demoproviders")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let events = dir + "/events.jsonl"
        let gen = try runTokenmeter(["generate", "--events", "3000", "--seed", "7", "--start", "2026-11-20T00:00:00Z", "--span", "6h"])
        #expect(gen.status == 0, "\(gen.stderr)")
        try gen.stdout.write(toFile: events, atomically: true, encoding: .utf8)
        // The input really has events that name no provider (else this test would prove nothing).
        let withoutProvider = gen.stdout.split(separator: "\n").filter {
            !$0.contains("\"provider\"") && !$0.contains("gen_ai.provider.name") && !$0.contains("gen_ai.system")
                && !$0.contains("\"type\":\"outcome\"") && $0.contains("\"model\"")
        }
        #expect(withoutProvider.count > 100, "\(withoutProvider.count)")

        let demo = try String(contentsOfFile: CommandLineTests.repoRoot + "/config/demo.toml", encoding: .utf8)
            .replacingOccurrences(of: "/tmp/tokenmeter-demo", with: dir)
        try demo.write(toFile: dir + "/demo.toml", atomically: true, encoding: .utf8)
        let r = try runTokenmeter(["replay", "--config", dir + "/demo.toml", events])
        #expect(r.status == 0, "\(r.stderr)")

        let table = ProviderPrefixes()
        var rows = 0, named = 0
        let root = dir + "/rollups"
        let e = try #require(FileManager.default.enumerator(atPath: root))
        for case let rel as String in e where rel.hasSuffix(".jsonl") {
            for line in try String(contentsOfFile: root + "/" + rel, encoding: .utf8).split(separator: "\n") {
                let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                guard let model = o["model"] as? String else { continue }   // outcome rows
                rows += 1
                // The block's or the event's provider may differ from the name's (Gemini through its
                // OpenAI-compatible endpoint is `openai`), but it is never missing.
                guard table.provider(forModel: model) != nil else { continue }
                named += 1
                #expect(o["provider"] as? String != nil, "null provider for \(model) in \(rel)")
            }
        }
        #expect(rows > 0 && named == rows, "\(named) of \(rows) rows have a model in the table")
    }

    /// `check-config --print` shows the effective prefix table: the file's additions and overrides, then the
    /// built-in entries (as comments, so that the printed file reads back the same); a bad entry is a
    /// `FILE:LINE:COL` problem and exit 78.
    @Test func checkConfigPrintsTheEffectiveProviderTable() throws {
        let dir = try Harness.tempDir("prefixes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.toml"
        try "[provider_prefixes]\n\"llama-\" = \"meta\"\n\"grok-\" = \"x-ai\"\n\n[kafka]\nbrokers = \"127.0.0.1:9092\"\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let r = try runTokenmeter(["check-config", "--config", path, "--print"])
        #expect(r.status == 0, "\(r.stderr)")
        let section = r.stdout.components(separatedBy: "[provider_prefixes]\n").dropFirst().first?.components(separatedBy: "\n\n").first ?? ""
        let lines = Set(section.split(separator: "\n").map(String.init))
        #expect(lines.isSuperset(of: ["\"llama-\" = \"meta\"", "\"grok-\" = \"x-ai\"", "# \"claude-\" = \"anthropic\"",
                                      "# \"us.anthropic.\" = \"bedrock\""]), "\(section)")
        #expect(!lines.contains("# \"grok-\" = \"xai\""))
        try "[provider_prefixes]\n\"llama-\" = 7\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = try runTokenmeter(["check-config", "--config", path])
        #expect(bad.status == 78)
        #expect(bad.stderr.contains("\(path):2:12: error: `provider_prefixes.\"llama-\"` must be a provider name"), "\(bad.stderr)")
    }
}

/// A made-up usage block through a real broker and daemon: the `unrecognized_usage` alert arrives once per
/// model per UTC day on the alerts topic, `/metrics` counts the requests in
/// `tokenmeter_unrecognized_usage_total`, and the rollup rows carry them in `unpriced_requests`.
@Suite struct UnrecognizedUsageEndToEndTests {
    @Test(.timeLimit(.minutes(3)))
    func madeUpBlockRaisesTheAlertOncePerModelPerDayWithTheMetricAndUnpricedRequests() throws {
        let dir = try Harness.tempDir("unrecognized")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try Harness.Broker(partitions: 1, topics: ["llm-usage", "llm-usage-dlq", "llm-alerts"], log: dir + "/broker.log")
        defer { broker.stop() }
        let configPath = dir + "/tokenmeter.toml"
        try Harness.configText(brokers: broker.bootstrap, group: "unrecognized", topic: "llm-usage", dlq: "llm-usage-dlq",
                               rollups: dir + "/rollups", state: dir + "/state", idleClose: "1s", windows: ["1d"])
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        func event(_ n: Int, _ model: String, _ time: String) -> String {
            #"{"id":"u\#(n)","timestamp":"\#(time)","workflow":"wf","owner":"team","model":"\#(model)","usage":{"tokens_in":100,"tokens_out":20}}"#
        }
        let lines = [event(0, "gpt-4o", "2026-11-20T10:00:00Z"), event(1, "gpt-4o", "2026-11-20T11:00:00Z"),
                     event(2, "mystery-9", "2026-11-20T12:00:00Z"), event(3, "gpt-4o", "2026-11-21T09:00:00Z")]
        let input = dir + "/events.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", input], log: dir + "/produce.log") == 0)
        let log = dir + "/run.log"
        let daemon = try Harness.start(["run", "--config", configPath], log: log)
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }

        let alerts = try AlertsEndToEndTests.readAlerts(brokers: broker.bootstrap, expected: 3, seconds: 60)
        #expect(alerts.map(\.key) == ["model=gpt-4o", "model=mystery-9", "model=gpt-4o"], "see \(log)")
        #expect(alerts.allSatisfy { $0.object["type"] as? String == "unrecognized_usage" && $0.object["usage_keys"] as? String == "tokens_in, tokens_out" })
        let day20 = RFC3339.parse("2026-11-20T00:00:00Z")!, day21 = RFC3339.parse("2026-11-21T00:00:00Z")!
        #expect(alerts.map(\.id) == [
            Alert.makeID(rule: "unrecognized_usage", scope: [KeyValue("model", "gpt-4o")], periodStart: day20, kind: .unrecognizedUsage, threshold: ""),
            Alert.makeID(rule: "unrecognized_usage", scope: [KeyValue("model", "mystery-9")], periodStart: day20, kind: .unrecognizedUsage, threshold: ""),
            Alert.makeID(rule: "unrecognized_usage", scope: [KeyValue("model", "gpt-4o")], periodStart: day21, kind: .unrecognizedUsage, threshold: ""),
        ])

        let address = try #require(Harness.await(seconds: 30) { SystemdTests.httpAddress(log: log) != nil } ? SystemdTests.httpAddress(log: log) : nil)
        #expect(Harness.await(seconds: 30) { RobustnessTests.metrics(address)["tokenmeter_unrecognized_usage_total"] == 4 },
                "metrics: \(RobustnessTests.metrics(address).filter { $0.key.contains("unrecognized") || $0.key.contains("unpriced") })")

        // The rollup rows (the day windows close by the wall clock once input goes quiet).
        var sums: [String: (requests: Int64, unpriced: Int64, input: Int64, cost: String)] = [:]
        #expect(Harness.await(seconds: 60) {
            sums = [:]
            guard let e = FileManager.default.enumerator(atPath: dir + "/rollups") else { return false }
            for case let rel as String in e where rel.hasSuffix(".jsonl") {
                for line in ((try? String(contentsOfFile: dir + "/rollups/" + rel, encoding: .utf8)) ?? "").split(separator: "\n") {
                    guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { continue }
                    func n(_ k: String) -> Int64 { (o[k] as? NSNumber)?.int64Value ?? -1 }
                    let key = "\((o["window_start"] as? String) ?? "") \((o["model"] as? String) ?? "-") \((o["provider"] as? String) ?? "-")"
                    var s = sums[key] ?? (0, 0, 0, "")
                    s.requests += n("requests"); s.unpriced += n("unpriced_requests"); s.input += n("input_tokens")
                    s.cost = RollupSums.numberText(line, field: "cost_usd")
                    sums[key] = s
                }
            }
            return sums.count == 3
        }, "rows: \(sums)")
        #expect(sums["2026-11-20T00:00:00Z gpt-4o openai"]?.requests == 2 && sums["2026-11-20T00:00:00Z gpt-4o openai"]?.unpriced == 2)
        #expect(sums["2026-11-20T00:00:00Z mystery-9 -"]?.unpriced == 1)
        #expect(sums["2026-11-21T00:00:00Z gpt-4o openai"]?.unpriced == 1)
        #expect(sums.values.allSatisfy { $0.input == 0 && Money.parse($0.cost) == .zero })
    }
}
