import Foundation
import Testing
import TokenmeterCore
import TokenmeterReports

/// How one rollup row becomes FOCUS charges: per price dimension when the price table reproduces its cost,
/// one recorded charge when it does not, zero-cost charges without price when unpriced.
@Suite struct FocusChargeTests {
    static func price(_ s: String) -> PricePerMillion { PricePerMillion.parse(s)! }

    let table = PriceTable([
        PriceEntry(model: "claude-sonnet-4-5*", input: price("3"), cacheRead: price("0.30"), cacheWrite: price("3.75"),
                   cacheWrite1h: price("6"), output: price("15")),
        PriceEntry(model: "gpt-4o", input: price("2.50"), cacheRead: price("1.25"), output: price("10")),
        PriceEntry(model: "gpt-4o", input: price("2"), cacheRead: price("1"), output: price("8"),
                   effectiveFrom: RFC3339.parse("2026-11-29T10:30:00Z")),
    ])

    func row(_ model: String, input: Int64, cacheRead: Int64 = 0, cacheWrite: Int64 = 0, output: Int64, reasoning: Int64 = 0,
             tokens: TokenCounts, rates: PriceRates, requests: Int64 = 3, unpriced: Int64 = 0) -> RollupRow {
        var r = RollupRow()
        r.window = "1h"
        r.windowStart = RFC3339.parse("2026-11-29T10:00:00Z")!
        r.windowEnd = r.windowStart + 3_600_000
        r.model = model
        r.provider = "anthropic"
        r.counters.requests = requests
        r.counters.unpricedRequests = unpriced
        r.counters.input = input; r.counters.cacheRead = cacheRead; r.counters.cacheWrite = cacheWrite
        r.counters.output = output; r.counters.reasoning = reasoning
        r.counters.cost = rates.cost(of: tokens)
        return r
    }

    @Test func everyDimensionAtItsRateAddsUpToTheRowsCost() {
        let t = TokenCounts(input: 10_000, cacheRead: 6_000, cacheWrite: 1_000, cacheWrite1h: 0, output: 900, reasoning: 400)
        let r = row("claude-sonnet-4-5-20250929", input: 10_000, cacheRead: 6_000, cacheWrite: 1_000, output: 900, reasoning: 400,
                    tokens: t, rates: table.rates[0])
        let c = FocusCharge.charges(r, prices: table)
        #expect(c.map(\.dimension) == [.input, .cacheRead, .cacheWrite, .output, .reasoning])
        #expect(c.map(\.tokens) == [3_000, 6_000, 1_000, 500, 400])
        #expect(c.map { $0.unitPrice?.description } == ["3", "0.3", "3.75", "15", "15"])
        for x in c { #expect(x.unitPrice!.cost(x.tokens) == x.cost) }
        #expect(c.reduce(Money.zero) { $0 + $1.cost } == r.counters.cost)
    }

    /// Rollups do not split 1-hour cache writes out; the shortfall at the 5-minute rate tells how many there were.
    @Test func oneHourCacheWritesAreInferredFromTheCost() {
        let t = TokenCounts(input: 5_000, cacheRead: 0, cacheWrite: 2_000, cacheWrite1h: 700, output: 100)
        let r = row("claude-sonnet-4-5", input: 5_000, cacheWrite: 2_000, output: 100, tokens: t, rates: table.rates[0])
        let c = FocusCharge.charges(r, prices: table)
        #expect(c.first { $0.dimension == .cacheWrite1h }?.tokens == 700)
        #expect(c.first { $0.dimension == .cacheWrite }?.tokens == 1_300)
        #expect(c.reduce(Money.zero) { $0 + $1.cost } == r.counters.cost)
    }

    /// A price that took effect inside the window: the entry in force at its end reproduces the cost.
    @Test func aPriceChangedInsideTheWindowIsFound() {
        let t = TokenCounts(input: 1_000, output: 100)
        var r = row("gpt-4o", input: 1_000, output: 100, tokens: t, rates: table.rates[2])
        r.provider = "openai"
        let c = FocusCharge.charges(r, prices: table)
        #expect(c.allSatisfy { $0.pricing == .entry(2) })
        #expect(c.reduce(Money.zero) { $0 + $1.cost } == r.counters.cost)
    }

    /// A cost no entry reproduces (an event's own cost_usd) stays whole, as recorded, without a unit price.
    @Test func aCostThePriceTableDoesNotReproduceIsOneRecordedCharge() {
        let t = TokenCounts(input: 1_000, output: 100)
        var r = row("claude-sonnet-4-5", input: 1_000, output: 100, tokens: t, rates: table.rates[0])
        r.counters.cost += Money.parse("0.05")!
        let c = FocusCharge.charges(r, prices: table)
        #expect(c.count == 1 && c[0].dimension == nil && c[0].unitPrice == nil && c[0].cost == r.counters.cost)
        if case .recorded = c[0].pricing {} else { Issue.record("expected a recorded charge, got \(c[0].pricing)") }
    }

    @Test func unpricedRequestsAreZeroCostChargesWithoutPrice() {
        let r = row("meta.llama3-3-70b-instruct-v1:0", input: 800, output: 50, tokens: TokenCounts(), rates: table.rates[0],
                    requests: 2, unpriced: 2)
        let c = FocusCharge.charges(r, prices: table)
        #expect(c.map(\.tokens) == [800, 50] && c.allSatisfy { $0.cost == .zero && $0.unitPrice == nil && $0.pricing == .unpriced })
        #expect(ReportFocus.publisherName(model: "meta.llama3-3-70b-instruct-v1:0", provider: "bedrock") == "Meta")
        #expect(ReportFocus.publisherName(model: "us.anthropic.claude-sonnet-4-5-v1:0", provider: "bedrock") == "Anthropic")
        #expect(ReportFocus.names("bedrock").0 == "AWS")
    }
}

/// Budget vs actual for the HTML report, over the report fixture: spend in scope from the period's start.
@Suite struct ReportBudgetsTests {
    @Test func spendForecastAndThresholdsOfEachBudget() throws {
        let dir = try ReportFixture.write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let asOf = RFC3339.parse("2026-11-29T12:00:00Z")!
        let legal = BudgetRule(name: "legal-daily", owner: "legal", period: .day, amount: Money.parse("8")!, thresholds: [25, 50, 100],
                               forecast: true)
        let all = BudgetRule(name: "all-monthly", period: .month, amount: Money.parse("1000")!, thresholds: [80], forecast: true)
        let s = ReportBudgets.compute([legal, all], dir: dir, asOf: asOf, now: asOf)
        #expect(s.count == 2 && s.allSatisfy { $0.problem == nil })
        let hourly = ReportFixture.allHourly.filter { $0.startMillis < asOf }
        let legalSpend = ReportFixture.totals(hourly.filter { $0.owner == "legal" }).cost
        #expect(s[0].spent == legalSpend && s[0].crossed == [25, 50])
        #expect(s[0].periodStart == RFC3339.parse("2026-11-29T00:00:00Z")! && s[0].periodEnd == RFC3339.parse("2026-11-30T00:00:00Z")!)
        // Straight line: spend over the hours up to the last window with data, carried to the day's end.
        let elapsed = Double(s[0].dataEnd - s[0].periodStart)
        let expected = legalSpend.approximateDollars * Double(86_400_000) / elapsed
        #expect(abs((s[0].projected?.approximateDollars ?? 0) - expected) < 1e-6)
        #expect(s[0].cumulative.last?.spent == legalSpend)
        #expect(s[1].spent == ReportFixture.totals(hourly).cost && s[1].crossed.isEmpty)
        #expect(s[1].periodStart == RFC3339.parse("2026-11-01T00:00:00Z")!)
    }
}
