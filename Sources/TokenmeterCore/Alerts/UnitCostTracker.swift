/// One `[[outcome_limit]]` rule: spend of the matching workflows (and owner) divided by the count of the
/// named outcome in the same calendar period. `cost_per_outcome` is published once per period, at the
/// first moment the period has outcomes and spend / outcomes > `max_cost_usd` (checked after each usage
/// and each outcome event; exact integer comparison spend > max x outcomes).
struct UnitCostTracker {
    var rule: OutcomeLimitRule
    let scope: [KeyValue]
    let ownerGlob: Glob?
    let workflowGlob: Glob?
    /// The interned id of `rule.outcome`, found on the first outcome event that carries it.
    var outcomeID: UInt32?
    var ring = PeriodRing<UnitCostPeriod>()

    init(_ rule: OutcomeLimitRule) {
        self.rule = rule
        var scope: [KeyValue] = []
        if let o = rule.owner { scope.append(KeyValue("owner", o)) }
        if let w = rule.workflow { scope.append(KeyValue("workflow", w)) }
        self.scope = scope
        self.ownerGlob = rule.owner.map(Glob.init)
        self.workflowGlob = rule.workflow.map(Glob.init)
    }

    var identity: String {
        "\(rule.name)\u{1F}\(Alert.scopeKey(scope))\u{1F}\(rule.outcome)\u{1F}\(rule.period.rawValue)"
    }

    func matches(workflow: String, owner: String) -> Bool {
        (ownerGlob?.matches(owner) ?? true) && (workflowGlob?.matches(workflow) ?? true)
    }

    mutating func isOutcome(_ id: UInt32, names: () -> StringTable) -> Bool {
        if let outcomeID { return outcomeID == id }
        let table = names()
        guard Int(id) < table.count, table[id] == rule.outcome else { return false }
        outcomeID = id
        return true
    }

    mutating func recordSpend(workflow: UInt32, cost: Money, time: EpochMillis, names: () -> StringTable,
                              now: () -> EpochMillis, into out: inout [Alert]) {
        guard let i = ring.index(for: time, period: rule.period, make: UnitCostPeriod.init) else { return }
        ring.slots[i].spend += cost
        ring.slots[i].byWorkflow.addShare(workflow, cost)
        check(i, time: time, names: names, now: now, into: &out)
    }

    mutating func recordOutcome(count: Int64, time: EpochMillis, names: () -> StringTable,
                                now: () -> EpochMillis, into out: inout [Alert]) {
        guard let i = ring.index(for: time, period: rule.period, make: UnitCostPeriod.init) else { return }
        ring.slots[i].outcomes &+= count
        check(i, time: time, names: names, now: now, into: &out)
    }

    private mutating func check(_ i: Int, time: EpochMillis, names: () -> StringTable, now: () -> EpochMillis,
                                into out: inout [Alert]) {
        guard !ring.slots[i].published, ring.slots[i].outcomes > 0,
              ring.slots[i].spend.femtos > rule.maxCost.femtos * Int128(ring.slots[i].outcomes) else { return }
        ring.slots[i].published = true
        let p = ring.slots[i]
        let allowed = Money(femtos: rule.maxCost.femtos * Int128(p.outcomes))
        let perOutcome = Money(femtos: p.spend.femtos / Int128(p.outcomes))
        let message = "\(rule.name): $\(perOutcome.decimalString(decimals: 6)) per \(rule.outcome), over the "
            + "$\(rule.maxCost.decimalString(decimals: 6)) limit (\(AlertText.dollars(p.spend)) for \(p.outcomes) "
            + "outcome\(p.outcomes == 1 ? "" : "s") this \(rule.period.rawValue))"
        out.append(Alert(
            id: Alert.makeID(rule: rule.name, scope: scope, periodStart: p.start, kind: .costPerOutcome,
                             threshold: rule.maxCost.decimalString(decimals: 15)),
            kind: .costPerOutcome, severity: .warning, rule: rule.name, scope: scope,
            periodStart: p.start, periodEnd: p.end, thresholdMilliPct: 100_000, budget: allowed, spent: p.spend,
            usedHundredthsPct: AlertText.hundredthsPct(p.spend, of: allowed), projected: nil,
            topWorkflows: AlertText.top(p.byWorkflow, names: names()), eventTime: time, emittedAt: now(),
            message: message,
            details: .costPerOutcome(outcome: rule.outcome, outcomes: p.outcomes, costPerOutcome: perOutcome, maxCost: rule.maxCost)))
    }
}
