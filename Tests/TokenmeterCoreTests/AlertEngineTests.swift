import Foundation
import Testing
@testable import TokenmeterCore

private func t(_ s: String) -> EpochMillis { RFC3339.parse(s)! }
private func usd(_ s: String) -> Money { Money.parse(s)! }

private func budget(_ name: String = "finance-monthly", owner: String? = "finance-ops", workflow: String? = nil,
                    period: BudgetPeriod = .month, amount: String = "1000", thresholds: [Int] = [50, 80, 100],
                    forecast: Bool = false) -> BudgetRule {
    BudgetRule(name: name, owner: owner, workflow: workflow, period: period, amount: usd(amount), thresholds: thresholds,
               forecast: forecast)
}

private func spike(factor: Int64 = 3000, min: String = "1") -> SpikeRule {
    SpikeRule(name: "workflow-spike", by: .workflow, window: DurationSpec(millis: 300_000, label: "5m"), factorMilli: factor,
              min: usd(min))
}

private func limit(max: String = "0.05") -> OutcomeLimitRule {
    OutcomeLimitRule(name: "invoice-unit-cost", workflow: "invoice-extraction", outcome: "invoice_processed", maxCost: usd(max),
                     period: .day)
}

/// An engine fed with names, dollars and RFC 3339 times, with a manual wall clock.
private final class Harness {
    var names = StringTable()
    var wall: EpochMillis = RFC3339.parse("2030-01-01T00:00:00.250Z")!
    let engine: AlertEngine

    init(budgets: [BudgetRule] = [], spikes: [SpikeRule] = [], limits: [OutcomeLimitRule] = []) {
        engine = AlertEngine(budgets: budgets, spikes: spikes, outcomeLimits: limits)
        engine.now = { [unowned self] in self.wall }
    }

    @discardableResult
    func spend(_ dollars: String, at time: String, workflow: String = "invoice-extraction", owner: String = "finance-ops",
               model: String = "gpt-4o") -> [Alert] {
        let w = names.intern(workflow), o = names.intern(owner), m = names.intern(model)
        engine.recordUsage(workflow: w, owner: o, model: m, cost: usd(dollars), requests: 1, time: t(time), names: { names })
        return engine.takePending()
    }

    @discardableResult
    func unpriced(_ model: String, requests: Int64 = 1, at time: String, workflow: String = "invoice-extraction") -> [Alert] {
        let w = names.intern(workflow), o = names.intern("finance-ops"), m = names.intern(model)
        engine.recordUsage(workflow: w, owner: o, model: m, cost: nil, requests: requests, time: t(time), names: { names })
        return engine.takePending()
    }

    @discardableResult
    func outcome(_ count: Int64, at time: String, name: String = "invoice_processed",
                 workflow: String = "invoice-extraction") -> [Alert] {
        let w = names.intern(workflow), o = names.intern("finance-ops"), n = names.intern(name)
        engine.recordOutcome(workflow: w, owner: o, outcome: n, count: count, time: t(time), names: { names })
        return engine.takePending()
    }

    func stateBytes() -> [UInt8] {
        var w = BinaryWriter()
        engine.encodeState(into: &w, names: names)
        return w.bytes
    }
}

@Suite("Alert engine")
struct AlertEngineTests {
    // MARK: Budgets

    @Test func budgetThresholdCrossesOnceAndNotBelow() {
        let h = Harness(budgets: [budget()])
        #expect(h.spend("400", at: "2026-11-02T10:00:00Z").isEmpty)
        #expect(h.spend("99.99", at: "2026-11-03T10:00:00Z").isEmpty)
        let a = h.spend("0.01", at: "2026-11-21T14:03:00Z")
        #expect(a.count == 1)
        let x = a[0]
        #expect(x.kind == .budgetThreshold && x.severity == .warning && x.rule == "finance-monthly")
        #expect(x.thresholdMilliPct == 50_000 && x.spent == usd("500") && x.budget == usd("1000"))
        #expect(x.usedHundredthsPct == 5000)
        #expect(x.periodStart == t("2026-11-01T00:00:00Z") && x.periodEnd == t("2026-12-01T00:00:00Z"))
        #expect(x.eventTime == t("2026-11-21T14:03:00Z") && x.emittedAt == h.wall)
        #expect(x.key == "owner=finance-ops")
        #expect(x.topWorkflows == [Alert.Share(name: "invoice-extraction", cost: usd("500"))])
        #expect(x.message.hasPrefix("finance-monthly: 50% of $1000.00 used ($500.00), 9 days left"))
        // Above the threshold again in the same period: published once.
        #expect(h.spend("10", at: "2026-11-22T10:00:00Z").isEmpty)
        // Out of scope: another owner never counts.
        #expect(h.spend("900", at: "2026-11-22T11:00:00Z", owner: "marketing").isEmpty)
        #expect(h.engine.budgetSpent(rule: "finance-monthly", at: t("2026-11-22T00:00:00Z")) == usd("510"))
    }

    @Test func oneBigEventCrossesSeveralThresholdsInOrder() {
        let h = Harness(budgets: [budget()])
        let a = h.spend("1200", at: "2026-11-05T00:00:00Z")
        #expect(a.map(\.thresholdMilliPct) == [50_000, 80_000, 100_000])
        #expect(a.map(\.severity) == [.warning, .warning, .critical])
        #expect(Set(a.map(\.id)).count == 3)
        #expect(a.allSatisfy { $0.spent == usd("1200") && $0.usedHundredthsPct == 12_000 })
        #expect(h.spend("5000", at: "2026-11-06T00:00:00Z").isEmpty)
    }

    @Test func globScopeAndEverythingScope() {
        let h = Harness(budgets: [budget("inv", owner: "finance-*", workflow: "invoice-*", amount: "10", thresholds: [100]),
                                  budget("all", owner: nil, amount: "20", thresholds: [100])])
        #expect(h.spend("9", at: "2026-11-05T00:00:00Z", workflow: "invoice-extraction", owner: "finance-ops").isEmpty)
        #expect(h.spend("5", at: "2026-11-05T00:00:00Z", workflow: "summaries", owner: "finance-ops").isEmpty)
        let a = h.spend("1", at: "2026-11-05T01:00:00Z", workflow: "invoice-ocr", owner: "finance-eu")
        #expect(a.map(\.rule) == ["inv"])
        #expect(a[0].key == "owner=finance-*,workflow=invoice-*")
        #expect(a[0].topWorkflows.map(\.name) == ["invoice-extraction", "invoice-ocr"])
        let b = h.spend("5", at: "2026-11-05T02:00:00Z", workflow: "x", owner: "y")
        #expect(b.map(\.rule) == ["all"] && b[0].key == "all" && b[0].scope.isEmpty)
    }

    @Test func monthRolloverStartsClean() {
        let h = Harness(budgets: [budget(thresholds: [50])])
        #expect(h.spend("600", at: "2026-11-30T23:59:59.999Z").map(\.periodStart) == [t("2026-11-01T00:00:00Z")])
        #expect(h.spend("400", at: "2026-12-01T00:00:00Z").isEmpty)
        let a = h.spend("100", at: "2026-12-02T00:00:00Z")
        #expect(a.count == 1 && a[0].spent == usd("500") && a[0].periodStart == t("2026-12-01T00:00:00Z"))
        #expect(a[0].periodEnd == t("2027-01-01T00:00:00Z"))
    }

    @Test func weekRolloverOnMonday() {
        #expect(AlertPeriods.bounds(.week, containing: t("2026-11-29T23:00:00Z")) == (t("2026-11-23T00:00:00Z"), t("2026-11-30T00:00:00Z")))
        #expect(AlertPeriods.bounds(.week, containing: t("2026-11-30T00:00:00Z")).start == t("2026-11-30T00:00:00Z"))
        #expect(AlertPeriods.bounds(.week, containing: t("1970-01-01T00:00:00Z")).start == t("1969-12-29T00:00:00Z"))
        #expect(AlertPeriods.bounds(.month, containing: t("2028-02-29T12:00:00Z")) == (t("2028-02-01T00:00:00Z"), t("2028-03-01T00:00:00Z")))
        #expect(AlertPeriods.bounds(.hour, containing: t("2026-11-29T10:59:59Z")) == (t("2026-11-29T10:00:00Z"), t("2026-11-29T11:00:00Z")))
        let h = Harness(budgets: [budget(period: .week, amount: "100", thresholds: [80])])
        #expect(h.spend("79", at: "2026-11-29T23:00:00Z").isEmpty)  // Sunday
        #expect(h.spend("79", at: "2026-11-30T00:00:00Z").isEmpty)  // Monday: a new week
        let a = h.spend("1", at: "2026-12-06T23:59:59Z")
        #expect(a.count == 1 && a[0].periodStart == t("2026-11-30T00:00:00Z") && a[0].periodEnd == t("2026-12-07T00:00:00Z"))
    }

    @Test func lateEventPushesItsOwnPeriodOverAThreshold() {
        let h = Harness(budgets: [budget(thresholds: [80])])
        #expect(h.spend("700", at: "2026-11-20T00:00:00Z").isEmpty)
        #expect(h.spend("100", at: "2026-12-01T01:00:00Z").isEmpty)  // December is current now
        let a = h.spend("150", at: "2026-11-30T22:00:00Z")  // late, for November
        #expect(a.count == 1)
        #expect(a[0].periodStart == t("2026-11-01T00:00:00Z") && a[0].spent == usd("850"))
        #expect(a[0].eventTime == t("2026-11-30T22:00:00Z"))
        #expect(h.engine.budgetSpent(rule: "finance-monthly", at: t("2026-12-05T00:00:00Z")) == usd("100"))
        // Older than the previous period: not judged (the rollups still have it).
        #expect(h.spend("5000", at: "2026-10-15T00:00:00Z").isEmpty)
    }

    // MARK: Forecast

    @Test func forecastIgnoresOneExpensiveFirstEvent() {
        let h = Harness(budgets: [budget(thresholds: [100], forecast: true)])
        var alerts = h.spend("300", at: "2026-11-01T00:05:00Z")
        // Hourly small spend through the first 10% of the month (3 days of 30): no forecast yet.
        for hour in 1..<72 {
            alerts += h.spend("1", at: RFC3339.format(t("2026-11-01T00:00:00Z") + Int64(hour) * 3_600_000))
        }
        #expect(alerts.isEmpty)
    }

    @Test func forecastFiresOnceWhenASteadyRateProjectsOverBudget() throws {
        let h = Harness(budgets: [budget(thresholds: [100], forecast: true)])
        var alerts: [Alert] = []
        // $2/hour = $1440 projected over November's 720 hours; the guard opens at 72 hours.
        for hour in 0..<200 {
            alerts += h.spend("2", at: RFC3339.format(t("2026-11-01T00:30:00Z") + Int64(hour) * 3_600_000))
        }
        #expect(alerts.count == 1)
        let f = try #require(alerts.first)
        #expect(f.kind == .budgetForecast && f.severity == .warning && f.thresholdMilliPct == 100_000)
        #expect(f.eventTime >= t("2026-11-04T00:00:00Z") && f.eventTime < t("2026-11-04T02:00:00Z"))
        let projected = try #require(f.projected)
        #expect(projected > usd("1400") && projected < usd("1500"))
        guard case .forecast(let exhaustion?) = f.details else { Issue.record("no exhaustion date"); return }
        #expect(exhaustion > t("2026-11-19T00:00:00Z") && exhaustion < t("2026-11-23T00:00:00Z"))
        #expect(f.message.contains("projected $14"))
    }

    @Test func forecastStaysQuietUnderBudget() {
        let h = Harness(budgets: [budget(thresholds: [100], forecast: true)])
        var alerts: [Alert] = []
        for hour in 0..<700 {  // $1/hour: $720 of $1000
            alerts += h.spend("1", at: RFC3339.format(t("2026-11-01T00:30:00Z") + Int64(hour) * 3_600_000))
        }
        #expect(alerts.isEmpty)
    }

    @Test func thresholdAlertCarriesProjectionOnceGuardPasses() {
        let h = Harness(budgets: [budget(thresholds: [10, 50])])
        let early = h.spend("100", at: "2026-11-01T01:00:00Z")
        #expect(early.count == 1 && early[0].projected == nil)
        let later = h.spend("400", at: "2026-11-16T00:00:00Z")
        #expect(later.count == 1 && later[0].projected != nil)
    }

    // MARK: Spikes

    @Test func spikeNeedsABaselineThenFiresOncePerWindow() throws {
        let h = Harness(spikes: [spike()])
        // A new workflow spending a lot in its first windows has no baseline: no alert.
        #expect(h.spend("100", at: "2026-11-01T10:00:00Z").isEmpty)
        #expect(h.spend("100", at: "2026-11-01T10:05:00Z").isEmpty)
        #expect(h.spend("100", at: "2026-11-01T10:10:00Z").isEmpty)
        // Steady windows of $1 for another workflow, then a jump.
        let wf = "summaries"
        for m in [0, 5, 10] { #expect(h.spend("1", at: "2026-11-01T11:\(m < 10 ? "0" : "")\(m):00Z", workflow: wf).isEmpty) }
        #expect(h.spend("2.5", at: "2026-11-01T11:15:00Z", workflow: wf, model: "gpt-4o").isEmpty)  // 2.5 < 3 x 1
        let a = h.spend("2.5", at: "2026-11-01T11:16:00Z", workflow: wf, model: "claude-sonnet-4")
        let s = try #require(a.first)
        #expect(a.count == 1 && s.kind == .spendSpike && s.key == "workflow=summaries")
        #expect(s.periodStart == t("2026-11-01T11:15:00Z") && s.periodEnd == t("2026-11-01T11:20:00Z"))
        #expect(s.spent == usd("5") && s.budget == usd("1") && s.thresholdMilliPct == 300_000 && s.usedHundredthsPct == 50_000)
        guard case .spike(let windowSpend, let baseline, let factor, let models) = s.details else { Issue.record("details"); return }
        #expect(windowSpend == usd("5") && baseline == usd("1") && factor == 3000)
        #expect(models.map(\.name) == ["claude-sonnet-4", "gpt-4o"])
        #expect(h.spend("10", at: "2026-11-01T11:17:00Z", workflow: wf).isEmpty)  // once per window
    }

    @Test func spikeRespectsMinimumAndCountsEmptyWindowsAsZero() {
        let h = Harness(spikes: [spike(min: "1")])
        for m in ["00", "05", "10"] { h.spend("0.1", at: "2026-11-01T11:\(m):00Z") }
        #expect(h.spend("0.9", at: "2026-11-01T11:15:00Z").isEmpty)  // 9x the baseline but under min_usd
        let g = Harness(spikes: [spike(min: "1")])
        #expect(g.spend("1", at: "2026-11-01T11:00:00Z").isEmpty)
        // Windows 11:05 to 11:20 were empty: 4 previous windows, baseline 1 x 0.7^4 = 0.2401.
        let a = g.spend("1.5", at: "2026-11-01T11:25:00Z")
        #expect(a.count == 1 && a.first?.budget == usd("0.2401"))
    }

    // MARK: Unit cost

    @Test func costPerOutcomeNeedsOutcomes() throws {
        let h = Harness(limits: [limit()])
        #expect(h.spend("10", at: "2026-11-01T08:00:00Z").isEmpty)  // no outcomes yet: no alert
        #expect(h.outcome(300, at: "2026-11-01T08:10:00Z", name: "something_else").isEmpty)
        let a = h.outcome(100, at: "2026-11-01T09:00:00Z")  // $10 / 100 = $0.10 > $0.05
        let c = try #require(a.first)
        #expect(a.count == 1 && c.kind == .costPerOutcome && c.key == "workflow=invoice-extraction")
        guard case .costPerOutcome(let outcome, let count, let per, let max) = c.details else { Issue.record("details"); return }
        #expect(outcome == "invoice_processed" && count == 100 && per == usd("0.1") && max == usd("0.05"))
        #expect(c.budget == usd("5") && c.spent == usd("10") && c.usedHundredthsPct == 20_000)
        #expect(h.spend("10", at: "2026-11-01T10:00:00Z").isEmpty)  // once per period
        // Next day starts clean.
        #expect(h.outcome(1000, at: "2026-11-02T01:00:00Z").isEmpty)
        #expect(h.spend("40", at: "2026-11-02T02:00:00Z").isEmpty)  // 0.04 per outcome
        #expect(h.spend("10.01", at: "2026-11-02T03:00:00Z").count == 1)  // 0.05001 per outcome
    }

    // MARK: Unpriced

    @Test func unpricedModelOncePerDay() throws {
        let h = Harness(budgets: [budget()])
        let a = h.unpriced("mystery-1", requests: 3, at: "2026-11-01T08:00:00Z")
        let u = try #require(a.first)
        #expect(a.count == 1 && u.kind == .unpricedModel && u.severity == .info && u.key == "model=mystery-1")
        guard case .unpriced(let model, let requests, let workflow, _) = u.details else { Issue.record("details"); return }
        #expect(model == "mystery-1" && requests == 3 && workflow == "invoice-extraction")
        #expect(u.spent == nil && u.periodStart == t("2026-11-01T00:00:00Z"))
        #expect(h.unpriced("mystery-1", at: "2026-11-01T23:00:00Z").isEmpty)
        #expect(h.unpriced("mystery-2", at: "2026-11-01T23:00:00Z").count == 1)
        #expect(h.unpriced("mystery-1", at: "2026-11-02T00:00:00Z").count == 1)
        // Unpriced usage never counts in budgets.
        #expect(h.engine.budgetSpent(rule: "finance-monthly", at: t("2026-11-01T00:00:00Z")) == nil)
    }

    @Test func usageWithoutAModelIsStillPublishedOncePerDayAfterARestore() throws {
        let h = Harness()
        let none = { (time: String) -> [Alert] in
            h.engine.recordUsage(workflow: h.names.intern("w"), owner: h.names.intern("o"), model: SeriesKey.none, cost: nil,
                                 requests: 1, time: t(time), names: { h.names })
            return h.engine.takePending()
        }
        #expect(none("2026-11-01T08:00:00Z").map(\.key) == ["model=(none)"])
        let g = Harness()
        var r = BinaryReader(h.stateBytes())
        try g.engine.decodeState(from: &r, names: &g.names)
        g.engine.recordUsage(workflow: g.names.intern("w"), owner: g.names.intern("o"), model: SeriesKey.none, cost: nil,
                             requests: 1, time: t("2026-11-01T09:00:00Z"), names: { g.names })
        #expect(g.engine.takePending().isEmpty, "the day's alert for usage without a model was already published")
        #expect(g.engine.unpriced.days.models == [SeriesKey.none], "one day record, under the absent id")
    }

    // MARK: Ids

    @Test func alertIdsAreDeterministic() {
        func run() -> [String] {
            let h = Harness(budgets: [budget()], spikes: [spike()], limits: [limit()])
            var ids: [Alert] = []
            ids += h.spend("900", at: "2026-11-01T08:00:00Z")
            ids += h.unpriced("mystery", at: "2026-11-01T08:00:00Z")
            ids += h.outcome(1, at: "2026-11-01T08:00:00Z")
            return ids.map(\.id)
        }
        let first = run(), second = run()
        #expect(first.count == 4 && first == second)
        #expect(Set(first).count == first.count)
        #expect(first.allSatisfy { $0.count == 16 && $0.allSatisfy { "0123456789abcdef".contains($0) } })
        let scope = [KeyValue("owner", "finance-ops")]
        let a80 = Alert.makeID(rule: "finance-monthly", scope: scope, periodStart: t("2026-11-01T00:00:00Z"), kind: .budgetThreshold, threshold: "80")
        let a50 = Alert.makeID(rule: "finance-monthly", scope: scope, periodStart: t("2026-11-01T00:00:00Z"), kind: .budgetThreshold, threshold: "50")
        #expect(a80 != a50)
        #expect(first[1] == a80)
        // Pinned: the hash must never change between versions, or consumers would see new ids for old crossings.
        #expect(a80 == StableHash.hex(["finance-monthly", "owner=finance-ops", String(t("2026-11-01T00:00:00Z")), "budget_threshold", "80"]))
        #expect(StableHash.hex(["a"]) == "\(StableHash.hex(["a"]))" && StableHash.hex(["ab", "c"]) != StableHash.hex(["a", "bc"]))
        // Golden values, computed independently (FNV-1a 64 over fields joined by 0x1F, SplitMix64 finaliser).
        #expect(StableHash.hex([]) == "c3817c016ba4ff30")
        #expect(a80 == "7fd9c988e9f39dc4")
    }

    // MARK: State

    @Test func stateRoundTripContinuesWithoutRepeating() throws {
        let rules = (budgets: [budget(forecast: true)], spikes: [spike()], limits: [limit()])
        let h = Harness(budgets: rules.budgets, spikes: rules.spikes, limits: rules.limits)
        #expect(h.spend("1", at: "2026-11-02T07:45:00Z", workflow: "summaries").isEmpty)
        #expect(h.spend("1", at: "2026-11-02T07:50:00Z", workflow: "summaries").isEmpty)
        #expect(h.spend("1", at: "2026-11-02T07:55:00Z", workflow: "summaries").isEmpty)
        #expect(h.spend("600", at: "2026-11-02T08:00:00Z").map(\.thresholdMilliPct) == [50_000])
        #expect(h.outcome(1, at: "2026-11-02T09:00:00Z").count == 1)
        #expect(h.unpriced("mystery", at: "2026-11-02T09:00:00Z").count == 1)
        let bytes = h.stateBytes()

        // A new process: different ids for the same names.
        let g = Harness(budgets: rules.budgets, spikes: rules.spikes, limits: rules.limits)
        _ = g.names.intern("zzz-first"); _ = g.names.intern("another")
        var reader = BinaryReader(bytes)
        try g.engine.decodeState(from: &reader, names: &g.names)
        #expect(reader.remaining == 0)
        #expect(g.engine.budgetSpent(rule: "finance-monthly", at: t("2026-11-02T00:00:00Z")) == usd("603"))
        #expect(g.spend("1", at: "2026-11-02T10:00:00Z").isEmpty)              // 50% not repeated
        #expect(g.outcome(1, at: "2026-11-02T10:00:00Z").isEmpty)             // unit cost not repeated
        #expect(g.unpriced("mystery", at: "2026-11-02T10:00:00Z").isEmpty)    // unpriced day not repeated
        let a = g.spend("200", at: "2026-11-02T11:00:00Z")                    // 804: 80% is new
        #expect(a.filter { $0.kind == .budgetThreshold }.map(\.thresholdMilliPct) == [80_000])
        #expect(a[0].topWorkflows.map(\.name) == ["invoice-extraction", "summaries"])
        // The spike baseline came back too: 3 windows of $1, then $5.
        let s = g.spend("5", at: "2026-11-02T08:00:00Z", workflow: "summaries")
        #expect(s.map(\.kind) == [.spendSpike] && s.first?.budget == usd("1"), "\(s.map(\.message))")
        // Encoding the restored state gives the same bytes as encoding it again (stable order).
        #expect(g.stateBytes() == g.stateBytes())
    }

    @Test func corruptStateIsRefused() {
        let h = Harness(budgets: [budget()])
        var r = BinaryReader([1, 2, 3, 4, 5, 6, 7, 8])
        #expect(throws: CheckpointFormatError.self) { try h.engine.decodeState(from: &r, names: &h.names) }
    }

    @Test func replaceRulesKeepsTotalsOfUnchangedRules() {
        let h = Harness(budgets: [budget(thresholds: [50, 80, 100]), budget("other", owner: nil, amount: "100", thresholds: [100])])
        #expect(h.spend("400", at: "2026-11-02T08:00:00Z").map(\.rule) == ["other"])
        // Same name and scope with a smaller amount; "other" renamed (a new rule starts clean).
        h.engine.replaceRules(budgets: [budget(amount: "500", thresholds: [50, 80, 100]),
                                        budget("renamed", owner: nil, amount: "100", thresholds: [100])],
                              spikes: [], outcomeLimits: [])
        #expect(h.engine.budgetSpent(rule: "finance-monthly", at: t("2026-11-02T00:00:00Z")) == usd("400"))
        let a = h.spend("1", at: "2026-11-02T09:00:00Z")  // 401 of 500: 50% and 80% now crossed
        #expect(a.filter { $0.rule == "finance-monthly" }.map(\.thresholdMilliPct) == [50_000, 80_000])
        #expect(a.filter { $0.rule == "renamed" }.isEmpty)
        #expect(h.engine.budgetSpent(rule: "renamed", at: t("2026-11-02T00:00:00Z")) == usd("1"))
        // A scope change is a different rule.
        h.engine.replaceRules(budgets: [budget(owner: "finance-eu", amount: "500")], spikes: [], outcomeLimits: [])
        #expect(h.engine.budgetSpent(rule: "finance-monthly", at: t("2026-11-02T00:00:00Z")) == nil)
    }

    // MARK: JSON

    @Test func jsonHasExactlyTheContractFields() throws {
        let contract: Set<String> = ["alert_id", "type", "severity", "rule", "scope", "period_start", "period_end",
                                     "threshold_pct", "budget_usd", "spent_usd", "used_pct", "projected_usd",
                                     "top_workflows", "event_time", "emitted_at", "message"]
        let h = Harness(budgets: [budget(amount: "5000", thresholds: [80])], spikes: [spike()], limits: [limit()])
        h.wall = t("2026-11-21T14:03:01.123Z")
        _ = h.spend("3999.99", at: "2026-11-05T10:00:00Z", workflow: "invoice-extraction")
        let a = h.spend("12.36", at: "2026-11-21T14:03:00Z", workflow: "say \"hi\"\n\\")
        let x = try #require(a.first { $0.kind == .budgetThreshold })
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(x.jsonBytes)) as? [String: Any])
        #expect(Set(obj.keys) == contract)
        #expect(obj["alert_id"] as? String == x.id && obj["type"] as? String == "budget_threshold")
        #expect(obj["severity"] as? String == "warning" && obj["rule"] as? String == "finance-monthly")
        #expect(obj["scope"] as? [String: String] == ["owner": "finance-ops"])
        #expect(obj["period_start"] as? String == "2026-11-01T00:00:00Z" && obj["period_end"] as? String == "2026-12-01T00:00:00Z")
        #expect((obj["threshold_pct"] as? NSNumber)?.intValue == 80)
        #expect((obj["budget_usd"] as? NSNumber)?.doubleValue == 5000)
        #expect((obj["spent_usd"] as? NSNumber)?.doubleValue == 4012.35)
        #expect((obj["used_pct"] as? NSNumber)?.doubleValue == 80.25)
        #expect(obj["event_time"] as? String == "2026-11-21T14:03:00Z")
        #expect(obj["emitted_at"] as? String == "2026-11-21T14:03:01.123Z")
        let top = try #require(obj["top_workflows"] as? [[String: Any]])
        #expect(top.map { $0["workflow"] as? String } == ["invoice-extraction", "say \"hi\"\n\\"])
        #expect(x.json.contains("\"used_pct\":80.25,") && x.json.contains("\"spent_usd\":4012.35,"))
        #expect(obj["message"] as? String == x.message)

        // Every other type: the contract's fields plus its own.
        let extras: [Alert.Kind: Set<String>] = [
            .unpricedModel: ["model", "requests", "workflow", "owner"],
            .costPerOutcome: ["outcome", "outcomes", "cost_per_outcome_usd", "max_cost_usd"],
            .spendSpike: ["window_spend_usd", "baseline_usd", "factor", "top_models"],
            .budgetForecast: ["projected_exhaustion"],
        ]
        var others = h.unpriced("mystery", at: "2026-11-21T15:00:00Z") + h.outcome(1, at: "2026-11-05T15:00:00Z")
        for m in ["00", "05", "10"] { others += h.spend("1", at: "2026-11-22T10:\(m):00Z", workflow: "spiky") }
        others += h.spend("50", at: "2026-11-22T10:15:00Z", workflow: "spiky")
        let f = Harness(budgets: [budget(thresholds: [100], forecast: true)])
        for hour in 0..<80 { others += f.spend("2", at: RFC3339.format(t("2026-11-01T00:30:00Z") + Int64(hour) * 3_600_000)) }
        for kind in [Alert.Kind.unpricedModel, .costPerOutcome, .spendSpike, .budgetForecast] {
            let alert = try #require(others.first { $0.kind == kind }, "no \(kind) alert")
            let o = try #require(try JSONSerialization.jsonObject(with: Data(alert.jsonBytes)) as? [String: Any])
            #expect(Set(o.keys) == contract.union(extras[kind]!), "\(kind)")
        }
    }
}
