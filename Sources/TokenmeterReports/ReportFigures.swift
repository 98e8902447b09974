import TokenmeterCore

/// The sums for one report line and the figures derived from them. Sums are exact (integers and `Money`);
/// ratios are `Double` and only for display. A figure whose denominator is zero is nil ("-" in tables,
/// empty in csv, null in json).
public struct ReportFigures: Sendable, Equatable {
    public var requests: Int64 = 0
    public var errors: Int64 = 0
    public var inputTokens: Int64 = 0
    public var cacheReadTokens: Int64 = 0
    public var cacheWriteTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    public var reasoningTokens: Int64 = 0
    public var cost: Money = .zero
    public var unpricedRequests: Int64 = 0
    public var outcomes: [String: Int64] = [:]
    public var outcomeValue: Money = .zero
    /// Rollup rows summed into this line.
    public var rows: Int = 0

    public init() {}

    public mutating func add(_ o: ReportFigures) {
        requests += o.requests; errors += o.errors; inputTokens += o.inputTokens; cacheReadTokens += o.cacheReadTokens
        cacheWriteTokens += o.cacheWriteTokens; outputTokens += o.outputTokens; reasoningTokens += o.reasoningTokens
        cost += o.cost; unpricedRequests += o.unpricedRequests; outcomeValue += o.outcomeValue; rows += o.rows
        for (k, v) in o.outcomes { outcomes[k, default: 0] += v }
    }

    public var totalTokens: Int64 { inputTokens + outputTokens }
    public var outcomeCount: Int64 { outcomes.values.reduce(0, +) }

    public var errorShare: Double? { ratio(errors, requests) }
    public var cacheReadShare: Double? { ratio(cacheReadTokens, inputTokens) }
    public var reasoningShare: Double? { ratio(reasoningTokens, outputTokens) }
    public func share(of total: Money) -> Double? {
        total.femtos == 0 ? nil : Double(cost.femtos) / Double(total.femtos)
    }
    /// Cost per 1,000 requests (priced and unpriced requests both count).
    public var costPer1kRequests: Money? { requests == 0 ? nil : cost.divided(by: Int128(requests), times: 1000) }
    /// Cost divided by all outcomes of the line, whatever their names.
    public var costPerOutcome: Money? {
        let n = outcomeCount
        return n == 0 ? nil : cost.divided(by: Int128(n))
    }
    /// Outcome value per dollar spent, when outcomes carried values.
    public var valuePerCost: Double? {
        outcomeValue.femtos == 0 || cost.femtos == 0 ? nil : Double(outcomeValue.femtos) / Double(cost.femtos)
    }

    private func ratio(_ a: Int64, _ b: Int64) -> Double? { b == 0 ? nil : Double(a) / Double(b) }
}

extension Money {
    /// `self x times / divisor`, rounded half away from zero to a femto-dollar.
    public func divided(by divisor: Int128, times: Int128 = 1) -> Money {
        precondition(divisor != 0)
        let n = femtos * times
        let q = n / divisor, r = n % divisor
        let away = (r < 0 ? -r : r) * 2 >= (divisor < 0 ? -divisor : divisor)
        return Money(femtos: away ? q + ((n < 0) != (divisor < 0) ? -1 : 1) : q)
    }
}
