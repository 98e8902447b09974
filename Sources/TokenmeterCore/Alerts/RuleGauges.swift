/// The state of one `[[budget]]` rule in its current period, for /metrics. The current period is the
/// newest one the rule has counted spend in (periods follow event time, as the alerts do); before any
/// spend, the period containing the wall clock, with nothing spent.
public struct BudgetGauge: Sendable, Equatable {
    public var rule: String
    /// `owner=...,workflow=...` or `all`, as in the alerts' `scope`.
    public var scope: String
    public var period: String
    public var amount: Money
    public var spent: Money
    /// The forecast's projection at period end (see `BudgetForecast`); nil before its noise guard passes.
    public var projected: Money?
    public var periodEnd: EpochMillis

    public init(rule: String, scope: String, period: String, amount: Money, spent: Money, projected: Money?, periodEnd: EpochMillis) {
        self.rule = rule; self.scope = scope; self.period = period; self.amount = amount; self.spent = spent
        self.projected = projected; self.periodEnd = periodEnd
    }
}

/// The state of one `[[outcome_limit]]` rule in its current period (chosen as for budgets).
public struct OutcomeLimitGauge: Sendable, Equatable {
    public var rule: String
    public var scope: String
    public var outcome: String
    public var period: String
    public var maxCostPerOutcome: Money
    public var spent: Money
    public var outcomes: Int64
    public var periodEnd: EpochMillis

    public init(rule: String, scope: String, outcome: String, period: String, maxCostPerOutcome: Money, spent: Money,
                outcomes: Int64, periodEnd: EpochMillis) {
        self.rule = rule; self.scope = scope; self.outcome = outcome; self.period = period
        self.maxCostPerOutcome = maxCostPerOutcome; self.spent = spent; self.outcomes = outcomes; self.periodEnd = periodEnd
    }
}

extension AlertEngine {
    /// The budgets this engine judges (in spend mode: its shard's), in rule order.
    public func budgetGauges(now: EpochMillis) -> [BudgetGauge] {
        budgets.indices.filter { ownedBudgets[$0] }.map { i in
            let b = budgets[i]
            let scope = Alert.scopeKey(b.scope)
            if let p = b.ring.slots.last {
                return BudgetGauge(rule: b.rule.name, scope: scope, period: b.rule.period.rawValue, amount: b.rule.amount,
                                   spent: p.total, projected: BudgetForecast.project(p, amount: b.rule.amount)?.projected,
                                   periodEnd: p.end)
            }
            return BudgetGauge(rule: b.rule.name, scope: scope, period: b.rule.period.rawValue, amount: b.rule.amount,
                               spent: .zero, projected: nil, periodEnd: AlertPeriods.bounds(b.rule.period, containing: now).end)
        }
    }

    /// The outcome limits this engine judges (in spend mode: its shard's), in rule order.
    public func outcomeLimitGauges(now: EpochMillis) -> [OutcomeLimitGauge] {
        unitCosts.indices.filter { ownedLimits[$0] }.map { i in
            let u = unitCosts[i]
            let p = u.ring.slots.last
            return OutcomeLimitGauge(rule: u.rule.name, scope: Alert.scopeKey(u.scope), outcome: u.rule.outcome,
                                     period: u.rule.period.rawValue, maxCostPerOutcome: u.rule.maxCost,
                                     spent: p?.spend ?? .zero, outcomes: p?.outcomes ?? 0,
                                     periodEnd: p?.end ?? AlertPeriods.bounds(u.rule.period, containing: now).end)
        }
    }
}
