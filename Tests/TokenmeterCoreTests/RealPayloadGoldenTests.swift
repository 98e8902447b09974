import Foundation
import Testing
@testable import TokenmeterCore

/// The golden test: every event of both recorded sets (`shared/testdata/real-payloads` and
/// `real-payloads-2`, each with its `events.jsonl`, `prices.toml` and `expected.jsonl`), through the
/// real `ConfigLoader` (the set's `prices.toml`), the real `EventDecoder` and the real `PriceTable`, reproduces
/// `expected.jsonl` per contribution: every token bucket exactly, the cost exactly (`Money`, femto-dollars;
/// the expected values have at most 9 decimals), `unpriced: 1` if and only if no entry applies.
///
/// Done twice: once by hand the way `Pipeline` prices (event provider, tier key, `min_input_tokens` on the
/// contribution's whole input, the event's timestamp as effective time), and once through `Pipeline`
/// itself (`process`, `closeAll`, then the rows it would write), so the real path is what is tested.
@Suite("Real payloads: golden decode + price")
struct RealPayloadGoldenTests {
    /// One expected contribution: `expected.jsonl`'s fields.
    struct Want: Equatable, CustomStringConvertible {
        var requests: Int64 = 0
        var tokens = TokenCounts()
        var cost: Money = .zero
        var unpriced: Int64 = 0
        var description: String {
            "req=\(requests) in=\(tokens.input) cr=\(tokens.cacheRead) cw=\(tokens.cacheWrite) cw1h=\(tokens.cacheWrite1h) "
                + "out=\(tokens.output) reas=\(tokens.reasoning) cost=\(cost.decimalString(decimals: 15)) unpriced=\(unpriced)"
        }
    }

    /// One recorded set: its folder, how many events and contributions it has and how many of those are
    /// unpriced (by the contract as corrected, see `correction`).
    struct PayloadSet: CustomTestStringConvertible, Sendable {
        var dir: String
        var events: Int
        var contributions: Int
        var unpriced: Int
        var prices: Int
        var testDescription: String { dir }
    }

    static let sets = [
        PayloadSet(dir: "real-payloads", events: 84, contributions: 86, unpriced: 3, prices: 34),
        PayloadSet(dir: "real-payloads-2", events: 99, contributions: 101, unpriced: 7, prices: 58),
    ]

    /// Where the first set's `expected.jsonl` predates the corrected contract (1b): `real-70` is a Gemini
    /// cache-creation block holding only `totalTokenCount`, which no row reads. Such a block is no longer a
    /// silent zero: its request is counted as one whose cost is unknown (`unpriced_requests`), and it raises
    /// `unrecognized_usage`. Its tokens stay 0 and its cost $0.
    static func correction(_ id: String, _ want: inout Want) {
        if id == "real-70" { want.unpriced = 1 }
    }

    static func loadPrices(_ set: String = "real-payloads") throws -> [PriceEntry] {
        let path = sharedTestdata("\(set)/prices.toml").path
        switch ConfigLoader.load(path: path) {
        case .success(let c): return c.prices
        case .failure(let e):
            Issue.record("prices.toml does not load: \(e.diagnostics.map(\.description))")
            throw e
        }
    }

    /// id -> model ("<null>" for none) -> expected contribution, and the ids in file order.
    static func loadExpected(_ set: String = "real-payloads") throws -> (byID: [String: [String: Want]], count: Int) {
        var out: [String: [String: Want]] = [:]
        var count = 0
        for line in try jsonLines(sharedTestdata("\(set)/expected.jsonl")) {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = try #require(obj["id"] as? String)
            var per: [String: Want] = [:]
            for c in try #require(obj["contributions"] as? [[String: Any]]) {
                func n(_ k: String) throws -> Int64 { try #require((c[k] as? NSNumber)?.int64Value, "\(id): no \(k)") }
                let model = (c["model"] as? String) ?? "<null>"
                #expect(per[model] == nil, "\(id): model \(model) twice")
                let costText = try #require(c["cost"] as? String, "\(id): cost must be a string")
                var want = Want(requests: try n("requests"),
                                tokens: TokenCounts(input: try n("input"), cacheRead: try n("cache_read"),
                                                    cacheWrite: try n("cache_write"), cacheWrite1h: try n("cache_write_1h"),
                                                    output: try n("output"), reasoning: try n("reasoning")),
                                cost: try #require(Money.parse(costText)), unpriced: try n("unpriced"))
                correction(id, &want)
                per[model] = want
                count += 1
            }
            out[id] = per
        }
        return (out, count)
    }

    @Test(arguments: sets)
    func pricesTomlLoadsWithTheRealLoader(_ set: PayloadSet) throws {
        let prices = try Self.loadPrices(set.dir)
        #expect(prices.count == set.prices)
        #expect(prices.allSatisfy { $0.origin.hasPrefix(sharedTestdata("\(set.dir)/prices.toml").path + ":") })
        let opus = try #require(prices.first { $0.model == "claude-opus-4-6" })
        #expect(opus.cacheWrite1h == PricePerMillion.parse("10"))
        #expect(opus.input == PricePerMillion.parse("5.0"))
    }

    /// Decoder + `PriceTable` by hand, exactly as `Pipeline.apply` prices a contribution.
    @Test(arguments: sets)
    func everyContributionDecodedAndPricedExactly(_ set: PayloadSet) throws {
        let table = PriceTable(try Self.loadPrices(set.dir))
        let (want, wantCount) = try Self.loadExpected(set.dir)
        #expect(wantCount == set.contributions)   // two events of each set touch two models
        let events = try jsonLines(sharedTestdata("\(set.dir)/events.jsonl"))
        #expect(events.count == set.events)
        let d = EventDecoder()
        var contributions = 0, unpriced = 0
        var total = Money.zero, wantTotal = Money.zero
        for line in events {
            let r = d.decode(line)
            #expect(r == nil, "\(line.prefix(80)): \(r?.description ?? "")")
            guard r == nil else { continue }
            let ev = d.event
            let id = try #require(d.string(ev.id))
            let time = try #require(ev.timestamp, "\(id): no timestamp")
            let provider = d.string(ev.provider)
            let tier = ev.serviceTier.isAbsent ? table.standardKey : table.tierKey(d.string(ev.serviceTier))
            var got: [String: Want] = [:]
            for c in ev.contributions {
                let model = d.string(c.model)
                var cost: Money? = nil
                if let override = ev.costOverride {
                    cost = override
                } else if !ev.unrecognizedUsage.isAbsent {
                    cost = nil   // a block no row reads: its cost is unknown
                } else if let model {
                    let candidates = table.candidates(model: model, provider: provider)
                    if let i = table.selectIndex(candidates, at: time, inputTokens: c.tokens.input, tier: tier) {
                        cost = table.rates[i].cost(of: c.tokens)
                        // The convenience path agrees with the hot path.
                        let e = table.select(candidates, at: time, inputTokens: c.tokens.input, serviceTier: d.string(ev.serviceTier))
                        #expect(e == table.entries[i], "\(id): select and selectIndex disagree")
                    }
                }
                var w = got[model ?? "<null>"] ?? Want()
                w.requests += 1
                w.tokens.input += c.tokens.input; w.tokens.cacheRead += c.tokens.cacheRead
                w.tokens.cacheWrite += c.tokens.cacheWrite; w.tokens.cacheWrite1h += c.tokens.cacheWrite1h
                w.tokens.output += c.tokens.output; w.tokens.reasoning += c.tokens.reasoning
                if let cost { w.cost += cost } else { w.unpriced += 1 }
                got[model ?? "<null>"] = w
            }
            let expected = try #require(want[id], "no expectation for \(id)")
            #expect(Set(got.keys) == Set(expected.keys), "\(id): models \(got.keys.sorted()) vs \(expected.keys.sorted())")
            for (model, e) in expected {
                #expect(got[model] == e, "\(id) \(model):\n  got  \(got[model]?.description ?? "nothing")\n  want \(e)")
                // To the nano-dollar as printed, too.
                #expect(got[model]?.cost.decimalString(decimals: 9) == e.cost.decimalString(decimals: 9))
                wantTotal += e.cost
            }
            for g in got.values { contributions += 1; unpriced += Int(g.unpriced); total += g.cost }
        }
        #expect(contributions == set.contributions)
        #expect(unpriced == set.unpriced)
        #expect(total == wantTotal)
    }

    /// The same through `Pipeline`: one pipeline per event (so each event's rows can be told apart and
    /// de-duplication cannot hide anything), `process`, `closeAll`, then the rows of the closed windows.
    /// Rollup rows carry no `cache_write_1h` bucket (contract section 3), so that one is checked above.
    @Test(arguments: sets)
    func everyEventThroughThePipeline(_ set: PayloadSet) throws {
        let prices = try Self.loadPrices(set.dir)
        let (want, _) = try Self.loadExpected(set.dir)
        let events = try jsonLines(sharedTestdata("\(set.dir)/events.jsonl"))
        var config = TokenmeterConfig()
        config.prices = prices
        config.kafka.topics = ["golden"]
        config.rollups.windows = [DurationSpec(millis: 3_600_000, label: "1h")]
        config.rollups.dir = "/nonexistent/never-written"
        var sumCost = Money.zero, sumWant = Money.zero
        var rowsSeen = 0
        for (n, line) in events.enumerated() {
            let id = String(line.split(separator: "\"")[3])
            let expected = try #require(want[id], "no expectation for \(id)")
            let pipeline = Pipeline(config: config, instance: "golden")
            let result = Array(line.utf8).withUnsafeBytes { raw in
                pipeline.process(raw, topicIndex: 0, partition: 0,
                                 offset: Int64(n), messageTime: nil, wallNow: 0)
            }
            #expect(result == .counted, "\(id): \(result)")
            pipeline.closeAll()
            var got: [String: RollupCounters] = [:]
            for p in pipeline.pending {
                #expect(p.window.kind == .final)
                #expect(p.window.start == RFC3339.parse("2026-11-20T12:00:00Z"))
                for (key, counters) in p.window.rows {
                    let model = pipeline.dimensions.name(key.model) ?? "<null>"
                    #expect(got[model] == nil, "\(id): two rows for \(model)")
                    got[model] = counters
                    rowsSeen += 1
                }
            }
            #expect(Set(got.keys) == Set(expected.keys), "\(id): models \(got.keys.sorted()) vs \(expected.keys.sorted())")
            for (model, e) in expected {
                guard let g = got[model] else { continue }
                let t = e.tokens
                #expect(g.requests == e.requests && g.input == t.input && g.cacheRead == t.cacheRead
                        && g.cacheWrite == t.cacheWrite && g.output == t.output && g.reasoning == t.reasoning,
                        "\(id) \(model): tokens \(g) vs \(e)")
                #expect(g.cost == e.cost, "\(id) \(model): cost \(g.cost.decimalString(decimals: 15)) vs \(e.cost)")
                #expect(g.unpricedRequests == e.unpriced, "\(id) \(model): unpriced \(g.unpricedRequests) vs \(e.unpriced)")
                #expect(g.errors == 0)
                sumCost += g.cost
                sumWant += e.cost
            }
            #expect(pipeline.metrics.unpricedRequests == expected.values.reduce(0) { $0 + $1.unpriced })
        }
        #expect(rowsSeen == set.contributions)
        #expect(sumCost == sumWant)
    }

    /// The cases the corrected contract is about, each by name, through `Pipeline` (rows, cost, unpriced
    /// count, the unrecognised-block metric and alert) against the set's expectations.
    struct Named: CustomTestStringConvertible, Sendable {
        var name: String
        var set: String
        var ids: [String]
        var unrecognized = false
        var testDescription: String { name }
    }

    static let named = [
        Named(name: "xAI Chat: reasoning left out of completion_tokens and listed", set: "real-payloads-2",
              ids: ["real2-83", "real2-84", "real2-85", "real2-86"]),
        Named(name: "xAI Responses: output includes reasoning", set: "real-payloads-2", ids: ["real2-87"]),
        Named(name: "Amazon Bedrock Converse", set: "real-payloads-2", ids: ["real2-90"]),
        Named(name: "Google Gemini Interactions", set: "real-payloads-2", ids: ["real2-91"]),
        Named(name: "Cohere v2 billed units", set: "real-payloads-2", ids: ["real2-92"]),
        Named(name: "Gemini block without promptTokenCount", set: "real-payloads-2", ids: ["real2-93"]),
        Named(name: "Anthropic iterations: [] is the same as none", set: "real-payloads-2", ids: ["real2-61", "real2-62"]),
        Named(name: "Anthropic iterations: an advisor on a second model", set: "real-payloads-2", ids: ["real2-79", "real2-88"]),
        Named(name: "Gemini totalTokenCount only: unrecognised, never a silent zero", set: "real-payloads", ids: ["real-70"],
              unrecognized: true),
    ]

    @Test(arguments: named)
    func namedCase(_ c: Named) throws {
        let (want, _) = try Self.loadExpected(c.set)
        var byID: [String: String] = [:]
        for line in try jsonLines(sharedTestdata("\(c.set)/events.jsonl")) { byID[String(line.split(separator: "\"")[3])] = line }
        var config = TokenmeterConfig()
        config.prices = try Self.loadPrices(c.set)
        config.kafka.topics = ["golden"]
        config.rollups.windows = [DurationSpec(millis: 3_600_000, label: "1h")]
        config.rollups.dir = "/nonexistent/never-written"
        for id in c.ids {
            let line = try #require(byID[id])
            let expected = try #require(want[id])
            let pipeline = Pipeline(config: config, instance: "golden")
            pipeline.alerts.now = { 0 }
            let result = Array(line.utf8).withUnsafeBytes {
                pipeline.process($0, topicIndex: 0, partition: 0, offset: 0, messageTime: nil, wallNow: 0)
            }
            #expect(result == .counted, "\(id): \(result)")
            pipeline.closeAll()
            var got: [String: RollupCounters] = [:]
            for p in pipeline.pending {
                for (key, counters) in p.window.rows { got[pipeline.dimensions.name(key.model) ?? "<null>"] = counters }
            }
            #expect(Set(got.keys) == Set(expected.keys), "\(id)")
            for (model, e) in expected {
                let g = try #require(got[model], "\(id) \(model)")
                #expect(g.requests == e.requests && g.input == e.tokens.input && g.cacheRead == e.tokens.cacheRead
                        && g.cacheWrite == e.tokens.cacheWrite && g.output == e.tokens.output
                        && g.reasoning == e.tokens.reasoning, "\(id) \(model): \(g) vs \(e)")
                #expect(g.cost == e.cost, "\(id) \(model): cost \(g.cost.decimalString(decimals: 15)) vs \(e.cost)")
                #expect(g.unpricedRequests == e.unpriced, "\(id) \(model)")
            }
            let alerts = pipeline.alerts.takePending().filter { $0.kind == .unrecognizedUsage }
            #expect(pipeline.metrics.unrecognizedUsage == (c.unrecognized ? 1 : 0), "\(id)")
            #expect(alerts.count == (c.unrecognized ? 1 : 0), "\(id)")
            if c.unrecognized { #expect(alerts.first?.message.contains("keys: totalTokenCount") == true) }
        }
    }
}
