/// One `[[budget]]` rule: its scope matcher and its current and previous period.
struct BudgetTracker {
    var rule: BudgetRule
    let scope: [KeyValue]
    let ownerGlob: Glob?
    let workflowGlob: Glob?
    var ring = PeriodRing<BudgetPeriodState>()
    /// `nextCrossing` of a fresh period (the lowest threshold's total).
    let firstCrossing: Int128

    init(_ rule: BudgetRule) {
        self.rule = rule
        self.firstCrossing = rule.thresholds.first.map { BudgetPeriodState.crossingTotal(rule.amount, pct: $0) } ?? .max
        var scope: [KeyValue] = []
        if let o = rule.owner { scope.append(KeyValue("owner", o)) }
        if let w = rule.workflow { scope.append(KeyValue("workflow", w)) }
        self.scope = scope
        self.ownerGlob = rule.owner.map(Glob.init)
        self.workflowGlob = rule.workflow.map(Glob.init)
    }

    /// Totals carry over (reload, restore) only to a rule with the same name, scope and period.
    var identity: String { "\(rule.name)\u{1F}\(Alert.scopeKey(scope))\u{1F}\(rule.period.rawValue)" }

    func matches(workflow: String, owner: String) -> Bool {
        (ownerGlob?.matches(owner) ?? true) && (workflowGlob?.matches(workflow) ?? true)
    }

    /// Takes over the periods of a rule with the same identity (amount or thresholds may have changed).
    mutating func adopt(_ slots: [BudgetPeriodState]) {
        ring.slots = slots
        for i in ring.slots.indices { ring.slots[i].updateNextCrossing(rule) }
    }

    mutating func record(workflow: UInt32, cost: Money, time: EpochMillis, names: () -> StringTable,
                         now: () -> EpochMillis, into out: inout [Alert]) {
        let first = firstCrossing
        guard let i = ring.index(for: time, period: rule.period, make: { s, e in
            var p = BudgetPeriodState(start: s, end: e)
            p.nextCrossing = first
            return p
        }) else { return }
        let b = BudgetForecast.bucketIndex(time, start: ring.slots[i].start, end: ring.slots[i].end)
        ring.slots[i].total += cost
        ring.slots[i].byWorkflow.addShare(workflow, cost)
        ring.slots[i].buckets[b] += cost.femtos
        if time > ring.slots[i].latest { ring.slots[i].latest = time }
        if ring.slots[i].total.femtos >= ring.slots[i].nextCrossing {
            publishCrossings(i, time: time, names: names(), now: now, into: &out)
        }
        if rule.forecast && !ring.slots[i].forecastPublished && BudgetForecast.guardPassed(ring.slots[i], amount: rule.amount) {
            checkForecast(i, time: time, names: names(), now: now, into: &out)
        }
    }

    private mutating func publishCrossings(_ i: Int, time: EpochMillis, names: StringTable,
                                           now: () -> EpochMillis, into out: inout [Alert]) {
        let p = ring.slots[i]
        let projection = BudgetForecast.project(p, amount: rule.amount)
        for pct in rule.thresholds where !p.published.contains(pct) {
            guard p.total.femtos >= BudgetPeriodState.crossingTotal(rule.amount, pct: pct) else { break }
            ring.slots[i].published.append(pct)
            let used = AlertText.hundredthsPct(p.total, of: rule.amount)
            var message = "\(rule.name): \(pct)% of \(AlertText.dollars(rule.amount)) used (\(AlertText.dollars(p.total))), "
                + AlertText.timeLeft(from: max(time, p.latest), to: p.end)
            if let projection { message += ", projected \(AlertText.dollars(projection.projected))" }
            out.append(Alert(
                id: Alert.makeID(rule: rule.name, scope: scope, periodStart: p.start, kind: .budgetThreshold, threshold: String(pct)),
                kind: .budgetThreshold, severity: AlertText.severity(thresholdPct: pct), rule: rule.name, scope: scope,
                periodStart: p.start, periodEnd: p.end, thresholdMilliPct: Int64(pct) * 1000, budget: rule.amount,
                spent: p.total, usedHundredthsPct: used, projected: projection?.projected,
                topWorkflows: AlertText.top(p.byWorkflow, names: names), eventTime: time, emittedAt: now(),
                message: message, details: .threshold))
        }
        ring.slots[i].updateNextCrossing(rule)
    }

    private mutating func checkForecast(_ i: Int, time: EpochMillis, names: StringTable,
                                        now: () -> EpochMillis, into out: inout [Alert]) {
        let p = ring.slots[i]
        guard let projection = BudgetForecast.project(p, amount: rule.amount), projection.projected >= rule.amount else { return }
        ring.slots[i].forecastPublished = true
        var message = "\(rule.name): projected \(AlertText.dollars(projection.projected)) of \(AlertText.dollars(rule.amount))"
        if let pct = AlertText.hundredthsPct(projection.projected, of: rule.amount) { message += " (\(AlertText.pct(pct)))" }
        message += " by \(RFC3339.format(p.end))"
        if let e = projection.exhaustion { message += ", exhausted around \(RFC3339.format(e))" }
        message += "; \(AlertText.dollars(p.total)) used, " + AlertText.timeLeft(from: max(time, p.latest), to: p.end)
        out.append(Alert(
            id: Alert.makeID(rule: rule.name, scope: scope, periodStart: p.start, kind: .budgetForecast, threshold: "100"),
            kind: .budgetForecast, severity: .warning, rule: rule.name, scope: scope,
            periodStart: p.start, periodEnd: p.end, thresholdMilliPct: 100_000, budget: rule.amount,
            spent: p.total, usedHundredthsPct: AlertText.hundredthsPct(p.total, of: rule.amount),
            projected: projection.projected, topWorkflows: AlertText.top(p.byWorkflow, names: names),
            eventTime: time, emittedAt: now(), message: message, details: .forecast(exhaustion: projection.exhaustion)))
    }
}
