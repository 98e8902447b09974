import Foundation
import Testing
@testable import TokenmeterCore

/// A usage block no row reads is never a silent zero (contract 1b): fed a made-up block shape, the pipeline
/// counts the request with zero tokens in the row's `unpriced_requests`, counts it in the metric behind
/// `tokenmeter_unrecognized_usage_total`, and raises `unrecognized_usage` once per model per UTC day,
/// naming the block's keys; the same holds in spend mode, where an alert shard judges it, and across a
/// checkpoint restore.
@Suite("Unrecognised usage blocks")
struct UnrecognizedUsageTests {
    static func config(spend: Bool = false) -> TokenmeterConfig {
        var c = TokenmeterConfig()
        c.kafka.topics = ["usage"]
        c.rollups.windows = [DurationSpec(millis: 86_400_000, label: "1d")]
        c.rollups.dir = "/nonexistent/never-written"
        c.prices = [PriceEntry(model: "gpt-4o", input: PricePerMillion.parse("2.5")!, output: PricePerMillion.parse("10")!)]
        if spend {
            c.kafka.changelogTopic = "changelog"
            c.kafka.spendTopic = "spend"
        }
        return c
    }

    /// A made-up block shape (no provider's): `tokens_in` / `tokens_out`.
    static func event(_ n: Int, model: String, day: Int, hour: Int = 10) -> String {
        #"{"id":"u\#(n)","timestamp":"2026-11-\#(20 + day)T\#(hour):00:00Z","workflow":"wf","owner":"team","model":"\#(model)","usage":{"tokens_in":100,"tokens_out":20,"meta":{"x":1}}}"#
    }

    static func feed(_ p: Pipeline, _ lines: [String]) {
        for (i, line) in lines.enumerated() {
            let r = Array(line.utf8).withUnsafeBytes {
                p.process($0, topicIndex: 0, partition: 0, offset: Int64(i), messageTime: nil, wallNow: 0)
            }
            #expect(r == .counted, "\(line): \(r)")
        }
    }

    static let lines = [
        event(0, model: "gpt-4o", day: 0), event(1, model: "gpt-4o", day: 0, hour: 11), event(2, model: "mystery-9", day: 0),
        event(3, model: "gpt-4o", day: 1), event(4, model: "gpt-4o", day: 1, hour: 12),
    ]

    static func dayStart(_ day: Int) -> EpochMillis { RFC3339.parse("2026-11-\(20 + day)T00:00:00Z")! }

    @Test func madeUpBlockCountsUnpricedAndAlertsOncePerModelPerDay() throws {
        let p = Pipeline(config: Self.config(), instance: "t")
        p.alerts.now = { 42 }
        Self.feed(p, Self.lines)
        #expect(p.metrics.unrecognizedUsage == 5)
        #expect(p.metrics.unpricedRequests == 5)
        let alerts = p.alerts.takePending()
        // gpt-4o has a price, yet no `unpriced_model`: its price is known, its tokens are not.
        #expect(alerts.allSatisfy { $0.kind == .unrecognizedUsage && $0.severity == .info && $0.spent == nil })
        #expect(alerts.map(\.key) == ["model=gpt-4o", "model=mystery-9", "model=gpt-4o"])
        #expect(alerts.map(\.periodStart) == [Self.dayStart(0), Self.dayStart(0), Self.dayStart(1)])
        for a in alerts {
            #expect(a.id == Alert.makeID(rule: "unrecognized_usage", scope: a.scope, periodStart: a.periodStart,
                                         kind: .unrecognizedUsage, threshold: ""))
            #expect(a.message.contains("keys: tokens_in, tokens_out, meta"), "\(a.message)")
            #expect(a.json.contains(#""type":"unrecognized_usage""#) && a.json.contains(#""usage_keys":"tokens_in, tokens_out, meta""#))
        }
        #expect(Set(alerts.map(\.id)).count == 3)
        // The rollup rows: the requests, zero tokens, no cost, every request unpriced.
        p.closeAll()
        var rows: [String: RollupCounters] = [:]
        for w in p.pending {
            for (key, c) in w.window.rows { rows["\(RFC3339.day(w.window.start)) \(p.dimensions.name(key.model) ?? "-")"] = c }
        }
        #expect(Set(rows.keys) == ["2026-11-20 gpt-4o", "2026-11-20 mystery-9", "2026-11-21 gpt-4o"])
        for (name, c) in rows {
            let n: Int64 = name == "2026-11-20 mystery-9" ? 1 : 2
            #expect(c.requests == n && c.unpricedRequests == n && c.cost == .zero, "\(name): \(c)")
            #expect(c.input == 0 && c.output == 0 && c.cacheRead == 0 && c.reasoning == 0, "\(name): \(c)")
        }
        // The provider comes from the model name (the block names none).
        for w in p.pending {
            for (key, _) in w.window.rows where p.dimensions.name(key.model) == "gpt-4o" {
                #expect(p.dimensions.name(key.provider) == "openai")
            }
        }
    }

    @Test func theRequestIsNotCountedTwiceAsUnpricedModelAndAProducerCostStays() throws {
        let p = Pipeline(config: Self.config(), instance: "t")
        Self.feed(p, [#"{"workflow":"wf","owner":"team","model":"gpt-4o","timestamp":"2026-11-20T10:00:00Z","cost_usd":0.5,"usage":{"odd":1}}"#])
        #expect(p.metrics.unrecognizedUsage == 1 && p.metrics.unpricedRequests == 0)
        #expect(p.alerts.takePending().map(\.kind) == [.unrecognizedUsage])
    }

    @Test func alreadyAlertedTodaySurvivesACheckpoint() throws {
        let p = Pipeline(config: Self.config(), instance: "t")
        Self.feed(p, Array(Self.lines.prefix(1)))
        #expect(p.alerts.takePending().count == 1)
        let bytes = p.checkpointBytes()
        let q = Pipeline(config: Self.config(), instance: "t")
        _ = try q.decodeCheckpoint(bytes, restoreAlerts: true)
        Self.feed(q, [Self.event(10, model: "gpt-4o", day: 0, hour: 15)])
        #expect(q.alerts.takePending().isEmpty)
        Self.feed(q, [Self.event(11, model: "gpt-4o", day: 1)])
        #expect(q.alerts.takePending().map(\.kind) == [.unrecognizedUsage])
        // Without the restore the same event alerts again: the restore is what stopped it.
        let r = Pipeline(config: Self.config(), instance: "t")
        Self.feed(r, [Self.event(10, model: "gpt-4o", day: 0, hour: 15)])
        #expect(r.alerts.takePending().count == 1)
    }

    @Test func spendModeJudgesOnTheModelsShard() throws {
        let config = Self.config(spend: true)
        let p = Pipeline(config: config, instance: "t")
        Self.feed(p, Self.lines)
        #expect(p.alerts.takePending().isEmpty)   // judged by the shards, not here
        let acc = p.takeSpend(topicIndex: 0, partition: 0)
        let count = 5
        let router = SpendRouter(budgets: [], spikes: [], outcomeLimits: [], shardCount: count)
        let payloads = router.route(acc, names: p.dimensions.names)
        #expect(Set(payloads.keys) == [SpendShard.unrecognized(model: "gpt-4o", count: count),
                                       SpendShard.unrecognized(model: "mystery-9", count: count)])
        var alerts: [Alert] = []
        var names = StringTable()
        for shard in 0..<count {
            let engine = AlertEngine(budgets: [], spikes: [], outcomeLimits: [], now: { 42 }, shard: SpendShard(index: shard, count: count))
            // Every shard sees every payload (as if misrouted): only the owner judges.
            for (_, bytes) in payloads { engine.apply(try SpendRouter.decode(bytes, names: &names), names: names) }
            alerts += engine.takePending()
        }
        #expect(alerts.map(\.key).sorted() == ["model=gpt-4o", "model=gpt-4o", "model=mystery-9"])
        #expect(alerts.allSatisfy { $0.kind == .unrecognizedUsage && $0.message.contains("keys: tokens_in, tokens_out, meta") })
        // The same ids as a single instance gives.
        let single = Pipeline(config: Self.config(), instance: "t")
        Self.feed(single, Self.lines)
        #expect(Set(alerts.map(\.id)) == Set(single.alerts.takePending().map(\.id)))
    }

    @Test func alertStateOfTheEarlierFormatIsStillRead() throws {
        // Version 1 of the alert state had no unrecognised-usage days.
        var w = BinaryWriter()
        w.u32(AlertEngine.stateMagic); w.u32(1)
        for _ in 0..<4 { w.count(0) }
        var names = StringTable()
        var r = BinaryReader(w.bytes)
        let engine = AlertEngine(budgets: [], spikes: [], outcomeLimits: [])
        try engine.decodeState(from: &r, names: &names)
        #expect(r.remaining == 0)
    }

    @Test func namesInMessagesAreCutWithAMarker() {
        let long = String(repeating: "é", count: 300)
        let cut = AlertText.truncated(long)
        #expect(cut.utf8.count <= AlertText.maxQuotedBytes && cut.hasSuffix(Alert.truncationMarker))
        #expect(AlertText.truncated("short") == "short")
    }
}
