import Foundation
import Testing
@testable import TokenmeterCore

/// `config/prices.toml`, the maintained default price list: it loads with the real loader and a few
/// lookups resolve as its comments say.
@Suite struct DefaultPricesTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("config/prices.toml").path

    static func table() throws -> PriceTable {
        switch ConfigLoader.load(path: path) {
        case .success(let c):
            #expect(c.budgets.isEmpty && c.spikes.isEmpty && c.outcomeLimits.isEmpty)
            return PriceTable(c.prices)
        case .failure(let e):
            Issue.record("config/prices.toml does not load: \(e.diagnostics.map(\.description))")
            throw e
        }
    }

    func input(_ t: PriceTable, _ model: String, provider: String? = nil, at: String = "2025-11-30T00:00:00Z",
               inputTokens: Int64 = 1000, tier: String? = nil) -> String? {
        let c = t.candidates(model: model, provider: provider)
        return t.select(c, at: RFC3339.parse(at)!, inputTokens: inputTokens, serviceTier: tier)?.input.description
    }

    @Test func loadsAndResolves() throws {
        let t = try Self.table()
        #expect(t.entries.count >= 50)
        #expect(t.entries.allSatisfy { $0.effectiveFrom != nil })
        // OpenAI, tiers and snapshots.
        #expect(input(t, "gpt-4o-mini-2024-07-18") == "0.15")
        #expect(input(t, "gpt-5", provider: "openai") == "1.25")
        #expect(input(t, "gpt-5", tier: "priority") == "2.5")
        #expect(input(t, "gpt-5-2025-08-07", tier: "flex") == "0.625")
        #expect(input(t, "gpt-5", tier: "default") == "1.25")         // OpenAI's name for Standard
        #expect(input(t, "gpt-5-pro") == nil)                          // not listed: unpriced, not mispriced
        // o3's price cut.
        #expect(input(t, "o3", at: "2025-05-01T00:00:00Z") == "10")
        #expect(input(t, "o3", at: "2025-06-10T00:00:00Z") == "2")
        #expect(input(t, "o3", at: "2025-04-01T00:00:00Z") == nil)
        // Anthropic: 1h cache writes and long context above 200,000 input tokens.
        let sonnet = t.candidates(model: "claude-sonnet-4-5-20250929", provider: "anthropic")
        let now = RFC3339.parse("2025-11-30T00:00:00Z")!
        let short = try #require(t.select(sonnet, at: now, inputTokens: 200_000, serviceTier: nil))
        #expect(short.input.description == "3" && short.cacheWrite1h?.description == "6")
        #expect(t.select(sonnet, at: now, inputTokens: 200_001, serviceTier: nil)?.output.description == "22.5")
        #expect(input(t, "claude-opus-4-5") == "5")
        #expect(input(t, "claude-haiku-4-5-20251001") == "1")
        // Google: long context, SDK prefixes, flash vs flash-lite.
        #expect(input(t, "gemini-2.5-pro", inputTokens: 250_000) == "2.5")
        #expect(input(t, "models/gemini-2.5-pro") == "1.25")
        #expect(input(t, "models/gemini-2.5-flash") == "0.3")
        #expect(input(t, "gemini-2.5-flash-lite") == "0.1")
        // Exact cost of a Sonnet call with a 1h cache write: 1000 plain + 2000 (1h) cache write + 500 output.
        let cost = t.cost(of: TokenCounts(input: 3000, cacheWrite: 2000, cacheWrite1h: 2000, output: 500),
                          candidates: sonnet, at: now, tier: t.standardKey)
        #expect(cost == Money.parse("0.0225"))   // 1000 x 3 + 2000 x 6 + 500 x 15 = 22,500 per 1M
    }

    /// Every model of both recorded sets that has a public list price is priced by the default list; the
    /// ones left unpriced are exactly those its last section names as having none.
    @Test func coversEveryRecordedModelWithAPublicPrice() throws {
        let t = try Self.table()
        var unpriced = Set<String>()
        let d = EventDecoder()
        for set in ["real-payloads", "real-payloads-2"] {
            for line in try jsonLines(sharedTestdata("\(set)/events.jsonl")) {
                #expect(d.decode(line) == nil)
                let ev = d.event
                let provider = d.string(ev.provider)
                for c in ev.contributions {
                    guard let model = d.string(c.model) else { unpriced.insert("(no model)"); continue }
                    let candidates = t.candidates(model: model, provider: provider)
                    if t.select(candidates, at: ev.timestamp!, inputTokens: c.tokens.input, serviceTier: d.string(ev.serviceTier)) == nil {
                        unpriced.insert(model)
                    }
                }
            }
        }
        #expect(unpriced == ["(no model)", "claude-fable-5", "deepseek/deepseek-r1", "moonshotai/kimi-k2",
                             "models/gemini-2.5-flash-preview-05-20"])
        let text = try String(contentsOfFile: Self.path, encoding: .utf8)
        let listed = try #require(text.range(of: "with no public list price")).upperBound
        for model in unpriced where model != "(no model)" { #expect(text[listed...].contains(model), "\(model)") }
        // The hosts' own prices.
        #expect(input(t, "grok-3-mini", provider: "xai", at: "2026-11-20T12:00:00Z") == "0.3")
        #expect(input(t, "command-r-08-2024", at: "2026-11-20T12:00:00Z") == "0.15")
        #expect(input(t, "deepseek-chat", provider: "deepseek", at: "2026-11-20T12:00:00Z") != nil)
        #expect(input(t, "mistral-small-latest", at: "2026-11-20T12:00:00Z") == "0.1")
        #expect(input(t, "us.anthropic.claude-sonnet-4-6", provider: "bedrock", at: "2026-11-20T12:00:00Z") == "3.3")
    }
}
