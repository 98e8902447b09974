import Foundation
import Testing
@testable import TokenmeterCore

/// The golden test of issue 3: every event of `shared/testdata/real-payloads/events.jsonl`, through the
/// real `ConfigLoader` (its `prices.toml`), the real `EventDecoder` and the real `PriceTable`, reproduces
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

    static func loadPrices() throws -> [PriceEntry] {
        let path = sharedTestdata("real-payloads/prices.toml").path
        switch ConfigLoader.load(path: path) {
        case .success(let c): return c.prices
        case .failure(let e):
            Issue.record("prices.toml does not load: \(e.diagnostics.map(\.description))")
            throw e
        }
    }

    /// id -> model ("<null>" for none) -> expected contribution, and the ids in file order.
    static func loadExpected() throws -> (byID: [String: [String: Want]], count: Int) {
        var out: [String: [String: Want]] = [:]
        var count = 0
        for line in try jsonLines(sharedTestdata("real-payloads/expected.jsonl")) {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = try #require(obj["id"] as? String)
            var per: [String: Want] = [:]
            for c in try #require(obj["contributions"] as? [[String: Any]]) {
                func n(_ k: String) throws -> Int64 { try #require((c[k] as? NSNumber)?.int64Value, "\(id): no \(k)") }
                let model = (c["model"] as? String) ?? "<null>"
                #expect(per[model] == nil, "\(id): model \(model) twice")
                let costText = try #require(c["cost"] as? String, "\(id): cost must be a string")
                per[model] = Want(requests: try n("requests"),
                                  tokens: TokenCounts(input: try n("input"), cacheRead: try n("cache_read"),
                                                      cacheWrite: try n("cache_write"), cacheWrite1h: try n("cache_write_1h"),
                                                      output: try n("output"), reasoning: try n("reasoning")),
                                  cost: try #require(Money.parse(costText)), unpriced: try n("unpriced"))
                count += 1
            }
            out[id] = per
        }
        return (out, count)
    }

    @Test func pricesTomlLoadsWithTheRealLoader() throws {
        let prices = try Self.loadPrices()
        #expect(prices.count == 34)
        #expect(prices.allSatisfy { $0.origin.hasPrefix(sharedTestdata("real-payloads/prices.toml").path + ":") })
        let opus = try #require(prices.first { $0.model == "claude-opus-4-6" })
        #expect(opus.cacheWrite1h == PricePerMillion.parse("10"))
        #expect(opus.input == PricePerMillion.parse("5.0"))
    }

    /// Decoder + `PriceTable` by hand, exactly as `Pipeline.apply` prices a contribution.
    @Test func everyContributionDecodedAndPricedExactly() throws {
        let table = PriceTable(try Self.loadPrices())
        let (want, wantCount) = try Self.loadExpected()
        #expect(wantCount == 86)   // 84 events, two of them touch two models (or one unpriced null model)
        let events = try jsonLines(sharedTestdata("real-payloads/events.jsonl"))
        #expect(events.count == 84)
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
        #expect(contributions == 86)
        #expect(unpriced == 2)
        #expect(total == wantTotal)
    }

    /// The same through `Pipeline`: one pipeline per event (so each event's rows can be told apart and
    /// de-duplication cannot hide anything), `process`, `closeAll`, then the rows of the closed windows.
    /// Rollup rows carry no `cache_write_1h` bucket (contract section 3), so that one is checked above.
    @Test func everyEventThroughThePipeline() throws {
        let prices = try Self.loadPrices()
        let (want, _) = try Self.loadExpected()
        let events = try jsonLines(sharedTestdata("real-payloads/events.jsonl"))
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
        #expect(rowsSeen == 86)
        #expect(sumCost == sumWant)
    }
}
