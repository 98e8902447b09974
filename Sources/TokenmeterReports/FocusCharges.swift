import TokenmeterCore

/// The priced parts of one rollup row for the FOCUS export: one charge per price dimension (input, cache
/// read, cache write, 1-hour cache write, output, reasoning) with its tokens and the unit price that applied,
/// so that unit price x quantity is the charge's cost exactly, and the charges add up to the row's
/// `cost_usd` exactly.
///
/// A rollup row does not say which `[[price]]` entry priced its events, so each row is repriced: the entry
/// that the price table selects for the row's model and provider at the window's start (standard tier, no
/// long-context minimum), or at the window's last millisecond when a new price took effect inside it.
/// The row's 1-hour cache writes are not in the row either: when the entry prices them differently and the
/// repriced total falls short of `cost_usd` by an exact multiple of the difference, that multiple is the
/// number of 1-hour cache-write tokens.
///
/// When no entry reproduces the row's cost exactly (a `cost_usd` given on events, a service tier or a
/// long-context rate, a price table that changed since the rollups were written, requests whose usage was
/// not recognised), the row is one charge of its whole cost with no unit price: FOCUS allows a null unit
/// price, and the cost stays the one tokenmeter recorded. A row whose requests were all unpriced (no price
/// entry for the model) is one charge per dimension with cost 0 and no unit price: tokenmeter never invents
/// a cost.
public struct FocusCharge: Sendable, Equatable {
    public enum Dimension: Int, Sendable, CaseIterable {
        case input, cacheRead, cacheWrite, cacheWrite1h, output, reasoning

        /// `SkuMeter`.
        public var meter: String {
            switch self {
            case .input: "Input Tokens"
            case .cacheRead: "Cache Read Tokens"
            case .cacheWrite: "Cache Write Tokens"
            case .cacheWrite1h: "Cache Write 1h Tokens"
            case .output: "Output Tokens"
            case .reasoning: "Reasoning Tokens"
            }
        }

        /// The `[[price]]` key of the rate.
        public var priceKey: String {
            switch self {
            case .input: "input"
            case .cacheRead: "cache_read"
            case .cacheWrite: "cache_write"
            case .cacheWrite1h: "cache_write_1h"
            case .output: "output"
            case .reasoning: "reasoning"
            }
        }

        func rate(_ r: PriceRates) -> Int64 {
            switch self {
            case .input: r.input
            case .cacheRead: r.cacheRead
            case .cacheWrite: r.cacheWrite
            case .cacheWrite1h: r.cacheWrite1h
            case .output: r.output
            case .reasoning: r.reasoning
            }
        }
    }

    public enum Pricing: Sendable, Equatable {
        /// Priced at this entry's rate for the dimension.
        case entry(Int)
        /// Requests with no price: cost 0, no unit price.
        case unpriced
        /// The row's whole cost as recorded, not reproduced by any price entry.
        case recorded(String)
    }

    /// nil for a whole-row charge (`recorded`).
    public var dimension: Dimension?
    public var tokens: Int64
    /// USD per 1M tokens, when `pricing` is `.entry`.
    public var unitPrice: PricePerMillion?
    public var cost: Money
    public var pricing: Pricing

    /// The charges of `row` under `prices` (nil: no price table, so every priced row is `recorded`).
    public static func charges(_ row: RollupRow, prices: PriceTable?) -> [FocusCharge] {
        let c = row.counters
        let quantities: [(Dimension, Int64)] = [
            (.input, c.input - c.cacheRead - c.cacheWrite), (.cacheRead, c.cacheRead), (.cacheWrite, c.cacheWrite),
            (.output, c.output - c.reasoning), (.reasoning, c.reasoning),
        ]
        if c.unpricedRequests == c.requests && c.cost.femtos == 0 {
            let unpriced = quantities.filter { $0.1 != 0 }.map {
                FocusCharge(dimension: $0.0, tokens: $0.1, unitPrice: nil, cost: .zero, pricing: .unpriced)
            }
            return unpriced.isEmpty ? [FocusCharge(dimension: .input, tokens: 0, unitPrice: nil, cost: .zero, pricing: .unpriced)] : unpriced
        }
        let whole = FocusCharge(dimension: nil, tokens: c.input + c.output, unitPrice: nil, cost: c.cost, pricing: .recorded(""))
        guard c.unpricedRequests == 0 else {
            return [whole.because("\(c.unpricedRequests) of \(c.requests) requests unpriced; the cost is that of the priced ones")]
        }
        guard let prices, let model = row.model else { return [whole.because("no price table given (--config)")] }
        let candidates = prices.candidates(model: model, provider: row.provider)
        var tried: Set<Int> = []
        for t in [row.windowStart, row.windowEnd - 1] {
            guard let i = prices.selectIndex(candidates, at: t, inputTokens: 0, tier: prices.standardKey), tried.insert(i).inserted
            else { continue }
            if let split = split(quantities, rates: prices.rates[i], entry: i, cost: c.cost) { return split }
        }
        if tried.isEmpty { return [whole.because("no price entry for this model now; the cost is as recorded")] }
        return [whole.because("the cost as recorded differs from the price table's (a cost_usd on events, a service tier or long-context rate, or a changed price)")]
    }

    /// The per-dimension charges at `rates` when they add up to `cost` exactly, inferring 1-hour cache
    /// writes from the shortfall when the entry prices them differently.
    static func split(_ q: [(Dimension, Int64)], rates: PriceRates, entry: Int, cost: Money) -> [FocusCharge]? {
        var out = q.map { d, n in
            FocusCharge(dimension: d, tokens: n, unitPrice: PricePerMillion(nanos: d.rate(rates)),
                        cost: PricePerMillion(nanos: d.rate(rates)).cost(n), pricing: .entry(entry))
        }
        let repriced = out.reduce(Money.zero) { $0 + $1.cost }
        if repriced != cost {
            // 1-hour writes cost (rate1h - rate5m) more per token than the 5-minute writes they were priced as.
            let step = Int128(rates.cacheWrite1h) - Int128(rates.cacheWrite)
            let gap = (cost - repriced).femtos
            guard step != 0, gap % step == 0, let w = out.firstIndex(where: { $0.dimension == .cacheWrite }) else { return nil }
            let n1h = gap / step
            guard n1h > 0, n1h <= Int128(out[w].tokens) else { return nil }
            out[w].tokens -= Int64(n1h)
            out[w].cost = PricePerMillion(nanos: rates.cacheWrite).cost(out[w].tokens)
            let p1h = PricePerMillion(nanos: rates.cacheWrite1h)
            out.insert(FocusCharge(dimension: .cacheWrite1h, tokens: Int64(n1h), unitPrice: p1h, cost: p1h.cost(Int64(n1h)),
                                   pricing: .entry(entry)), at: w + 1)
        }
        // Dimensions without tokens are no charge; a row of requests with no tokens at all keeps its input line.
        let nonZero = out.filter { $0.tokens != 0 }
        return nonZero.isEmpty ? [out[0]] : nonZero
    }

    func because(_ reason: String) -> FocusCharge {
        var c = self
        c.pricing = .recorded(reason)
        return c
    }
}
