import TokenmeterCore

/// The machine-readable figure columns shared by csv and json, in order. Money is exact; ratios have up
/// to 6 decimals; a figure with a zero denominator is empty (csv) / null (json).
enum ReportColumns {
    enum Value {
        case int(Int64)
        case money(Money?)
        case ratio(Double?)
        case text(String)
        case outcomes([String: Int64])
    }

    static func figures(_ l: ReportLine, total: Money, compare: Bool) -> [(String, Value)] {
        let f = l.current
        var out: [(String, Value)] = [
            ("requests", .int(f.requests)),
            ("errors", .int(f.errors)),
            ("error_share", .ratio(f.errorShare)),
            ("input_tokens", .int(f.inputTokens)),
            ("cache_read_tokens", .int(f.cacheReadTokens)),
            ("cache_write_tokens", .int(f.cacheWriteTokens)),
            ("output_tokens", .int(f.outputTokens)),
            ("reasoning_tokens", .int(f.reasoningTokens)),
            ("cost_usd", .money(f.cost)),
            ("share_of_total", .ratio(f.share(of: total))),
            ("cost_per_1k_requests_usd", .money(f.costPer1kRequests)),
            ("outcomes", .outcomes(f.outcomes)),
            ("outcome_count", .int(f.outcomeCount)),
            ("cost_per_outcome_usd", .money(f.costPerOutcome)),
            ("outcome_value_usd", .money(f.outcomeValue)),
            ("value_per_cost", .ratio(f.valuePerCost)),
            ("cache_read_share", .ratio(f.cacheReadShare)),
            ("reasoning_share", .ratio(f.reasoningShare)),
            ("unpriced_requests", .int(f.unpricedRequests)),
            ("rollup_rows", .int(Int64(f.rows))),
        ]
        if compare {
            let p = l.previous ?? ReportFigures()
            out += [
                ("previous_requests", .int(p.requests)),
                ("previous_cost_usd", .money(p.cost)),
                ("cost_change_usd", .money(l.costChange)),
                ("cost_change_ratio", .ratio(l.costChangeRatio)),
                ("previous_cost_per_outcome_usd", .money(p.costPerOutcome)),
            ]
        }
        return out
    }

    static func csv(_ v: Value) -> String {
        switch v {
        case .int(let i): String(i)
        case .money(let m): m.map(ReportText.exact) ?? ""
        case .ratio(let r): ReportText.ratio(r)
        case .text(let t): t
        case .outcomes(let o): ReportText.outcomes(o)
        }
    }

    static func json(_ v: Value) -> String {
        switch v {
        case .int(let i): String(i)
        case .money(let m): m.map(ReportText.exact) ?? "null"
        case .ratio(let r): r.map { ReportText.ratio($0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "null"
        case .text(let t): jsonString(t)
        case .outcomes(let o): "{" + o.sorted { $0.key < $1.key }.map { jsonString($0.key) + ":" + String($0.value) }.joined(separator: ",") + "}"
        }
    }
}
