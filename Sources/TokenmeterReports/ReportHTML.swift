import TokenmeterCore

/// `--format html`: one self-contained page (inline CSS, inline SVG, no scripts, no network) for a FinOps
/// reader: headline tiles (with the span and how complete its data is), spend over time for the top
/// workflows (the biggest mover always among them), spend by owner, model and provider, budget vs actual
/// for every budget of `--config` (burn-down, forecast, thresholds), cost per outcome with the outcomes'
/// names, cache-read and reasoning shares, the movers and the table. Charts cover the span and, with
/// `--compare previous`, the previous span too (shaded). Fits 1280 px without horizontal scrolling and
/// prints to PDF (no dark backgrounds, sections kept whole).
public enum ReportHTML {
    /// The groupings the charts need, computed in the same pass as `--by`.
    static let groupings: [[ReportDimension]] = [[.workflow, .window], [.owner], [.window], [.workflow], [.model], [.provider],
                                                 [.workflow, .owner]]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    static let topSeries = 6
    /// The HTML report reads windows fine enough for this many points in the span when it can.
    public static let minBuckets = 24

    public static func render(_ r: Report, budgets: [BudgetStatus] = []) -> String {
        let chartFrom = r.previousFrom ?? r.from
        let bucket = chooseBucket(window: r.windowMillis, span: r.to - chartFrom)
        let start = align(chartFrom, bucket)
        let count = max(1, Int((r.to - start + bucket - 1) / bucket))
        let shift = r.to - r.from
        var timeline = Timeline(start: start, bucket: bucket, count: count)
        if let t = r.extra([.workflow, .window]) {
            for l in t.lines {
                guard let time = l.time else { continue }
                let wf = l.values[0] ?? "-"
                timeline.add(wf, time, l.current)
                if let p = l.previous, p.rows > 0 { timeline.add(wf, time - shift, p) }
            }
        }
        let byWorkflow = r.extra([.workflow])
        let owners = r.extra([.owner])
        let title = "LLM spend report"
        var h = ""
        h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
        h += "<title>\(esc(title)) \(esc(ReportText.span(r.from, r.to)))</title>\n<style>\(css)</style>\n</head>\n<body>\n<main>\n"
        h += "<header>\n<h1>\(esc(title))</h1>\n<p class=\"meta\"><strong>\(esc(spanText(r.from, r.to)))</strong>"
        if let p = r.previousFrom { h += " · compared with \(esc(spanText(p, r.from)))" }
        h += "<br/>Window \(esc(r.windowReason)) · \(r.rowsUsed) rollup rows from \(r.filesRead) files"
        if !r.query.filter.isEmpty { h += " · filters <code>\(esc(r.query.filter.summary))</code>" }
        h += " · generated \(esc(RFC3339.format(r.generatedAt)))</p>\n</header>\n"
        h += kpis(r)
        let mover = topMover(byWorkflow)
        var spendNote = "Stacked: each bar is the spend of one \(durationName(bucket)); the top workflows by spend, the rest as other."
        if let m = mover {
            spendNote += " The biggest mover, \(m.values[0] ?? "-") (\(ReportText.signedPercent(m.costChangeRatio)) against the previous span), is always shown."
        }
        h += section("spend-over-time", "Spend over time, top workflows", spendNote,
                     spendChart(r, timeline, byWorkflow, mover: mover?.values[0] ?? nil, start: start, bucket: bucket, count: count))
        h += section("budgets", "Budgets", budgets.isEmpty
                     ? "No budgets: run with --config FILE to compare spend with the config's [[budget]] entries."
                     : "Each budget's current period: spend so far (solid), its straight-line forecast (dashed), the budget and its thresholds.",
                     budgetSection(budgets))
        h += section("spend-by-owner", "Spend by owner", r.previousFrom == nil ? "Who pays, in the span." : "Bars: the span; black marks: the previous span.",
                     barChart(r, owners, title: "Spend by owner"))
        h += section("spend-by-provider", "Spend by provider", "Who bills, in the span (share of spend · share of requests).",
                     barChart(r, r.extra([.provider]), title: "Spend by provider", requestShare: true))
        h += section("spend-by-model", "Spend by model", "Share of spend against share of requests: expensive models stand out.",
                     barChart(r, r.extra([.model]), title: "Spend by model", requestShare: true))
        h += section("cost-per-outcome", "Cost per outcome", "What each workflow's results cost: its spend divided by the outcomes it reported, by outcome name.",
                     outcomeTable(byWorkflow))
        h += section("cost-per-outcome-over-time", "Cost per outcome over time",
                     "Spend of the workflow divided by the outcomes it reported, per \(durationName(bucket)) (log scale; gaps: no outcomes).",
                     outcomeChart(timeline, byWorkflow, start: start, bucket: bucket, count: count, r: r))
        h += section("cache-and-reasoning", "Cache reads and reasoning",
                     "Share of input tokens read from a prompt cache (higher is cheaper) and share of output tokens spent on reasoning.",
                     shareChart(timeline, start: start, bucket: bucket, count: count, r: r))
        h += section("movers", "Movers", r.previousFrom == nil
                     ? "Run with --compare previous to see what moved against the previous span."
                     : "Workflows by the size of their spend change against the previous span.",
                     moversTable(byWorkflow))
        let details = r.main.dimensions == [.workflow] ? (r.extra([.workflow, .owner]) ?? r.main) : r.main
        h += section("details", "By " + details.dimensions.map(\.description).joined(separator: ", "),
                     "Spend in US dollars; the full table (tokens, errors, value) is in --format csv or json.", mainTable(details))
        h += "<footer>tokenmeter report · figures exact to the femto-dollar in csv/json; shown here to the cent · "
        h += "unpriced requests count tokens but no cost</footer>\n</main>\n</body>\n</html>\n"
        return h
    }

    /// `29 Nov 2026 12:00 to 30 Nov 2026 00:00 UTC (12 hours)`.
    static func spanText(_ from: EpochMillis, _ to: EpochMillis) -> String {
        func t(_ ms: EpochMillis) -> String {
            let (y, mo, d, h, mi, _, _) = RFC3339.components(ms)
            return "\(d) \(months[mo - 1]) \(y) " + (h < 10 ? "0" : "") + "\(h):" + (mi < 10 ? "0" : "") + "\(mi)"
        }
        return "\(t(from)) to \(t(to)) UTC (\(lengthText(to - from)))"
    }

    static func lengthText(_ ms: Int64) -> String {
        let h = ReportDimension.hourMillis, d = ReportDimension.dayMillis
        if ms % d == 0 { return ms / d == 1 ? "1 day" : "\(ms / d) days" }
        if ms % h == 0 { return ms / h == 1 ? "1 hour" : "\(ms / h) hours" }
        return "\(ms / 60_000) minutes"
    }

    /// The workflow whose spend grew most against the previous span, relative to what it was, among those
    /// with at least 1% of the span's spend (a x17 jump of a mid-sized workflow is the news, more than a
    /// large workflow's 20% swing); nil when nothing grew.
    static func topMover(_ t: ReportTable?) -> ReportLine? {
        guard let t, t.previousTotal != nil else { return nil }
        let floor = t.total.cost.femtos / 100
        func growth(_ l: ReportLine) -> Double {
            guard let p = l.previous, l.current.cost > p.cost else { return 0 }
            return p.cost.femtos == 0 ? Double.infinity : Double(l.current.cost.femtos) / Double(p.cost.femtos)
        }
        return t.lines.filter { !$0.isOther && $0.current.cost.femtos >= floor && growth($0) > 1 }
            .max { (growth($0), $1.label) < (growth($1), $0.label) }
    }

    // MARK: - Time buckets

    /// Spend and tokens per workflow per bucket.
    struct Timeline {
        var start: EpochMillis
        var bucket: Int64
        var count: Int
        var series: [String: [ReportFigures]] = [:]
        var total: [ReportFigures]

        init(start: EpochMillis, bucket: Int64, count: Int) {
            self.start = start; self.bucket = bucket; self.count = count
            total = Array(repeating: ReportFigures(), count: count)
        }

        mutating func add(_ name: String, _ time: EpochMillis, _ f: ReportFigures) {
            let i = Int((time - start) / bucket)
            guard time >= start, i < count else { return }
            if series[name] == nil { series[name] = Array(repeating: ReportFigures(), count: count) }
            series[name]![i].add(f)
            total[i].add(f)
        }
    }

    static func chooseBucket(window: Int64, span: Int64) -> Int64 {
        let hour = ReportDimension.hourMillis, day = ReportDimension.dayMillis
        let candidates = [window, 5 * 60_000, 15 * 60_000, 30 * 60_000, hour, 3 * hour, 6 * hour, 12 * hour, day, 7 * day].filter { $0 >= window && $0 % window == 0 }
        for c in candidates where span / c <= 96 { return c }
        return candidates.last ?? window
    }

    static func align(_ t: EpochMillis, _ bucket: Int64) -> EpochMillis {
        if bucket == 7 * ReportDimension.dayMillis {   // weeks start on Monday (the epoch was a Thursday)
            let monday = 4 * ReportDimension.dayMillis
            return floorDiv(t - monday, bucket) * bucket + monday
        }
        return floorDiv(t, bucket) * bucket
    }

    static func durationName(_ b: Int64) -> String {
        let h = ReportDimension.hourMillis
        switch b {
        case 7 * ReportDimension.dayMillis: return "week"
        case ReportDimension.dayMillis: return "day"
        case h: return "hour"
        default:
            if b % h == 0 { return "\(b / h) hours" }
            if b % 60_000 == 0 { return "\(b / 60_000) minutes" }
            return "\(b / 1000) seconds"
        }
    }

    // MARK: - Sections

    static func section(_ id: String, _ title: String, _ note: String, _ content: String) -> String {
        "<section id=\"\(id)\">\n<h2>\(esc(title))</h2>\n<p class=\"note\">\(esc(note))</p>\n\(content)\n</section>\n"
    }

    static func kpis(_ r: Report) -> String {
        let t = r.main.total, p = r.main.previousTotal
        func card(_ label: String, _ value: String, _ change: String? = nil, good: Bool? = nil) -> String {
            var s = "<div class=\"kpi\"><div class=\"label\">\(esc(label))</div><div class=\"value\">\(esc(value))</div>"
            if let change { s += "<div class=\"change \(good == nil ? "" : good! ? "good" : "bad")\">\(esc(change))</div>" }
            return s + "</div>\n"
        }
        func delta(_ now: Money, _ before: Money?) -> (String?, Bool?) {
            guard let before else { return (nil, nil) }
            guard before.femtos != 0 else { return (now.femtos == 0 ? nil : "new vs previous", nil) }
            let x = Double((now - before).femtos) / Double(before.femtos)
            return (ReportText.signedPercent(x) + " vs previous", x <= 0)
        }
        var s = "<section id=\"summary\" class=\"kpis\">\n"
        // How complete the span is: data may stop before its end (the day is still going, the files are
        // late). A partial span against a full previous one is not a like-for-like change.
        let span = r.to - r.from
        let covered = r.dataEnd.map { min($0, r.to) - r.from } ?? 0
        let complete = span > 0 && covered >= span
        let completeness = r.dataEnd == nil ? "no data in the span"
            : complete ? "complete" : "data to \(clock(min(r.dataEnd!, r.to))): \(ReportText.percent(Double(covered) / Double(span), decimals: 0)) of the span"
        s += "<div class=\"kpi span\"><div class=\"label\">Span (UTC)</div><div class=\"value small\">\(esc(lengthText(span)))</div>"
            + "<div class=\"change \(complete ? "" : "bad")\">\(esc(completeness))</div></div>\n"
        var (c, g) = delta(t.cost, p?.cost)
        if c != nil && !complete { c = c! + " (partial span)"; g = nil }
        s += card("Spend", ReportText.usd(t.cost), c, good: g)
        s += card("Requests", ReportText.grouped(t.requests), p.map { "\(ReportText.grouped($0.requests)) before" })
        s += card("Cost per 1k requests", t.costPer1kRequests.map(ReportText.usd) ?? "-")
        s += card("Outcomes", ReportText.grouped(t.outcomeCount))
        let (oc, og) = t.costPerOutcome.map { delta($0, p?.costPerOutcome ?? (p == nil ? nil : .zero)) } ?? (nil, nil)
        s += card("Cost per outcome", t.costPerOutcome.map(ReportText.usd) ?? "-", oc, good: og)
        s += card("Outcome value per $", t.valuePerCost.map { ReportText.fixed($0, 2) } ?? "-")
        s += card("Error share", ReportText.percent(t.errorShare))
        s += card("Cache-read share of input", ReportText.percent(t.cacheReadShare))
        s += card("Reasoning share of output", ReportText.percent(t.reasoningShare))
        s += card("Unpriced requests", ReportText.grouped(t.unpricedRequests))
        return s + "</section>\n"
    }

    /// `20:30` or `29 Nov 20:30`.
    static func clock(_ ms: EpochMillis) -> String {
        let (_, mo, d, h, mi, _, _) = RFC3339.components(ms)
        return "\(d) \(months[mo - 1]) " + (h < 10 ? "0" : "") + "\(h):" + (mi < 10 ? "0" : "") + "\(mi)"
    }

    static func spendChart(_ r: Report, _ tl: Timeline, _ byWorkflow: ReportTable?, mover: String?, start: EpochMillis, bucket: Int64,
                           count: Int) -> String {
        let ranked = (byWorkflow?.lines ?? []).filter { $0.current.cost.femtos > 0 || ($0.previous?.cost.femtos ?? 0) > 0 }
            .sorted { ($0.current.cost + ($0.previous?.cost ?? .zero)) > ($1.current.cost + ($1.previous?.cost ?? .zero)) }
        var top = ranked.prefix(topSeries).compactMap { $0.values[0] }
        // The biggest mover is the news of the report: never folded into "other".
        if let m = mover, !top.contains(m), tl.series[m] != nil {
            if top.count == topSeries { top.removeLast() }
            top.append(m)
        }
        var stacks: [(name: String, color: String, values: [Double])] = []
        for (i, name) in top.enumerated() {
            stacks.append((name, ChartPalette.color(i), (tl.series[name] ?? []).map { $0.cost.approximateDollars }))
        }
        var other = Array(repeating: 0.0, count: count)
        for (name, s) in tl.series where !top.contains(name) { for i in 0..<count { other[i] += s[i].cost.approximateDollars } }
        if other.contains(where: { $0 > 0 }) { stacks.append(("other", ChartPalette.other, other)) }
        var chart = SVGChart(height: 360)
        guard !stacks.isEmpty else { return empty() }
        let totals = (0..<count).map { i in stacks.reduce(0.0) { $0 + ($1.values.count > i ? $1.values[i] : 0) } }
        let scale = NiceScale(maxValue: totals.max() ?? 1)
        chart.legend(stacks.map { ($0.name == mover ? $0.name + " (biggest mover)" : $0.name, $0.color, false) })
        if let p = r.previousFrom { chart.shadeBands(until: Int((r.from - max(start, p)) / bucket), count: count, label: "previous span") }
        chart.yAxis(scale, title: "US dollars per \(durationName(bucket))", format: money)
        let band = chart.plotWidth / Double(count)
        let barWidth = max(1, band * 0.78)
        for i in 0..<count {
            var base = 0.0
            let x = chart.x0 + Double(i) * band + (band - barWidth) / 2
            for s in stacks where s.values.count > i && s.values[i] > 0 {
                let y = chart.y1 - (base + s.values[i]) / scale.max * chart.plotHeight
                let hgt = s.values[i] / scale.max * chart.plotHeight
                chart.add("<rect class=\"mark\" x=\"\(SVGChart.n(x))\" y=\"\(SVGChart.n(y))\" width=\"\(SVGChart.n(barWidth))\" height=\"\(SVGChart.n(max(hgt, 0.5)))\" fill=\"\(s.color)\" data-series=\"\(esc(s.name))\"><title>\(esc(s.name)) \(esc(label(start + Int64(i) * bucket, bucket))): $\(ReportText.fixed(s.values[i], 2))</title></rect>")
                base += s.values[i]
            }
        }
        chart.timeAxis(start: start, bucket: bucket, count: count, title: "time (UTC)")
        return chart.svg(title: "Spend over time, top workflows", description: "Stacked bars of spend per \(durationName(bucket)) for " + stacks.map(\.name).joined(separator: ", "))
    }

    /// Horizontal bars of spend per key of a one-dimension table, with its share of spend (and of requests).
    static func barChart(_ r: Report, _ table: ReportTable?, title: String, requestShare: Bool = false) -> String {
        var lines = (table?.lines ?? []).filter { $0.current.cost.femtos > 0 || ($0.previous?.cost.femtos ?? 0) > 0 }
        let unpriced = (table?.lines ?? []).filter { $0.current.cost.femtos == 0 && $0.current.unpricedRequests > 0 }
        lines += unpriced
        guard !lines.isEmpty else { return empty() }
        // Long tails (dated model snapshots) fold into one line: the chart is for what matters.
        if lines.count > 16 {
            var rest = ReportLine(values: ["(\(lines.count - 15) more)"])
            rest.isOther = true
            for l in lines[15...] {
                rest.current.add(l.current)
                if let p = l.previous { var q = rest.previous ?? ReportFigures(); q.add(p); rest.previous = q }
            }
            lines = Array(lines[..<15]) + [rest]
        }
        let rowH = 30.0
        var chart = SVGChart(height: 70 + rowH * Double(lines.count))
        chart.left = 230
        chart.right = requestShare ? 290 : 170
        chart.top = 36
        chart.bottom = 34
        let maxV = lines.map { max($0.current.cost.approximateDollars, $0.previous?.cost.approximateDollars ?? 0) }.max() ?? 1
        let scale = NiceScale(maxValue: maxV > 0 ? maxV : 1)
        var legend: [(String, String, Bool)] = [("spend in the span", ChartPalette.color(0), false)]
        if r.previousFrom != nil { legend.append(("previous span", ChartPalette.ink, true)) }
        chart.legend(legend)
        for t in scale.ticks {
            let x = chart.x0 + t / scale.max * chart.plotWidth
            chart.add("<line x1=\"\(SVGChart.n(x))\" x2=\"\(SVGChart.n(x))\" y1=\"\(SVGChart.n(chart.y0))\" y2=\"\(SVGChart.n(chart.y1))\" stroke=\"\(t == 0 ? "#8c959f" : ChartPalette.grid)\"/>")
            chart.add("<text x=\"\(SVGChart.n(x))\" y=\"\(SVGChart.n(chart.y1 + 16))\" text-anchor=\"middle\" class=\"tick\">\(esc(money(t)))</text>")
        }
        chart.add("<text x=\"\(SVGChart.n(chart.x1))\" y=\"\(SVGChart.n(chart.height - 2))\" text-anchor=\"end\" class=\"axis-title\">US dollars in the span</text>")
        let total = table?.total.cost ?? .zero
        let requests = table?.total.requests ?? 0
        for (i, l) in lines.enumerated() {
            let y = chart.y0 + Double(i) * rowH + 5
            let w = l.current.cost.approximateDollars / scale.max * chart.plotWidth
            let name = l.values[0] ?? "(none)"
            let shown = name.count > 30 ? String(name.prefix(29)) + "…" : name
            chart.add("<text x=\"\(SVGChart.n(chart.x0 - 10))\" y=\"\(SVGChart.n(y + 15))\" text-anchor=\"end\" class=\"label\">\(esc(shown))\(shown == name ? "" : "<title>" + esc(name) + "</title>")</text>")
            chart.add("<rect class=\"mark\" x=\"\(SVGChart.n(chart.x0))\" y=\"\(SVGChart.n(y))\" width=\"\(SVGChart.n(max(w, 1)))\" height=\"\(SVGChart.n(rowH - 10))\" rx=\"2\" fill=\"\(ChartPalette.color(0))\"><title>\(esc(name)): \(esc(ReportText.usd(l.current.cost)))</title></rect>")
            if let p = l.previous {
                let px = chart.x0 + p.cost.approximateDollars / scale.max * chart.plotWidth
                chart.add("<line x1=\"\(SVGChart.n(px))\" x2=\"\(SVGChart.n(px))\" y1=\"\(SVGChart.n(y - 3))\" y2=\"\(SVGChart.n(y + rowH - 7))\" stroke=\"\(ChartPalette.ink)\" stroke-width=\"3\"><title>previous: \(esc(ReportText.usd(p.cost)))</title></line>")
            }
            let isUnpriced = l.current.cost.femtos == 0 && l.current.unpricedRequests > 0
            var text = isUnpriced ? "unpriced" : ReportText.usd(l.current.cost) + " · " + ReportText.percent(l.current.share(of: total))
            if requestShare && requests > 0 {
                text += (isUnpriced ? "" : " spend") + " · " + ReportText.percent(Double(l.current.requests) / Double(requests)) + " requests"
            }
            chart.add("<text x=\"\(SVGChart.n(chart.x1 + 10))\" y=\"\(SVGChart.n(y + 15))\" class=\"label\">\(esc(text))</text>")
        }
        return chart.svg(title: title, description: "Horizontal bars of spend: " + lines.map { $0.values[0] ?? "(none)" }.joined(separator: ", "))
    }

    /// One card per budget: spend against the amount, the thresholds, and a burn-down chart of the period.
    static func budgetSection(_ budgets: [BudgetStatus]) -> String {
        guard !budgets.isEmpty else { return "" }
        var s = "<div class=\"budgets\">\n"
        for b in budgets {
            let rule = b.rule
            var scope: [String] = []
            if let o = rule.owner { scope.append("owner " + o) }
            if let w = rule.workflow { scope.append("workflow " + w) }
            let used = b.usedShare ?? 0
            let state = b.crossed.contains(where: { $0 >= 100 }) ? "bad" : b.crossed.isEmpty ? "good" : "warn"
            s += "<div class=\"budget\" data-budget=\"\(esc(rule.name))\">\n<h3>\(esc(rule.name))</h3>\n"
            s += "<p class=\"note\">\(esc(scope.isEmpty ? "all spend" : scope.joined(separator: ", "))) · \(esc(rule.period.rawValue)) "
                + "\(esc(clock(b.periodStart))) to \(esc(clock(b.periodEnd)))</p>\n"
            if let problem = b.problem {
                s += "<p class=\"empty\">Could not read: \(esc(problem))</p>\n</div>\n"
                continue
            }
            s += "<p class=\"figures\"><span class=\"big \(state)\">\(esc(ReportText.usd(b.spent)))</span> of \(esc(ReportText.usd(rule.amount))) "
                + "(\(esc(ReportText.percent(used, decimals: 0))))"
            if let p = b.projected {
                let over = p > rule.amount
                s += " · forecast <span class=\"\(over ? "bad" : "good")\">\(esc(ReportText.usd(p)))</span>"
            }
            s += "<br/>thresholds " + rule.thresholds.map { t in
                b.crossed.contains(t) ? "<strong class=\"\(t >= 100 ? "bad" : "warn")\">\(t)% crossed</strong>" : "\(t)%"
            }.joined(separator: " · ") + "</p>\n"
            s += burnDown(b) + "\n</div>\n"
        }
        return s + "</div>"
    }

    /// Cumulative spend over the budget's period, with the budget, its thresholds and the forecast.
    static func burnDown(_ b: BudgetStatus) -> String {
        var chart = SVGChart(height: 230)
        chart.width = 540
        chart.left = 64
        chart.right = 16
        chart.top = 30
        chart.bottom = 40
        let amount = b.rule.amount.approximateDollars
        let top = max(amount, b.projected?.approximateDollars ?? 0, b.spent.approximateDollars) * 1.05
        let scale = NiceScale(maxValue: top > 0 ? top : 1, count: 4)
        chart.legend([("spent", ChartPalette.color(0), true), ("forecast", ChartPalette.color(5), true), ("budget", ChartPalette.ink, true)])
        chart.yAxis(scale, title: "US dollars", format: money)
        let span = Double(b.periodEnd - b.periodStart)
        func x(_ t: EpochMillis) -> Double { chart.x0 + Double(t - b.periodStart) / span * chart.plotWidth }
        func y(_ v: Double) -> Double { chart.y1 - v / scale.max * chart.plotHeight }
        for t in b.rule.thresholds where t < 100 {
            let v = amount * Double(t) / 100
            chart.add("<line x1=\"\(SVGChart.n(chart.x0))\" x2=\"\(SVGChart.n(chart.x1))\" y1=\"\(SVGChart.n(y(v)))\" y2=\"\(SVGChart.n(y(v)))\" stroke=\"#bf8700\" stroke-dasharray=\"2 3\"/>")
            chart.add("<text x=\"\(SVGChart.n(chart.x0 + 4))\" y=\"\(SVGChart.n(y(v) - 3))\" class=\"tick\">\(t)%</text>")
        }
        chart.add("<line x1=\"\(SVGChart.n(chart.x0))\" x2=\"\(SVGChart.n(chart.x1))\" y1=\"\(SVGChart.n(y(amount)))\" y2=\"\(SVGChart.n(y(amount)))\" stroke=\"\(ChartPalette.ink)\" stroke-width=\"2\"><title>budget \(esc(ReportText.usd(b.rule.amount)))</title></line>")
        var pts = [(x(b.periodStart), y(0))]
        for p in b.cumulative { pts.append((x(p.time), y(p.spent.approximateDollars))) }
        chart.add("<polyline class=\"mark spent\" points=\"" + pts.map { SVGChart.n($0.0) + "," + SVGChart.n($0.1) }.joined(separator: " ")
                  + "\" fill=\"none\" stroke=\"\(ChartPalette.color(0))\" stroke-width=\"2.4\"><title>spent \(esc(ReportText.usd(b.spent)))</title></polyline>")
        if let p = b.projected {
            chart.add("<line class=\"forecast\" x1=\"\(SVGChart.n(x(b.dataEnd)))\" x2=\"\(SVGChart.n(x(b.periodEnd)))\" y1=\"\(SVGChart.n(y(b.spent.approximateDollars)))\" y2=\"\(SVGChart.n(y(p.approximateDollars)))\" stroke=\"\(ChartPalette.color(5))\" stroke-width=\"2\" stroke-dasharray=\"6 4\"><title>forecast \(esc(ReportText.usd(p)))</title></line>")
        }
        let (_, m0, d0, _, _, _, _) = RFC3339.components(b.periodStart)
        let (_, m1, d1, _, _, _, _) = RFC3339.components(b.periodEnd - 1)
        chart.add("<text x=\"\(SVGChart.n(chart.x0))\" y=\"\(SVGChart.n(chart.y1 + 18))\" class=\"tick\">\(d0) \(months[m0 - 1])</text>")
        chart.add("<text x=\"\(SVGChart.n(chart.x1))\" y=\"\(SVGChart.n(chart.y1 + 18))\" text-anchor=\"end\" class=\"tick\">\(d1) \(months[m1 - 1])</text>")
        return chart.svg(title: "Budget \(b.rule.name)", description: "Cumulative spend over the budget period with budget, thresholds and forecast")
    }

    /// Per workflow with outcomes: the outcome names and counts, the spend and the cost per outcome.
    static func outcomeTable(_ t: ReportTable?) -> String {
        let lines = (t?.lines ?? []).filter { $0.current.outcomeCount > 0 && !$0.isOther }
            .sorted { ($0.current.costPerOutcome ?? .zero) > ($1.current.costPerOutcome ?? .zero) }
        guard !lines.isEmpty else { return empty("No outcomes reported in this span.") }
        var s = "<table class=\"outcomes\">\n<thead><tr><th>workflow</th><th>outcome</th><th class=\"num\">outcomes</th><th class=\"num\">spend</th>"
            + "<th class=\"num\">cost per outcome</th><th class=\"num\">value per $</th></tr></thead>\n<tbody>\n"
        for l in lines.prefix(40) {
            let f = l.current
            let names = f.outcomes.sorted { $0.value > $1.value }.map { $0.key }.joined(separator: ", ")
            s += "<tr><td>\(esc(l.values[0] ?? "-"))</td><td>\(esc(names))</td><td class=\"num\">\(ReportText.grouped(f.outcomeCount))</td>"
            s += "<td class=\"num\">\(esc(ReportText.usd(f.cost)))</td><td class=\"num\">\(esc(f.costPerOutcome.map(ReportText.usd) ?? "-"))</td>"
            s += "<td class=\"num\">\(esc(f.valuePerCost.map { ReportText.fixed($0, 1) } ?? "-"))</td></tr>\n"
        }
        return s + "</tbody>\n</table>"
    }

    static func outcomeChart(_ tl: Timeline, _ byWorkflow: ReportTable?, start: EpochMillis, bucket: Int64, count: Int, r: Report) -> String {
        let withOutcomes = (byWorkflow?.lines ?? []).filter { $0.current.outcomeCount > 0 && $0.current.cost.femtos > 0 }
            .sorted { $0.current.cost > $1.current.cost }.prefix(5).compactMap { $0.values[0] }
        var series: [(name: String, color: String, values: [Double?])] = []
        for (i, name) in withOutcomes.enumerated() {
            let s = tl.series[name] ?? []
            series.append((name, ChartPalette.color(i), s.map { f in f.costPerOutcome.map { $0.approximateDollars }.flatMap { $0 > 0 ? $0 : nil } }))
        }
        let values = series.flatMap { $0.values.compactMap { $0 } }
        guard let lo = values.min(), let hi = values.max() else { return empty("No outcomes reported in this span.") }
        var chart = SVGChart(height: 340)
        let decades = NiceScale.decades(lo, hi)
        chart.legend(series.map { ($0.name, $0.color, true) })
        if let p = r.previousFrom { chart.shadeBands(until: Int((r.from - max(start, p)) / bucket), count: count, label: "previous span") }
        chart.logYAxis(decades, title: "US dollars per outcome (log)", format: money)
        let geometry = chart
        lines(&chart, series, count: count) { geometry.logY($0, decades) }
        chart.timeAxis(start: start, bucket: bucket, count: count, title: "time (UTC)")
        return chart.svg(title: "Cost per outcome over time", description: "Lines of cost per outcome for " + series.map(\.name).joined(separator: ", "))
    }

    static func shareChart(_ tl: Timeline, start: EpochMillis, bucket: Int64, count: Int, r: Report) -> String {
        guard tl.total.contains(where: { $0.inputTokens > 0 || $0.outputTokens > 0 }) else { return empty() }
        let series: [(name: String, color: String, values: [Double?])] = [
            ("cache-read share of input", ChartPalette.color(0), tl.total.map(\.cacheReadShare)),
            ("reasoning share of output", ChartPalette.color(5), tl.total.map(\.reasoningShare)),
        ]
        var chart = SVGChart(height: 300)
        let scale = NiceScale(maxValue: 1, count: 4)
        chart.legend(series.map { ($0.name, $0.color, true) })
        if let p = r.previousFrom { chart.shadeBands(until: Int((r.from - max(start, p)) / bucket), count: count, label: "previous span") }
        chart.yAxis(scale, title: "share of tokens", format: { ReportText.fixed($0 * 100, 0) + "%" })
        let geometry = chart
        lines(&chart, series, count: count) { geometry.y1 - $0 / scale.max * geometry.plotHeight }
        chart.timeAxis(start: start, bucket: bucket, count: count, title: "time (UTC)")
        return chart.svg(title: "Cache-read and reasoning shares over time", description: "Two lines: cache-read share of input tokens and reasoning share of output tokens")
    }

    /// Polylines with gaps where a value is nil, and dots when the points are few.
    static func lines(_ chart: inout SVGChart, _ series: [(name: String, color: String, values: [Double?])], count: Int, y: (Double) -> Double) {
        let band = chart.plotWidth / Double(count)
        for s in series {
            var runs: [[(Double, Double)]] = [[]]
            for (i, v) in s.values.enumerated() {
                guard let v else { if !runs.last!.isEmpty { runs.append([]) }; continue }
                runs[runs.count - 1].append((chart.x0 + (Double(i) + 0.5) * band, y(v)))
            }
            for run in runs where !run.isEmpty {
                if run.count > 1 {
                    let pts = run.map { SVGChart.n($0.0) + "," + SVGChart.n($0.1) }.joined(separator: " ")
                    chart.add("<polyline class=\"mark\" points=\"\(pts)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2.2\" stroke-linejoin=\"round\"/>")
                }
                if count <= 120 || run.count == 1 {
                    for p in run { chart.add("<circle class=\"mark\" cx=\"\(SVGChart.n(p.0))\" cy=\"\(SVGChart.n(p.1))\" r=\"2.6\" fill=\"\(s.color)\"/>") }
                }
            }
        }
    }

    static func moversTable(_ t: ReportTable?) -> String {
        guard let t, t.previousTotal != nil else { return "" }
        let movers = t.movers.filter { $0.costChange!.femtos != 0 }.prefix(12)
        guard !movers.isEmpty else { return empty("Nothing moved.") }
        let maxChange = movers.map { abs($0.costChange!.approximateDollars) }.max() ?? 1
        var s = "<table class=\"movers\">\n<thead><tr><th>workflow</th><th class=\"num\">previous</th><th class=\"num\">now</th><th class=\"num\">change</th><th class=\"num\">change %</th><th>change</th></tr></thead>\n<tbody>\n"
        for l in movers {
            let c = l.costChange!
            let up = c.femtos > 0
            let w = abs(c.approximateDollars) / maxChange * 140
            let bar = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\" height=\"14\" viewBox=\"0 0 300 14\"><line x1=\"150\" x2=\"150\" y1=\"0\" y2=\"14\" stroke=\"#8c959f\"/>"
                + "<rect x=\"\(SVGChart.n(up ? 150 : 150 - w))\" y=\"2\" width=\"\(SVGChart.n(max(w, 1)))\" height=\"10\" fill=\"\(up ? ChartPalette.series[5] : ChartPalette.series[0])\"/></svg>"
            s += "<tr><td>\(esc(l.values[0] ?? "-"))</td><td class=\"num\">\(esc(ReportText.usd(l.previous!.cost)))</td><td class=\"num\">\(esc(ReportText.usd(l.current.cost)))</td>"
            s += "<td class=\"num \(up ? "bad" : "good")\">\(up ? "+" : "")\(esc(ReportText.usd(c)))</td><td class=\"num\">\(esc(ReportText.signedPercent(l.costChangeRatio)))</td><td>\(bar)</td></tr>\n"
        }
        return s + "</tbody>\n</table>"
    }

    /// The table people forward: keys, spend in dollars, share, requests, cost per 1k requests, outcomes and
    /// cost per outcome, and the change when comparing. Narrow enough for 1280 px.
    static func mainTable(_ t: ReportTable) -> String {
        let keys = t.dimensions.map(\.description)
        var header = keys + ["spend", "share", "requests", "$ per 1k req", "outcomes", "$ per outcome", "unpriced"]
        if t.previousTotal != nil { header += ["change", "change %"] }
        func cells(_ l: ReportLine) -> [String] {
            let f = l.current
            var c = l.values.map { $0 ?? "-" }
            c += [ReportText.usd(f.cost), ReportText.percent(f.share(of: t.total.cost)), ReportText.grouped(f.requests),
                  f.costPer1kRequests.map(ReportText.usd) ?? "-", f.outcomeCount == 0 ? "-" : ReportText.grouped(f.outcomeCount),
                  f.costPerOutcome.map(ReportText.usd) ?? "-", f.unpricedRequests == 0 ? "-" : ReportText.grouped(f.unpricedRequests)]
            if t.previousTotal != nil {
                let change = l.costChange ?? f.cost
                c += [(change.femtos > 0 ? "+" : "") + ReportText.usd(change), ReportText.signedPercent(l.costChangeRatio)]
            }
            return c
        }
        var s = "<table class=\"details\">\n<thead><tr>"
        for (i, h) in header.enumerated() { s += "<th\(i < keys.count ? "" : " class=\"num\"")>\(esc(h))</th>" }
        s += "</tr></thead>\n<tbody>\n"
        for l in t.lines.prefix(500) {
            s += "<tr\(l.isOther ? " class=\"other\"" : "")>"
            for (i, c) in cells(l).enumerated() { s += "<td\(i < keys.count ? "" : " class=\"num\"")>\(esc(c))</td>" }
            s += "</tr>\n"
        }
        s += "</tbody>\n<tfoot><tr>"
        for (i, c) in cells(ReportHumanColumns.totalLine(t)).enumerated() {
            s += "<td\(i < keys.count ? "" : " class=\"num\"")>\(esc(c))</td>"
        }
        return s + "</tr></tfoot>\n</table>"
    }

    static func empty(_ text: String = "No data in this span.") -> String { "<p class=\"empty\">\(esc(text))</p>" }

    // MARK: - Text

    static func money(_ v: Double) -> String {
        if v == 0 { return "$0" }
        if v >= 1_000_000 { return "$" + trim(ReportText.fixed(v / 1_000_000, 2)) + "M" }
        if v >= 1000 { return "$" + trim(ReportText.fixed(v / 1000, 2)) + "k" }
        if v >= 1 { return "$" + trim(ReportText.fixed(v, 2)) }
        var d = 2
        var x = v
        while x < 0.1 && d < 8 { x *= 10; d += 1 }
        return "$" + trim(ReportText.fixed(v, d))
    }

    static func trim(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    static func label(_ t: EpochMillis, _ bucket: Int64) -> String {
        bucket < ReportDimension.dayMillis ? RFC3339.format(t) : RFC3339.day(t)
    }

    /// XML escaping (the page is also well-formed XML).
    public static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                if c.value < 0x20 && c != "\n" && c != "\t" { continue }
                out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static let css = """

    :root { color-scheme: light; }
    * { box-sizing: border-box; }
    body { margin: 0; background: #f6f7f9; color: #1f2328;
      font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial, sans-serif; }
    main { max-width: 1180px; margin: 0 auto; padding: 28px 28px 40px; }
    header h1 { font-size: 28px; margin: 0 0 6px; letter-spacing: -0.01em; }
    .meta { color: #57606a; margin: 0 0 18px; font-size: 14px; }
    code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eef0f3; padding: 1px 4px; border-radius: 4px; }
    section { background: #fff; border: 1px solid #d8dee4; border-radius: 10px; padding: 18px 20px 16px; margin: 0 0 18px; }
    section h2 { font-size: 18px; margin: 0 0 2px; }
    .note { color: #57606a; margin: 0 0 10px; font-size: 13.5px; }
    .kpis { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px; background: transparent; border: 0; padding: 0; }
    .kpi { background: #fff; border: 1px solid #d8dee4; border-radius: 10px; padding: 12px 14px; }
    .kpi .label { color: #57606a; font-size: 12.5px; text-transform: uppercase; letter-spacing: 0.03em; }
    .kpi .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; margin-top: 2px; }
    .kpi .change { font-size: 13px; color: #57606a; }
    .kpi .value.small { font-size: 18px; }
    .good { color: #0a7d52 !important; }
    .bad { color: #b3261e !important; }
    .warn { color: #9a6700 !important; }
    .budgets { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; }
    .budget { border: 1px solid #eaeef2; border-radius: 8px; padding: 10px 12px; }
    .budget h3 { font-size: 16px; margin: 0; }
    .budget .figures { margin: 4px 0 6px; font-size: 14px; }
    .budget .big { font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
    svg { display: block; width: 100%; height: auto; }
    svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Arial, sans-serif; fill: #1f2328; }
    svg .tick { font-size: 12px; fill: #57606a; }
    svg .tick.strong { fill: #1f2328; font-weight: 600; }
    svg .axis-title { font-size: 12.5px; fill: #57606a; }
    svg .legend { font-size: 13px; }
    svg .label { font-size: 13.5px; }
    table { border-collapse: collapse; width: 100%; font-size: 13.5px; font-variant-numeric: tabular-nums; }
    th, td { padding: 6px 8px; border-bottom: 1px solid #eaeef2; text-align: left; }
    td.num, th.num { white-space: nowrap; }
    td { overflow-wrap: anywhere; }
    th { color: #57606a; font-weight: 600; font-size: 12.5px; border-bottom: 2px solid #d8dee4; }
    td.num, th.num { text-align: right; }
    tfoot td { font-weight: 650; border-top: 2px solid #d8dee4; }
    tr.other td { color: #656d76; font-style: italic; }
    table.movers svg { width: 300px; }
    .scroll { overflow-x: auto; }
    .empty { color: #656d76; font-style: italic; }
    footer { color: #656d76; font-size: 12.5px; margin-top: 8px; }
    @media (max-width: 900px) { .kpis { grid-template-columns: repeat(2, 1fr); } .budgets { grid-template-columns: 1fr; } }
    @media print {
      body { background: #fff; font-size: 12px; }
      main { max-width: none; padding: 0; }
      section, .kpi, .budget, tr { break-inside: avoid; }
      section { border-color: #c8ccd1; }
      .budgets { grid-template-columns: repeat(2, minmax(0, 1fr)); }
      .kpis { grid-template-columns: repeat(4, 1fr); gap: 6px; }
      .kpi { padding: 6px 8px; }
      .kpi .value { font-size: 17px; }
    }

    """
}
