import Foundation
import TokenmeterCore
import TokenmeterReports
import TrafficGenerator

/// The demo's closing report, computed from the rollup files the daemon wrote (not from its memory), and
/// checked against the totals the traffic generator knows independently.
struct DemoSummary {
    struct Line { var name: String; var owner = ""; var requests: Int64 = 0; var cost = Money.zero; var unpriced: Int64 = 0
                  var outcomes: [String: Int64] = [:] }
    var owners: [Line] = []
    var workflows: [Line] = []
    var total = RollupCounters()
    var unpricedModels: [String: Int64] = [:]
    var mover: (workflow: String, before: Money, after: Money)?
    var files = 0
    let expected: ExpectedTotals
    let metrics: PipelineMetrics

    init(rollups: String, day: EpochMillis, expected: ExpectedTotals, metrics: PipelineMetrics) throws {
        self.expected = expected
        self.metrics = metrics
        files = RollupReader.files(in: rollups).count
        var byOwner: [String: Line] = [:]
        var byWorkflow: [String: Line] = [:]
        for row in try RollupReader.read(dir: rollups, window: "1d") {
            total.merge(row.counters)
            byOwner[row.owner, default: Line(name: row.owner)].add(row)
            byWorkflow[row.workflow, default: Line(name: row.workflow, owner: row.owner)].add(row)
            if row.counters.unpricedRequests > 0, let m = row.model { unpricedModels[m, default: 0] += row.counters.unpricedRequests }
        }
        owners = byOwner.values.sorted { $0.cost > $1.cost }
        workflows = byWorkflow.values.sorted { $0.cost > $1.cost }
        // The biggest mover: hourly spend in the second half of the day against the first half.
        var halves: [String: (Money, Money)] = [:]
        let hourly = try RollupReader.read(dir: rollups, window: "1h")
        for row in hourly where !row.late && row.windowStart >= day && row.windowStart < day + 86_400_000 {
            let secondHalf = row.windowStart >= day + 43_200_000
            var h = halves[row.workflow] ?? (.zero, .zero)
            if secondHalf { h.1 += row.counters.cost } else { h.0 += row.counters.cost }
            halves[row.workflow] = h
        }
        if let best = halves.max(by: { ($0.value.1 - $0.value.0) < ($1.value.1 - $1.value.0) }) {
            mover = (best.key, best.value.0, best.value.1)
        }
    }

    func print(to out: Terminal) {
        let totalCost = total.cost
        out.line("Spend by owner")
        out.line(pad("owner", 22) + lpad("requests", 10) + lpad("cost", 14) + lpad("share", 8))
        for o in owners {
            out.line(pad(o.name, 22) + lpad(group(o.requests), 10) + lpad(usd(o.cost), 14) + lpad(pct(o.cost, totalCost), 8))
        }
        out.line(pad("all", 22) + lpad(group(total.requests), 10) + lpad(usd(totalCost), 14))
        out.line("")
        out.line("Top workflows, with what they returned")
        out.line(pad("workflow", 24) + pad("owner", 18) + lpad("cost", 13) + "  " + pad("outcomes", 28) + lpad("cost/outcome", 13))
        for w in workflows.prefix(8) {
            let (name, count) = w.outcomes.max { $0.value < $1.value } ?? ("", 0)
            let per = count > 0 ? usd(Money(femtos: w.cost.femtos / Int128(count)), decimals: 4) : "-"
            out.line(pad(w.name, 24) + pad(w.owner, 18) + lpad(usd(w.cost), 13) + "  " + pad(count > 0 ? "\(group(count)) \(name)" : "-", 28) + lpad(per, 13))
        }
        if let m = mover {
            let before = m.before.approximateDollars / 12, after = m.after.approximateDollars / 12
            out.line("")
            out.line(String(format: "Biggest mover: %@ went from $%.2f/h before noon to $%.2f/h after (x%.1f)", m.workflow, before, after, before > 0 ? after / before : 0))
        }
        if !unpricedModels.isEmpty {
            out.line("Unpriced (tokens counted, cost not invented): " + unpricedModels.sorted { $0.key < $1.key }.map { "\($0.key) \(group($0.value)) requests" }.joined(separator: ", "))
        }
        let rejected = metrics.rejected.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
        out.line("Dead letters: \(metrics.rejectedTotal) sent to llm-usage-dlq (\(rejected)); late events: \(metrics.lateEvents) counted in late rows")
        let e = expected.grandTotal
        let exact = e.requests == total.requests && e.cost == totalCost && e.inputTokens == total.input && e.outputTokens == total.output
            && e.unpricedRequests == total.unpricedRequests
        out.line("Check: rollup totals \(exact ? "equal" : "DIFFER FROM") what the generator sent: \(group(total.requests)) requests, \(group(total.input)) input and \(group(total.output)) output tokens, $\(totalCost.decimalString()) \(exact ? "(exact)" : "(expected $\(e.cost.decimalString()), \(e.requests) requests)")")
        out.line("\(files) rollup files written.")
    }

    private func usd(_ m: Money, decimals: Int = 2) -> String {
        "$" + FixedDecimal.format(m.femtos, scale: 15, maxDecimals: decimals, minDecimals: decimals)
    }
    private func pct(_ a: Money, _ b: Money) -> String {
        b.femtos == 0 ? "-" : String(format: "%.1f%%", a.approximateDollars / b.approximateDollars * 100)
    }
    private func group(_ v: Int64) -> String {
        let s = String(v)
        var out = ""
        for (i, c) in s.enumerated() { if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }; out.append(c) }
        return out
    }
    private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
    private func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
}

extension DemoSummary.Line {
    mutating func add(_ row: RollupRow) {
        requests += row.counters.requests
        cost += row.counters.cost
        unpriced += row.counters.unpricedRequests
        for (k, v) in row.outcomes { outcomes[k, default: 0] += v }
    }
}
