import Foundation
import Testing
@testable import TokenmeterCore

private func usd(_ s: String) -> PricePerMillion { PricePerMillion.parse(s)! }

private func entry(_ model: String, provider: String? = nil, input: String = "1", output: String = "2",
                   cacheRead: String? = nil, cacheWrite: String? = nil, cacheWrite1h: String? = nil,
                   reasoning: String? = nil, from: String? = nil, tier: String? = nil, minInput: Int64? = nil,
                   origin: String = "") -> PriceEntry {
    PriceEntry(model: model, provider: provider, input: usd(input), cacheRead: cacheRead.map(usd),
               cacheWrite: cacheWrite.map(usd), cacheWrite1h: cacheWrite1h.map(usd), output: usd(output),
               reasoning: reasoning.map(usd), effectiveFrom: from.map { RFC3339.parse($0, allowDateOnly: true)! },
               serviceTier: tier, minInputTokens: minInput, origin: origin.isEmpty ? model : origin)
}

private let now = RFC3339.parse("2026-11-20T12:00:00Z")!

/// Which entry (by origin) prices the event; nil when unpriced.
private func pick(_ table: PriceTable, _ model: String, provider: String? = nil, at: EpochMillis = now,
                  input: Int64 = 1000, tier: String? = nil) -> String? {
    let c = table.candidates(model: model, provider: provider)
    let viaString = table.select(c, at: at, inputTokens: input, serviceTier: tier)
    // The integer-only path must agree with the String one.
    let viaKey = table.selectIndex(c, at: at, inputTokens: input, tier: table.tierKey(tier)).map { table.entries[$0] }
    #expect(viaString == viaKey)
    return viaString?.origin
}

@Suite struct PricingTests {
    // MARK: Glob

    @Test func globSyntax() {
        #expect(Glob("gpt-4o").matches("gpt-4o"))
        #expect(!Glob("gpt-4o").matches("gpt-4o-mini"))
        #expect(!Glob("gpt-4o").matches("gpt-4"))
        #expect(Glob("gpt-4o*").matches("gpt-4o"))
        #expect(Glob("gpt-4o*").matches("gpt-4o-mini-2024-07-18"))
        #expect(!Glob("gpt-4o*").matches("gpt-4"))
        #expect(Glob("*").matches(""))
        #expect(Glob("*").matches("anything"))
        #expect(!Glob("?").matches(""))
        #expect(Glob("?").matches("x"))
        #expect(!Glob("?").matches("xy"))
        #expect(Glob("gpt-?o").matches("gpt-4o"))
        #expect(!Glob("gpt-?o").matches("gpt-40o"))
        #expect(Glob("*-mini").matches("gpt-5-mini"))
        #expect(!Glob("*-mini").matches("gpt-5-mini-2025"))
        #expect(Glob("claude-*-sonnet-*").matches("claude-3-5-sonnet-20240620"))
        #expect(Glob("a*b*c").matches("abc"))
        #expect(Glob("a*b*c").matches("aXbYbZc"))
        #expect(!Glob("a*b*c").matches("aXbYbZ"))
        #expect(Glob("*a*a*a*b").matches("aaaaaaaaaaaaaaaaaaaaaaaaab"))
        #expect(!Glob("*a*a*a*b").matches("aaaaaaaaaaaaaaaaaaaaaaaaaa"))
        // Everything other than * and ? is literal, including regex and bracket characters.
        #expect(Glob("models/gemini-2.5-[pro]").matches("models/gemini-2.5-[pro]"))
        #expect(!Glob("gemini-2.5").matches("gemini-2x5"))
        #expect(!Glob("GPT-4o").matches("gpt-4o"))
        // `?` is one character, not one byte.
        #expect(Glob("caf?").matches("café"))
        #expect(!Glob("caf??").matches("café"))
        #expect(Glob("*é").matches("naïvé"))
        #expect(Glob("na?v*").matches("naïvé"))
    }

    @Test func globSpecificity() {
        #expect(Glob("gpt-4o").isExact)
        #expect(!Glob("gpt-4o*").isExact)
        #expect(!Glob("gpt-4?").isExact)
        #expect(Glob("gpt-4o*").literalCount == 6)
        #expect(Glob("gpt-*").literalCount == 4)
        #expect(Glob("caf?*é").literalCount == 4)
        #expect(Glob("a*b*").starCount == 2)
    }

    @Test func globOnBytes() {
        var s = "gpt-4o-mini"
        let ok = s.withUTF8 { Glob("gpt-4o*").matches(utf8: UnsafeRawBufferPointer($0)) }
        #expect(ok)
    }

    // MARK: Precedence

    @Test func exactBeatsGlobAndLongerGlobBeatsShorter() {
        let t = PriceTable([
            entry("gpt-*", origin: "short"),
            entry("gpt-4o*", origin: "long"),
            entry("gpt-4o", origin: "exact"),
            entry("*", origin: "catchall"),
            entry("gpt-4o?", origin: "question"),
        ])
        #expect(pick(t, "gpt-4o") == "exact")
        #expect(pick(t, "gpt-4o-mini") == "long")
        #expect(pick(t, "gpt-5") == "short")
        #expect(pick(t, "claude-opus-5") == "catchall")
        // Equal literal count: `?` (fewer stars) beats `*`.
        #expect(pick(t, "gpt-4ox") == "question")
        // Config order does not matter.
        let reversed = PriceTable(t.entries.reversed())
        #expect(pick(reversed, "gpt-4o") == "exact")
        #expect(pick(reversed, "gpt-4o-mini") == "long")
        #expect(pick(reversed, "gpt-4ox") == "question")
    }

    @Test func equallySpecificGlobsFirstInConfigWins() {
        let a = entry("gpt-*-mini", origin: "a"), b = entry("gpt-5*mini", origin: "b")
        #expect(pick(PriceTable([a, b]), "gpt-5-mini") == "a")
        #expect(pick(PriceTable([b, a]), "gpt-5-mini") == "b")
    }

    @Test func providerRestriction() {
        let t = PriceTable([
            entry("gpt-4o", provider: "azure", origin: "azure"),
            entry("claude-*", provider: "anthropic", origin: "anthropic"),
        ])
        #expect(pick(t, "gpt-4o", provider: "azure") == "azure")
        #expect(pick(t, "gpt-4o", provider: "openai") == nil)
        #expect(pick(t, "gpt-4o", provider: nil) == nil)  // no provider never matches a restricted entry
        #expect(pick(t, "gpt-4o", provider: "Azure") == nil)  // exact, case-sensitive
        #expect(pick(t, "claude-opus-5", provider: "anthropic") == "anthropic")
        #expect(pick(t, "claude-opus-5", provider: "bedrock") == nil)
        #expect(t.candidates(model: "gpt-4o", provider: "openai").isEmpty)
    }

    @Test func providerSpecificBeatsProviderLessAtEqualPatternOnly() {
        let t = PriceTable([
            entry("gpt-4o", origin: "generic-exact"),
            entry("gpt-4o", provider: "azure", origin: "azure-exact"),
            entry("gpt-*", provider: "azure", origin: "azure-glob"),
            entry("gpt-*", origin: "generic-glob"),
        ])
        #expect(pick(t, "gpt-4o", provider: "azure") == "azure-exact")
        #expect(pick(t, "gpt-4o", provider: "openai") == "generic-exact")
        #expect(pick(t, "gpt-4o", provider: nil) == "generic-exact")
        #expect(pick(t, "gpt-5", provider: "azure") == "azure-glob")
        #expect(pick(t, "gpt-5", provider: "openai") == "generic-glob")
        // Pattern specificity ranks above provider: the provider-less exact name beats the azure glob.
        let u = PriceTable([entry("gpt-*", provider: "azure", origin: "azure-glob"), entry("gpt-4o", origin: "exact")])
        #expect(pick(u, "gpt-4o", provider: "azure") == "exact")
        // ...and a provider-specific older price is not displaced by a newer provider-less one.
        let v = PriceTable([entry("gpt-4o", provider: "azure", origin: "azure"),
                            entry("gpt-4o", from: "2026-01-01", origin: "new-generic")])
        #expect(pick(v, "gpt-4o", provider: "azure") == "azure")
        #expect(pick(v, "gpt-4o", provider: "openai") == "new-generic")
    }

    @Test func effectiveFrom() {
        let t = PriceTable([
            entry("gpt-4o", from: "2025-06-01", origin: "june"),
            entry("gpt-4o", from: "2025-01-01", origin: "jan"),
            entry("gpt-4o", from: "2025-03-01T12:00:00Z", origin: "march"),
        ])
        let ms = { (s: String) in RFC3339.parse(s, allowDateOnly: true)! }
        #expect(pick(t, "gpt-4o", at: ms("2024-12-31T23:59:59.999Z")) == nil)  // before the first: unpriced
        #expect(pick(t, "gpt-4o", at: ms("2025-01-01")) == "jan")  // at the instant: applies
        #expect(pick(t, "gpt-4o", at: ms("2025-03-01T11:59:59.999Z")) == "jan")
        #expect(pick(t, "gpt-4o", at: ms("2025-03-01T12:00:00Z")) == "march")
        #expect(pick(t, "gpt-4o", at: ms("2025-05-31")) == "march")
        #expect(pick(t, "gpt-4o", at: ms("2025-06-01")) == "june")
        #expect(pick(t, "gpt-4o", at: ms("2030-01-01")) == "june")

        // No effective_from = the beginning of time.
        let u = PriceTable([entry("gpt-4o", origin: "always"), entry("gpt-4o", from: "2025-01-01", origin: "new")])
        #expect(pick(u, "gpt-4o", at: ms("1999-01-01")) == "always")
        #expect(pick(u, "gpt-4o", at: ms("2025-01-02")) == "new")

        // A future-dated exact price does not apply yet: the glob in force prices the event.
        let v = PriceTable([entry("gpt-*", origin: "glob"), entry("gpt-4o", from: "2027-01-01", origin: "exact")])
        #expect(pick(v, "gpt-4o", at: ms("2026-11-20")) == "glob")
        #expect(pick(v, "gpt-4o", at: ms("2027-01-01")) == "exact")
    }

    @Test func serviceTiers() {
        let t = PriceTable([
            entry("gpt-5", origin: "plain"),
            entry("gpt-5", tier: "priority", origin: "priority"),
            entry("gpt-5", tier: "flex", origin: "flex"),
            entry("gpt-*", tier: "batch", origin: "batch-glob"),
        ])
        #expect(pick(t, "gpt-5", tier: nil) == "plain")
        #expect(pick(t, "gpt-5", tier: "standard") == "plain")
        #expect(pick(t, "gpt-5", tier: "priority") == "priority")
        #expect(pick(t, "gpt-5", tier: "flex") == "flex")
        // A matching service_tier beats none, even over a more specific pattern.
        #expect(pick(t, "gpt-5", tier: "batch") == "batch-glob")
        #expect(pick(t, "gpt-5", tier: "scale") == "plain")  // a tier no entry names: tier-less entries only
        #expect(pick(t, "gpt-5", tier: "Priority") == "plain")

        // An entry for `standard` applies to events that name no tier, and beats a tier-less entry.
        let u = PriceTable([entry("o3", origin: "plain"), entry("o3", tier: "standard", origin: "standard")])
        #expect(pick(u, "o3", tier: nil) == "standard")
        #expect(pick(u, "o3", tier: "standard") == "standard")
        #expect(pick(u, "o3", tier: "flex") == "plain")
        // Tier-restricted entries only: anything else is unpriced.
        let w = PriceTable([entry("o3", tier: "flex", origin: "flex")])
        #expect(pick(w, "o3", tier: nil) == nil)
        #expect(pick(w, "o3", tier: "flex") == "flex")
        #expect(w.tierKey(nil) == .unknown)
    }

    @Test func minInputTokensLongContext() {
        let t = PriceTable([
            entry("gemini-2.5-pro", input: "1.25", output: "10", origin: "base"),
            entry("gemini-2.5-pro", input: "2.5", output: "15", minInput: 200_000, origin: "long"),
            entry("gemini-2.5-pro", input: "5", output: "20", minInput: 1_000_000, origin: "huge"),
        ])
        #expect(pick(t, "gemini-2.5-pro", input: 0) == "base")
        #expect(pick(t, "gemini-2.5-pro", input: 199_999) == "base")
        #expect(pick(t, "gemini-2.5-pro", input: 200_000) == "long")
        #expect(pick(t, "gemini-2.5-pro", input: 999_999) == "long")
        #expect(pick(t, "gemini-2.5-pro", input: 1_000_000) == "huge")
        // A larger min_input_tokens beats a more specific pattern; a tier beats min_input_tokens.
        let u = PriceTable([
            entry("gemini-2.5-pro", origin: "exact"),
            entry("gemini-*", minInput: 200_000, origin: "long-glob"),
            entry("gemini-*", tier: "flex", origin: "flex-glob"),
        ])
        #expect(pick(u, "gemini-2.5-pro", input: 250_000) == "long-glob")
        #expect(pick(u, "gemini-2.5-pro", input: 250_000, tier: "flex") == "flex-glob")
        #expect(pick(u, "gemini-2.5-pro", input: 100) == "exact")
    }

    @Test func candidatesAreReusable() {
        let t = PriceTable([entry("gpt-4o", from: "2025-01-01", origin: "new"), entry("gpt-4o", origin: "old"),
                            entry("gpt-*", origin: "glob"), entry("claude-*", origin: "other")])
        let c = t.candidates(model: "gpt-4o", provider: "openai")
        #expect(c.count == 3)
        #expect(c.entryIndices.map { t.entries[$0].origin } == ["new", "old", "glob"])
        #expect(t.select(c, at: 0, inputTokens: 5, serviceTier: nil)?.origin == "old")
        #expect(t.select(c, at: now, inputTokens: 5, serviceTier: nil)?.origin == "new")
        #expect(t.candidates(model: "mistral-large", provider: nil).isEmpty)
        var m = "gpt-4o", p = "openai"
        let viaBytes = m.withUTF8 { mb in
            p.withUTF8 { pb in t.candidates(modelUTF8: UnsafeRawBufferPointer(mb), providerUTF8: UnsafeRawBufferPointer(pb)) }
        }
        #expect(viaBytes == c)
    }

    @Test func explainDescribesTheChain() {
        let t = PriceTable([
            entry("gpt-*", origin: "p.toml:1"),
            entry("gpt-4o", from: "2027-01-01", origin: "p.toml:5"),
            entry("gpt-4o", provider: "azure", origin: "p.toml:9"),
            entry("gpt-4o", tier: "priority", origin: "p.toml:13"),
        ])
        let lines = t.explain(model: "gpt-4o", provider: "openai", at: now, inputTokens: 10, serviceTier: nil)
        let text = lines.joined(separator: "\n")
        #expect(text.contains("p.toml:13"))
        #expect(text.contains("service_tier \"priority\" is not the event's \"standard\""))
        #expect(text.contains("effective_from 2027-01-01T00:00:00Z is after the event's time"))
        #expect(text.contains("provider \"azure\" is not the event's \"openai\""))
        #expect(lines.contains { $0.contains("p.toml:1") && $0.contains("SELECTED") })
        #expect(lines.last?.hasPrefix("result: p.toml:1") == true)
        let none = t.explain(model: "claude", provider: nil, at: now, inputTokens: 1, serviceTier: nil)
        #expect(none.last?.hasPrefix("result: unpriced") == true)
        let won = PriceTable([entry("gpt-4o", origin: "a"), entry("gpt-*", origin: "b")])
            .explain(model: "gpt-4o", provider: nil, at: now, inputTokens: 1, serviceTier: nil)
        #expect(won.contains { $0.contains("outranked by #1: an exact model name beats a glob") })
        // An entry after the winner that does not apply says why, rather than "outranked".
        let tiers = PriceTable([entry("o3", tier: "priority", origin: "pri"), entry("o3", tier: "flex", origin: "flex"),
                                entry("o3", from: "2025-01-01", origin: "new"), entry("o3", origin: "old")])
            .explain(model: "o3", provider: nil, at: now, inputTokens: 1, serviceTier: "priority")
        #expect(tiers.contains { $0.contains("flex") && $0.contains("skipped: service_tier") })
        #expect(tiers.contains { $0.contains("new") && $0.contains("outranked by #1: an entry with a matching service_tier") })
        #expect(tiers.contains { $0.contains("old") && $0.contains("outranked by #1") })
        let dated = PriceTable([entry("o3", origin: "old"), entry("o3", from: "2025-01-01", origin: "new")])
            .explain(model: "o3", provider: nil, at: now, inputTokens: 1, serviceTier: nil)
        #expect(dated.contains { $0.contains("old") && $0.contains("same pattern: the latest effective_from") })
    }

    // MARK: Cost

    @Test func costFormulaAndFallbacks() {
        let tokens = TokenCounts(input: 1_000_000, cacheRead: 200_000, cacheWrite: 100_000, cacheWrite1h: 40_000,
                                 output: 500_000, reasoning: 300_000)
        // All rates given: 0.7M x 3 + 0.2M x 0.3 + 0.06M x 3.75 + 0.04M x 6 + 0.2M x 15 + 0.3M x 20.
        let full = entry("m", input: "3", output: "15", cacheRead: "0.3", cacheWrite: "3.75", cacheWrite1h: "6",
                         reasoning: "20")
        let parts = ["2.1", "0.06", "0.225", "0.24", "3", "6"].map { Money.parse($0)! }
        #expect(CostCalculator.cost(of: tokens, entry: full) == parts.reduce(Money.zero, +))
        #expect(full.cost(of: tokens).decimalString() == "11.625")
        // Omitted cache_read / cache_write -> input; cache_write_1h -> cache_write; reasoning -> output.
        let bare = entry("m", input: "3", output: "15")
        #expect(bare.rates == PriceRates(input: 3_000_000_000, cacheRead: 3_000_000_000, cacheWrite: 3_000_000_000,
                                         cacheWrite1h: 3_000_000_000, output: 15_000_000_000, reasoning: 15_000_000_000))
        #expect(bare.cost(of: tokens) == Money.parse("10.5")!)  // 1M x 3 + 0.5M x 15
        let noOneHour = entry("m", input: "3", output: "15", cacheWrite: "3.75")
        #expect(noOneHour.rates.cacheWrite1h == 3_750_000_000)
        // 0.9M x 3 + 0.1M x 3.75 + 0.5M x 15
        #expect(noOneHour.cost(of: tokens) == Money.parse("10.575")!)
        let oneHourOnly = entry("m", input: "3", output: "15", cacheWrite1h: "6")
        #expect(oneHourOnly.rates.cacheWrite == 3_000_000_000)
        // 0.96M x 3 + 0.04M x 6 + 0.5M x 15
        #expect(oneHourOnly.cost(of: tokens) == Money.parse("10.62")!)
        #expect(bare.cost(of: TokenCounts()) == .zero)
        // Sub-nano costs are kept exactly: 1 token at 0.1/1M is 1e-7 USD = 10^8 femtos.
        #expect(entry("m", input: "0.1").cost(of: TokenCounts(input: 1)) == Money(femtos: 100_000_000))
        #expect(entry("m", input: "0.000000001").cost(of: TokenCounts(input: 1)) == Money(femtos: 1))
    }

    @Test func tableCostHelper() {
        let t = PriceTable([entry("gpt-4o", input: "2.5", output: "10", cacheRead: "1.25")])
        let c = t.candidates(model: "gpt-4o", provider: nil)
        let tokens = TokenCounts(input: 1_500_000, cacheRead: 400_000, output: 250_000)
        #expect(t.cost(of: tokens, candidates: c, at: now, tier: t.standardKey) == Money.parse("5.75"))
        #expect(t.cost(of: tokens, candidates: t.candidates(model: "x", provider: nil), at: now, tier: t.standardKey) == nil)
    }

    @Test func moneyIsExactWhereDoubleIsNot() {
        let e = entry("cheap", input: "0.1", output: "0.3")
        let rates = e.rates
        var exact = Money.zero
        var independent: Int64 = 0  // femtos, by plain integer arithmetic: 0.1/1M = 10^8 femtos per token
        var double = 0.0
        for i in 0..<1_000_000 {
            let input = Int64(100 + i % 37), output = Int64(7 + i % 11)
            let tokens = TokenCounts(input: input, output: output)
            exact += rates.cost(of: tokens)
            independent += input * 100_000_000 + output * 300_000_000
            double += (Double(input) * 0.1 + Double(output) * 0.3) / 1_000_000
        }
        #expect(exact == Money(femtos: Int128(independent)))
        // The binary floating-point sum drifts: it is not the exact value (nor its nearest Double).
        #expect(double != exact.approximateDollars)
        #expect(String(double) != exact.decimalString())
        #expect(exact.decimalString() == FixedDecimal.format(Int128(independent), scale: 15, maxDecimals: 9))
    }

    // MARK: Real payloads

    /// The real-payload fixtures: `<repo>/../shared/testdata/real-payloads`.
    static let realPayloads: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/testdata/real-payloads")

    /// The `[[price]]` entries of a prices.toml, read by the real `ConfigLoader`.
    static func readPrices(_ url: URL) throws -> [PriceEntry] {
        switch ConfigLoader.load(path: url.path) {
        case .success(let c): return c.prices
        case .failure(let e):
            Issue.record("\(url.path) does not load: \(e.diagnostics.map(\.description))")
            throw e
        }
    }

    @Test func realPayloadsCostExactly() throws {
        let prices = try Self.readPrices(Self.realPayloads.appendingPathComponent("prices.toml"))
        #expect(prices.count == 34)
        let table = PriceTable(prices)
        let time = RFC3339.parse("2026-11-20T12:00:00Z")!
        let lines = try String(contentsOf: Self.realPayloads.appendingPathComponent("expected.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        #expect(lines.count == 84)
        var priced = 0, unpriced = 0
        var total = Money.zero, expectedTotal = Money.zero
        for line in lines {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = obj["id"] as? String ?? "?"
            for c in try #require(obj["contributions"] as? [[String: Any]]) {
                func n(_ k: String) -> Int64 { (c[k] as? NSNumber)?.int64Value ?? -1 }
                let tokens = TokenCounts(input: n("input"), cacheRead: n("cache_read"), cacheWrite: n("cache_write"),
                                         cacheWrite1h: n("cache_write_1h"), output: n("output"), reasoning: n("reasoning"))
                let costText = try #require(c["cost"] as? String)
                let expected = try #require(Money.parse(costText))
                let isUnpriced = n("unpriced") == 1
                let model = c["model"] as? String
                let chosen: PriceEntry? = model.flatMap { m in
                    table.select(table.candidates(model: m, provider: nil), at: time, inputTokens: tokens.input,
                                 serviceTier: nil)
                }
                #expect((chosen == nil) == isUnpriced, "\(id) \(model ?? "null"): unpriced mismatch")
                if let chosen {
                    priced += 1
                    let got = CostCalculator.cost(of: tokens, entry: chosen)
                    #expect(got == expected, "\(id) \(model!): got \(got.decimalString(decimals: 15)), expected \(expected)")
                    total += got
                    expectedTotal += expected
                } else {
                    unpriced += 1
                    #expect(expected == .zero)
                }
            }
        }
        #expect(priced == 84 && unpriced == 2)  // 86 contributions in 84 events
        #expect(total == expectedTotal)
    }
}
