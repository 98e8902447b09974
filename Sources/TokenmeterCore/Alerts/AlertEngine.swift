#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The guardrail engine (budgets, forecasts, spikes, outcome limits): budgets with thresholds and forecasts, spend
/// spikes, cost per outcome and unpriced models, judged as each event is counted.
///
/// Owned by the polling thread, like the pipeline: no locks, not `Sendable`. The caller feeds every
/// counted usage contribution (`recordUsage`) and outcome (`recordOutcome`) with the interned ids the
/// pipeline already has, then drains `pending` (`takePending`) and hands the alerts to the outbox and the
/// producer. All judgement is in EVENT time (periods, windows, forecast elapsed time), so a replay of
/// the same events produces the same alerts with the same ids; only `emitted_at` comes from `now`.
///
/// Per event: one dictionary lookup for the (workflow, owner) pair's matching rules, then integer
/// additions and one comparison per matching rule; a dictionary lookup per spike rule. No allocation once
/// a pair, period, workflow and model have been seen. Alerts (rare) allocate.
///
/// Periods (budgets and outcome limits): calendar UTC hour, day, ISO week (from Monday 00:00), month, of
/// each event's own time. A late event counts in its own period; the current and the previous period are
/// kept per rule, and an event older than both is not judged (it is still in the rollups).
///
/// The mutable state is `@exclusivity(unchecked)`: one thread owns the engine, and the runtime check on
/// each access of a class property was a measurable part of the per-event cost.
public final class AlertEngine {
    /// The wall clock for `emitted_at` (epoch milliseconds). Tests set a manual clock.
    @exclusivity(unchecked) public var now: () -> EpochMillis
    /// Alerts raised and not yet taken, in the order they were raised.
    @exclusivity(unchecked) public private(set) var pending: [Alert] = []

    public private(set) var budgetRules: [BudgetRule]
    public private(set) var spikeRules: [SpikeRule]
    public private(set) var outcomeLimitRules: [OutcomeLimitRule]

    @exclusivity(unchecked) var budgets: [BudgetTracker]
    @exclusivity(unchecked) var spikes: [SpikeTracker]
    @exclusivity(unchecked) var unitCosts: [UnitCostTracker]
    @exclusivity(unchecked) var unpriced = UnpricedTracker()
    @exclusivity(unchecked) var unrecognized = UnrecognizedUsageTracker()
    /// (workflow id, owner id) -> index into `pairs`.
    @exclusivity(unchecked) private var pairIndex = IdPairIndex()
    @exclusivity(unchecked) private var pairs: [RuleMatches] = []
    /// Spend mode (`kafka.spend_topic`): this engine judges only what its shard owns (`SpendShard`); nil: everything.
    public let shard: SpendShard?
    /// With a shard: which budgets and outcome limits are ours, decided once per rule set (a new
    /// (workflow, owner) pair only filters by these, no hashing).
    private(set) var ownedBudgets: [Bool] = []
    private(set) var ownedLimits: [Bool] = []
    /// With a shard: per spike rule, whether a key id is ours; whether an unpriced model id is ours.
    @exclusivity(unchecked) private var spikeKeyOwned: [OwnedIds] = []
    @exclusivity(unchecked) private var unpricedOwned = OwnedIds()
    @exclusivity(unchecked) private var unrecognizedOwned = OwnedIds()

    public init(budgets: [BudgetRule], spikes: [SpikeRule], outcomeLimits: [OutcomeLimitRule],
                now: @escaping () -> EpochMillis = AlertEngine.systemNow, shard: SpendShard? = nil) {
        self.now = now
        self.shard = shard
        self.budgetRules = budgets
        self.spikeRules = spikes
        self.outcomeLimitRules = outcomeLimits
        self.budgets = budgets.map(BudgetTracker.init)
        self.spikes = spikes.map(SpikeTracker.init)
        self.unitCosts = outcomeLimits.map(UnitCostTracker.init)
        decideOwnership()
    }

    /// Which rules of the current set this engine's shard owns (all of them without a shard).
    private func decideOwnership() {
        ownedBudgets = budgets.map { b in shard.map { SpendShard.budget(b.identity, count: $0.count) == $0.index } ?? true }
        ownedLimits = unitCosts.map { u in shard.map { SpendShard.outcomeLimit(u.identity, count: $0.count) == $0.index } ?? true }
        spikeKeyOwned = Array(repeating: OwnedIds(), count: spikes.count)
    }

    /// The real wall clock (CLOCK_REALTIME) in epoch milliseconds.
    public static func systemNow() -> EpochMillis {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// True when no rule can ever fire except the built-in unpriced-model alert.
    public var hasRules: Bool { !budgets.isEmpty || !spikes.isEmpty || !unitCosts.isEmpty }

    /// Returns and clears the pending alerts.
    public func takePending() -> [Alert] {
        defer { pending.removeAll(keepingCapacity: true) }
        return pending
    }

    // MARK: Events

    /// One priced (or unpriced, `cost == nil`) usage contribution: `requests` calls to `model` by
    /// `workflow` of `owner` at event time `time`. Unpriced usage feeds only the `unpriced_model` alert
    /// (its cost is unknown, so it is not in any budget, spike or unit cost).
    ///
    /// `names` gives the name table; it is called only to name something (a new workflow and owner pair,
    /// a new key, an alert), so the per-event path never copies the table.
    public func recordUsage(workflow: UInt32, owner: UInt32, model: UInt32, cost: Money?, requests: Int64,
                            time: EpochMillis, names: () -> StringTable) {
        guard let cost else {
            if let shard, !ownsUnpriced(model, shard, names) { return }
            unpriced.record(model: model, workflow: workflow, owner: owner, requests: requests, time: time,
                            names: names, now: now, into: &pending)
            return
        }
        let p = pair(workflow: workflow, owner: owner, names: names)
        for b in pairs[p].budgets {
            budgets[b].record(workflow: workflow, cost: cost, time: time, names: names, now: now, into: &pending)
        }
        for u in pairs[p].unitCosts {
            unitCosts[u].recordSpend(workflow: workflow, cost: cost, time: time, names: names, now: now, into: &pending)
        }
        for s in spikes.indices {
            let key = spikes[s].rule.by == .workflow ? workflow : owner
            if let shard, !ownsSpikeKey(s, key, shard, names) { continue }
            spikes[s].record(key: key, workflow: workflow, model: model, cost: cost, time: time, names: names,
                             now: now, into: &pending)
        }
    }

    /// One request whose usage block no row reads (contract 1b), to `model` by `workflow` of `owner` at
    /// `time`; `keys` gives the block's key names (called only when an alert is raised). Feeds only the
    /// `unrecognized_usage` alert: the request's tokens and cost are unknown.
    public func recordUnrecognized(workflow: UInt32, owner: UInt32, model: UInt32, keys: () -> String, requests: Int64,
                                   time: EpochMillis, names: () -> StringTable) {
        if let shard, !ownsUnrecognized(model, shard, names) { return }
        unrecognized.record(model: model, workflow: workflow, owner: owner, keys: keys, requests: requests, time: time,
                            names: names, now: now, into: &pending)
    }

    /// `count` outcomes named by the interned id `outcome`, for `workflow` of `owner`, at `time`.
    public func recordOutcome(workflow: UInt32, owner: UInt32, outcome: UInt32, count: Int64, time: EpochMillis,
                              names: () -> StringTable) {
        guard !unitCosts.isEmpty else { return }
        let p = pair(workflow: workflow, owner: owner, names: names)
        for u in pairs[p].unitCosts where unitCosts[u].isOutcome(outcome, names: names) {
            unitCosts[u].recordOutcome(count: count, time: time, names: names, now: now, into: &pending)
        }
    }

    @inline(__always)
    private func pair(workflow: UInt32, owner: UInt32, names: () -> StringTable) -> Int {
        if let p = pairIndex.find(workflow, owner) { return p }
        let table = names()
        let w = AlertText.name(workflow, table), o = AlertText.name(owner, table)
        let m = RuleMatches(budgets: budgets.indices.filter { ownedBudgets[$0] && budgets[$0].matches(workflow: w, owner: o) },
                            unitCosts: unitCosts.indices.filter { ownedLimits[$0] && unitCosts[$0].matches(workflow: w, owner: o) })
        pairs.append(m)
        pairIndex.insert(workflow, owner, value: pairs.count - 1)
        return pairs.count - 1
    }

    private func ownsSpikeKey(_ s: Int, _ key: UInt32, _ shard: SpendShard, _ names: () -> StringTable) -> Bool {
        if let owned = spikeKeyOwned[s][key] { return owned }
        let owned = SpendShard.spike(spikes[s].identity, key: AlertText.name(key, names()), count: shard.count) == shard.index
        spikeKeyOwned[s][key] = owned
        return owned
    }

    private func ownsUnpriced(_ model: UInt32, _ shard: SpendShard, _ names: () -> StringTable) -> Bool {
        if let owned = unpricedOwned[model] { return owned }
        let owned = SpendShard.unpriced(model: AlertText.name(model, names()), count: shard.count) == shard.index
        unpricedOwned[model] = owned
        return owned
    }

    private func ownsUnrecognized(_ model: UInt32, _ shard: SpendShard, _ names: () -> StringTable) -> Bool {
        if let owned = unrecognizedOwned[model] { return owned }
        let owned = SpendShard.unrecognized(model: AlertText.name(model, names()), count: shard.count) == shard.index
        unrecognizedOwned[model] = owned
        return owned
    }

    // MARK: Spend mode

    /// Judges the sums a shard received (each as one contribution at its latest event time).
    public func apply(_ entries: [SpendEntry], names: StringTable) {
        for e in entries {
            if e.outcome {
                recordOutcome(workflow: e.workflow, owner: e.owner, outcome: e.item, count: e.count, time: e.time, names: { names })
            } else if e.unrecognized {
                let note = e.note
                recordUnrecognized(workflow: e.workflow, owner: e.owner, model: e.item,
                                   keys: { note == SeriesKey.none ? "" : AlertText.name(note, names) },
                                   requests: e.count, time: e.time, names: { names })
            } else {
                recordUsage(workflow: e.workflow, owner: e.owner, model: e.item, cost: e.priced ? e.cost : nil,
                            requests: e.count, time: e.time, names: { names })
            }
        }
    }

    // MARK: Inspection

    /// The running total of a budget rule in the period containing `time`, nil when that period is not kept.
    public func budgetSpent(rule name: String, at time: EpochMillis) -> Money? {
        guard let b = budgets.first(where: { $0.rule.name == name }) else { return nil }
        return b.ring.slots.first { time >= $0.start && time < $0.end }?.total
    }

    // MARK: Reload

    /// A new rule set (SIGHUP). A rule whose identity is unchanged keeps its period totals and what it
    /// already published: budgets by name, scope and period (amount and thresholds may change; thresholds
    /// already published stay published, a new threshold already exceeded fires on the next event);
    /// spikes by name, `by` and window (factor and min may change); outcome limits by name, scope, outcome
    /// and period. Unpriced-model days are kept. Other rules start clean.
    public func replaceRules(budgets newBudgets: [BudgetRule], spikes newSpikes: [SpikeRule],
                             outcomeLimits newLimits: [OutcomeLimitRule]) {
        var oldBudgets: [String: [BudgetPeriodState]] = [:]
        for b in budgets { oldBudgets[b.identity] = b.ring.slots }
        var oldSpikes: [String: SpikeTracker] = [:]
        for s in spikes { oldSpikes[s.identity] = s }
        var oldLimits: [String: UnitCostTracker] = [:]
        for u in unitCosts { oldLimits[u.identity] = u }

        budgetRules = newBudgets; spikeRules = newSpikes; outcomeLimitRules = newLimits
        budgets = newBudgets.map { rule in
            var t = BudgetTracker(rule)
            if let slots = oldBudgets[t.identity] { t.adopt(slots) }
            return t
        }
        spikes = newSpikes.map { rule in
            var t = SpikeTracker(rule)
            if let old = oldSpikes[t.identity] { t.index = old.index; t.keys = old.keys; t.states = old.states }
            return t
        }
        unitCosts = newLimits.map { rule in
            var t = UnitCostTracker(rule)
            if let old = oldLimits[t.identity] { t.ring = old.ring; t.outcomeID = old.outcomeID }
            return t
        }
        pairIndex.removeAll()
        pairs.removeAll()
        decideOwnership()
    }

    // MARK: State

    static let stateMagic: UInt32 = 0x4C41_4D54  // "TMAL"
    /// 2 added the `unrecognized_usage` days after the unpriced ones; version 1 states are still read.
    static let stateVersion: UInt32 = 2
    /// Spike keys idle for more windows than this are not saved: their baseline has decayed to nothing
    /// (0.7^64 < 1e-9), and a key that comes back simply rebuilds one.
    static let spikeIdleWindows: Int64 = 64

    /// Everything needed to continue after a restart without repeating or forgetting an alert: period
    /// totals and published crossings of every rule, spike baselines, unit-cost totals and unpriced days.
    /// Names are written as strings (ids are per process); rules are identified as in `replaceRules`.
    ///
    /// Take `pending` into the outbox BEFORE writing a checkpoint holding this state: the state says the
    /// crossings were published, so from then on only the outbox remembers them.
    public func encodeState(into w: inout BinaryWriter, names: StringTable) {
        func money(_ m: Money) { w.i128(m.femtos) }
        func shares(_ d: [UInt32: Money]) {
            w.count(d.count)
            for (k, v) in d.sorted(by: { $0.key < $1.key }) { w.string(AlertText.name(k, names)); money(v) }
        }
        w.u32(AlertEngine.stateMagic)
        w.u32(AlertEngine.stateVersion)

        w.count(budgets.count)
        for b in budgets {
            w.string(b.identity)
            w.count(b.ring.slots.count)
            for p in b.ring.slots {
                w.i64(p.start); w.i64(p.end); money(p.total); w.i64(p.latest)
                shares(p.byWorkflow)
                w.count(p.buckets.count)
                for x in p.buckets { w.i128(x) }
                w.count(p.published.count)
                for t in p.published { w.i32(Int32(t)) }
                w.u8(p.forecastPublished ? 1 : 0)
            }
        }

        w.count(spikes.count)
        for s in spikes {
            w.string(s.identity)
            let window = s.rule.window.millis
            let newest = s.states.map(\.windowStart).max() ?? 0
            let kept = s.states.indices.filter { newest - s.states[$0].windowStart <= AlertEngine.spikeIdleWindows * window }
            w.count(kept.count)
            for i in kept {
                let st = s.states[i]
                w.string(AlertText.name(s.keys[i], names))
                w.i64(st.windowStart); money(st.spend); w.i128(st.baseline); w.i64(st.windows)
                w.u8(st.alerted ? 1 : 0)
                shares(st.models.dictionary)
                shares(st.workflows.dictionary)
            }
        }

        w.count(unitCosts.count)
        for u in unitCosts {
            w.string(u.identity)
            w.count(u.ring.slots.count)
            for p in u.ring.slots {
                w.i64(p.start); w.i64(p.end); money(p.spend); w.i64(p.outcomes)
                shares(p.byWorkflow)
                w.u8(p.published ? 1 : 0)
            }
        }

        unpriced.days.encode(into: &w, names: names)
        unrecognized.days.encode(into: &w, names: names)
    }

    /// Restores what `encodeState` wrote into the current rules (state of rules no longer configured is
    /// dropped; see `replaceRules` for how rules are matched). Replaces all state; `pending` is untouched
    /// (pending alerts belong in the outbox, not the checkpoint).
    public func decodeState(from r: inout BinaryReader, names: inout StringTable) throws {
        func money() throws -> Money { Money(femtos: try r.i128()) }
        func shares() throws -> [UInt32: Money] {
            var d: [UInt32: Money] = [:]
            for _ in 0..<(try r.count()) {
                let id = AlertText.restoredShare(try r.string(), &names)
                d[id, default: .zero] += try money()
            }
            return d
        }
        guard try r.u32() == AlertEngine.stateMagic else { throw CheckpointFormatError(reason: "alert state: bad magic") }
        let version = try r.u32()
        guard version == 1 || version == AlertEngine.stateVersion else {
            throw CheckpointFormatError(reason: "alert state: unknown version \(version)")
        }

        var savedBudgets: [String: [BudgetPeriodState]] = [:]
        for _ in 0..<(try r.count()) {
            let identity = try r.string()
            var slots: [BudgetPeriodState] = []
            for _ in 0..<(try r.count()) {
                var p = BudgetPeriodState(start: try r.i64(), end: try r.i64())
                p.total = try money(); p.latest = try r.i64()
                p.byWorkflow = try shares()
                let n = try r.count()
                guard n == BudgetForecast.bucketCount else { throw CheckpointFormatError(reason: "alert state: \(n) buckets") }
                for k in 0..<n { p.buckets[k] = try r.i128() }
                for _ in 0..<(try r.count()) { p.published.append(Int(try r.i32())) }
                p.forecastPublished = try r.u8() != 0
                slots.append(p)
            }
            savedBudgets[identity] = slots
        }

        var savedSpikes: [String: [(String, SpikeKeyState)]] = [:]
        for _ in 0..<(try r.count()) {
            let identity = try r.string()
            var list: [(String, SpikeKeyState)] = []
            for _ in 0..<(try r.count()) {
                let key = try r.string()
                var st = SpikeKeyState(windowStart: try r.i64())
                st.spend = try money(); st.baseline = try r.i128(); st.windows = try r.i64()
                st.alerted = try r.u8() != 0
                st.models = SpendShares(try shares())
                st.workflows = SpendShares(try shares())
                list.append((key, st))
            }
            savedSpikes[identity] = list
        }

        var savedLimits: [String: [UnitCostPeriod]] = [:]
        for _ in 0..<(try r.count()) {
            let identity = try r.string()
            var slots: [UnitCostPeriod] = []
            for _ in 0..<(try r.count()) {
                var p = UnitCostPeriod(start: try r.i64(), end: try r.i64())
                p.spend = try money(); p.outcomes = try r.i64()
                p.byWorkflow = try shares()
                p.published = try r.u8() != 0
                slots.append(p)
            }
            savedLimits[identity] = slots
        }

        var restoredUnpriced = UnpricedTracker()
        restoredUnpriced.days = try ModelDays.decode(from: &r, names: &names)
        var restoredUnrecognized = UnrecognizedUsageTracker()
        if version >= 2 { restoredUnrecognized.days = try ModelDays.decode(from: &r, names: &names) }

        for i in budgets.indices {
            budgets[i].ring = PeriodRing()
            if let slots = savedBudgets[budgets[i].identity] { budgets[i].adopt(slots) }
        }
        for i in spikes.indices {
            spikes[i].index = IdIndex(); spikes[i].keys = []; spikes[i].states = []
            spikes[i].newestStart = .min
            for (key, st) in savedSpikes[spikes[i].identity] ?? [] {
                spikes[i].newestStart = max(spikes[i].newestStart, st.windowStart)
                let id = names.intern(key)
                spikes[i].index[id] = spikes[i].keys.count
                spikes[i].keys.append(id)
                spikes[i].states.append(st)
            }
        }
        for i in unitCosts.indices {
            unitCosts[i].ring = PeriodRing()
            unitCosts[i].outcomeID = nil
            if let slots = savedLimits[unitCosts[i].identity] { unitCosts[i].ring.slots = slots }
        }
        unpriced = restoredUnpriced
        unrecognized = restoredUnrecognized
        // Caches keyed by name ids: the ids may have been renumbered (name compaction).
        pairIndex.removeAll()
        pairs.removeAll()
        spikeKeyOwned = Array(repeating: OwnedIds(), count: spikes.count)
        unpricedOwned = OwnedIds()
        unrecognizedOwned = OwnedIds()
    }

    /// Forgets the unpriced and unrecognized-usage models idle by `ModelDays`' rule: each unknown model name
    /// would otherwise stay in memory for the daemon's life. The live trackers start such a model over too,
    /// so forgetting changes no alert.
    public func forgetIdleState() {
        unpriced.days.forgetIdle()
        unrecognized.days.forgetIdle()
        unpricedOwned = OwnedIds()
        unrecognizedOwned = OwnedIds()
    }
}

/// Whether a shard owns an interned id (a spike key, an unpriced model), decided on the id's first sight:
/// afterwards an array read per contribution (ids are dense), never a hash. `SeriesKey.none` (an event
/// without a model) is the one id far past the end of the table, so it has a field of its own.
struct OwnedIds {
    private var byId = IdIndex()
    private var none: Bool?

    @inline(__always)
    subscript(id: UInt32) -> Bool? {
        get { id == SeriesKey.none ? none : byId[id].map { $0 != 0 } }
        set {
            if id == SeriesKey.none { none = newValue } else { byId[id] = newValue.map { $0 ? 1 : 0 } }
        }
    }
}
