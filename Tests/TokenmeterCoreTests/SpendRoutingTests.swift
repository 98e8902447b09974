import Testing
@testable import TokenmeterCore

private func usd(_ s: String) -> Money { Money.parse(s)! }

/// Spend mode (issue 9): what usage partitions send to alert shards, and that judging the sums on sharded
/// engines raises the same crossings as one engine fed every event.
@Suite struct SpendRoutingTests {
    // Amounts sit near what the stream spends, so some thresholds of some periods are crossed and others
    // are not: counting a contribution twice or losing one changes the set of alerts.
    static let budgets = [
        BudgetRule(name: "legal", owner: "legal", workflow: nil, period: .day, amount: usd("400"), thresholds: [25, 50, 100, 150], forecast: false),
        BudgetRule(name: "agents", owner: nil, workflow: "*-agent", period: .month, amount: usd("2000"), thresholds: [10, 50, 90, 100], forecast: false),
        BudgetRule(name: "company", owner: nil, workflow: nil, period: .month, amount: usd("5000"), thresholds: [20, 40, 60, 80, 100], forecast: false),
        BudgetRule(name: "hourly", owner: nil, workflow: nil, period: .hour, amount: usd("150"), thresholds: [50, 60, 100], forecast: false),
        BudgetRule(name: "support-invoice", owner: "support", workflow: "invoice", period: .week, amount: usd("300"), thresholds: [50, 80, 100], forecast: false),
    ]
    static let spikes = [SpikeRule(name: "spike", by: .workflow, window: DurationSpec(millis: 300_000, label: "5m"), factorMilli: 3000, min: usd("1"))]
    static let limits = [OutcomeLimitRule(name: "unit", workflow: "invoice", outcome: "done", maxCost: usd("0.5"), period: .day)]
    static let shardCount = 3
    static let partitions = 5

    struct Event {
        var workflow: String, owner: String, model: String?, cost: Money?, outcome: Int64, time: EpochMillis, partition: Int
    }

    struct Rng {
        var state: UInt64
        mutating func next(_ k: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(k))
        }
    }

    /// A seeded stream over 33 hours from Friday 20:00 (two day and hour boundaries, one week, one month):
    /// owners and workflows mixed over partitions, an unpriced model and usage without a model,
    /// outcomes, and a burst of expensive chat for the spike rule.
    static func events(_ n: Int, seed: UInt64) -> [Event] {
        var rng = Rng(state: seed)
        let owners = ["legal", "platform", "support"], workflows = ["invoice", "code-agent", "research-agent", "chat"]
        let start = RFC3339.parse("2026-11-20T20:00:00Z")!
        return (0..<n).map { i in
            let roll = rng.next(40)
            let model: String? = roll == 0 ? nil : roll < 4 ? "mystery-model" : (rng.next(2) == 0 ? "gpt-4o" : "claude")
            let workflow = workflows[rng.next(4)]
            var cost: Money? = model == nil || model == "mystery-model" ? nil : Money(femtos: Int128(rng.next(900) + 100) * Money.femtosPerDollar / 1000)
            if workflow == "chat", (3000..<3040).contains(i), let c = cost { cost = c + c + c + c + c + c + c + c }
            return Event(workflow: workflow, owner: owners[rng.next(3)], model: model, cost: cost,
                         outcome: rng.next(5) == 0 ? Int64(rng.next(3) + 1) : 0, time: start + Int64(i) * 20_000 + Int64(rng.next(15_000)),
                         partition: rng.next(partitions))
        }
    }

    /// The judgement of every budget_threshold and unpriced_model alert by id: the facts that do not depend
    /// on the order contributions arrive in (not spent_usd, event time or the message).
    static func facts(_ alerts: [Alert]) -> [String: String] {
        var out: [String: String] = [:]
        for a in alerts where a.kind == .budgetThreshold || a.kind == .unpricedModel {
            out[a.id] = "\(a.kind) \(a.rule) \(a.key) \(a.periodStart)-\(a.periodEnd) \(a.thresholdMilliPct.map(String.init) ?? "-")"
        }
        return out
    }

    /// The shard that owns the rule (or spike key, or model) an alert is about.
    static func owner(of a: Alert, count: Int) -> Int {
        switch a.kind {
        case .budgetThreshold, .budgetForecast:
            return SpendShard.budget(BudgetTracker(budgets.first { $0.name == a.rule }!).identity, count: count)
        case .spendSpike:
            return SpendShard.spike(SpikeTracker(spikes.first { $0.name == a.rule }!).identity, key: a.scope[0].value, count: count)
        case .unpricedModel:
            return SpendShard.unpriced(model: a.scope[0].value, count: count)
        case .unrecognizedUsage:
            return SpendShard.unrecognized(model: a.scope[0].value, count: count)
        case .costPerOutcome:
            return SpendShard.outcomeLimit(UnitCostTracker(limits.first { $0.name == a.rule }!).identity, count: count)
        }
    }

    /// One engine, every event as it comes.
    static func unsharded(_ evs: [Event]) -> [Alert] {
        var names = StringTable()
        let one = AlertEngine(budgets: budgets, spikes: spikes, outcomeLimits: limits)
        var alerts: [Alert] = []
        for e in evs {
            let w = names.intern(e.workflow), o = names.intern(e.owner)
            one.recordUsage(workflow: w, owner: o, model: e.model.map { names.intern($0) } ?? SeriesKey.none, cost: e.cost, requests: 1,
                            time: e.time, names: { names })
            if e.outcome > 0 { one.recordOutcome(workflow: w, owner: o, outcome: names.intern("done"), count: e.outcome, time: e.time, names: { names }) }
            alerts += one.takePending()
        }
        return alerts
    }

    enum Variant {
        case routed
        /// Every shard gets every entry anybody needs: what a shard does not own, it must ignore.
        case broadcast
        /// The shard engines are saved and restored into fresh engines (and name tables) mid-stream.
        case restartAt(Int)
        /// Faults the comparison must notice.
        case appliedTwice, partitionLost(Int)
    }

    /// Partitions accumulate (on two "instances" with their own name tables), each cut into batches after
    /// a seeded 1 to 30 of its own events (under an hour of event time, so nothing is older than the
    /// previous period when it arrives), routed to `shardCount` sharded engines.
    /// Returns each shard's alerts and the number of payloads sent.
    static func sharded(_ evs: [Event], seed: UInt64, _ variant: Variant = .routed) throws -> (alerts: [[Alert]], payloads: Int) {
        var rng = Rng(state: seed)
        var sourceNames = [StringTable(), StringTable()]
        for i in 0..<7 { _ = sourceNames[1].intern("padding \(i)") }   // the same name has another id there
        let router = SpendRouter(budgets: budgets, spikes: spikes, outcomeLimits: limits,
                                 shardCount: { if case .broadcast = variant { return 1 } else { return shardCount } }())
        func engine(_ s: Int) -> AlertEngine {
            AlertEngine(budgets: budgets, spikes: spikes, outcomeLimits: limits, shard: SpendShard(index: s, count: shardCount))
        }
        var engines = (0..<shardCount).map(engine)
        var shardNames = Array(repeating: StringTable(), count: shardCount)
        var accs = Array(repeating: SpendAccumulator(), count: partitions)
        var sinceCut = Array(repeating: 0, count: partitions)
        var cutAfter = (0..<partitions).map { _ in rng.next(30) + 1 }
        var alerts: [[Alert]] = Array(repeating: [], count: shardCount)
        var payloads = 0

        func deliver(_ bytes: [UInt8], to s: Int) throws {
            let entries = try SpendRouter.decode(bytes, names: &shardNames[s])
            engines[s].apply(entries, names: shardNames[s])
            if case .appliedTwice = variant { engines[s].apply(entries, names: shardNames[s]) }
            alerts[s] += engines[s].takePending()
        }
        func flush(_ p: Int) throws {
            defer { accs[p].removeAll() }
            if case .partitionLost(let lost) = variant, lost == p { return }
            for (shard, bytes) in router.route(accs[p], names: sourceNames[p < 3 ? 0 : 1]).sorted(by: { $0.key < $1.key }) {
                payloads += 1
                if case .broadcast = variant {
                    for s in 0..<shardCount { try deliver(bytes, to: s) }
                } else {
                    try deliver(bytes, to: shard)
                }
            }
        }
        for (i, e) in evs.enumerated() {
            if case .restartAt(let at) = variant, at == i {
                for s in 0..<shardCount {
                    var w = BinaryWriter()
                    engines[s].encodeState(into: &w, names: shardNames[s])
                    engines[s] = engine(s)
                    shardNames[s] = StringTable()
                    _ = shardNames[s].intern("a name first, so ids differ after the restart")
                    var r = BinaryReader(w.bytes)
                    try engines[s].decodeState(from: &r, names: &shardNames[s])
                }
            }
            let p = e.partition
            var names = sourceNames[p < 3 ? 0 : 1]
            let w = names.intern(e.workflow), o = names.intern(e.owner)
            accs[p].addUsage(workflow: w, owner: o, model: e.model.map { names.intern($0) } ?? SeriesKey.none, cost: e.cost, requests: 1, time: e.time)
            if e.outcome > 0 { accs[p].addOutcome(workflow: w, owner: o, outcome: names.intern("done"), count: e.outcome, time: e.time) }
            sourceNames[p < 3 ? 0 : 1] = names
            sinceCut[p] += 1
            if sinceCut[p] >= cutAfter[p] {
                try flush(p)
                sinceCut[p] = 0
                cutAfter[p] = rng.next(30) + 1
            }
        }
        for p in 0..<partitions { try flush(p) }
        return (alerts, payloads)
    }

    static let stream = events(6_000, seed: 7)
    static let reference = unsharded(stream)

    @Test func theReferenceRunIsAMeaningfulTarget() {
        let want = Self.facts(Self.reference)
        let kinds = Set(Self.reference.map(\.kind))
        #expect(kinds.isSuperset(of: [.budgetThreshold, .unpricedModel, .spendSpike, .costPerOutcome]), "\(kinds)")
        // Some thresholds are crossed and some not, in several periods of each kind.
        let budgetAlerts = Self.reference.filter { $0.kind == .budgetThreshold }
        for rule in Self.budgets {
            let mine = budgetAlerts.filter { $0.rule == rule.name }
            #expect(!mine.isEmpty, "\(rule.name) crosses a threshold")
            let periods = Set(mine.map(\.periodStart))
            #expect(mine.count < periods.count * rule.thresholds.count, "\(rule.name) leaves a threshold uncrossed")
        }
        #expect(Set(budgetAlerts.filter { $0.rule == "hourly" }.map(\.periodStart)).count >= 20)
        #expect(want.values.contains { $0.contains("model=(none)") } && want.values.contains { $0.contains("model=mystery-model") })
        #expect(want.count == Self.reference.filter { $0.kind == .budgetThreshold || $0.kind == .unpricedModel }.count, "ids are unique")
        // The rules are spread over the shards, so routing matters.
        #expect(Set(Self.budgets.map { SpendShard.budget(BudgetTracker($0).identity, count: Self.shardCount) }).count >= 2)
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func shardedEnginesRaiseTheCrossingsOfOneEngine(seed: UInt64) throws {
        let (shardAlerts, payloads) = try Self.sharded(Self.stream, seed: seed)
        #expect(payloads > 300)
        let all = shardAlerts.flatMap { $0 }
        #expect(Self.facts(all) == Self.facts(Self.reference))
        #expect(Set(all.map(\.id)).count == all.count, "no alert raised twice, nor by two shards")
        for (s, list) in shardAlerts.enumerated() {
            for a in list { #expect(Self.owner(of: a, count: Self.shardCount) == s, "shard \(s) raised \(a.kind) \(a.rule) \(a.key)") }
        }
        #expect(shardAlerts.allSatisfy { !$0.isEmpty }, "every shard judged something")
    }

    @Test func aShardIgnoresWhatItDoesNotOwn() throws {
        let (shardAlerts, _) = try Self.sharded(Self.stream, seed: 4, .broadcast)
        for (s, list) in shardAlerts.enumerated() {
            for a in list { #expect(Self.owner(of: a, count: Self.shardCount) == s, "shard \(s) raised \(a.kind) \(a.rule) \(a.key)") }
        }
        #expect(Set(shardAlerts.flatMap { $0 }.map(\.kind)).isSuperset(of: [.budgetThreshold, .unpricedModel, .spendSpike, .costPerOutcome]))
        #expect(Self.facts(shardAlerts.flatMap { $0 }) == Self.facts(Self.reference))
    }

    @Test func shardsRestoredMidStreamContinueWithoutRepeatingOrForgetting() throws {
        let (shardAlerts, _) = try Self.sharded(Self.stream, seed: 5, .restartAt(Self.stream.count / 2))
        let all = shardAlerts.flatMap { $0 }
        #expect(Self.facts(all) == Self.facts(Self.reference))
        let dup = Dictionary(grouping: all, by: \.id).values.filter { $0.count > 1 }.map { "\($0[0].kind) \($0[0].rule) \($0[0].key) \($0[0].periodStart) \($0.map(\.eventTime))" }
        #expect(Set(all.map(\.id)).count == all.count, "a crossing published before the restart is not published again: \(dup)")
    }

    @Test func theComparisonNoticesLostAndDoubledSpend() throws {
        let want = Self.facts(Self.reference)
        #expect(Self.facts(try Self.sharded(Self.stream, seed: 1, .appliedTwice).alerts.flatMap { $0 }) != want)
        #expect(Self.facts(try Self.sharded(Self.stream, seed: 1, .partitionLost(2)).alerts.flatMap { $0 }) != want)
    }

    // MARK: Accumulator and payloads

    @Test func theAccumulatorSumsLikeADictionaryThroughGrowthAndClearing() {
        var rng = Rng(state: 11)
        var acc = SpendAccumulator()
        let t0 = RFC3339.parse("2026-11-21T10:00:00Z")!
        for round in 0..<2 {
            var want: [SpendAccumulator.Key: SpendAccumulator.Sum] = [:]
            for _ in 0..<20_000 {
                let w = UInt32(rng.next(30)), o = UInt32(rng.next(5)), item = rng.next(50) == 0 ? SeriesKey.none : UInt32(rng.next(8))
                let time = t0 + Int64(rng.next(3_600_000))
                let outcome = rng.next(4) == 0
                let cost: Money? = outcome || rng.next(6) == 0 ? nil : Money(nanos: Int64(rng.next(1_000_000)))
                let n = Int64(rng.next(3) + 1)
                let k = SpendAccumulator.Key(outcome: outcome, priced: cost != nil, workflow: w, owner: o, item: item,
                                             minute: time / 60_000)
                var s = want[k] ?? SpendAccumulator.Sum()
                s.cost += cost ?? .zero; s.count += n; s.latest = max(s.latest, time)
                want[k] = s
                if outcome {
                    acc.addOutcome(workflow: w, owner: o, outcome: item, count: n, time: time)
                } else {
                    acc.addUsage(workflow: w, owner: o, model: item, cost: cost, requests: n, time: time)
                }
            }
            #expect(want.count > 1_000, "round \(round): the table grew many times")
            #expect(acc.count == want.count)
            #expect(Dictionary(uniqueKeysWithValues: zip(acc.keys, acc.sums)) == want)
            acc.removeAll()
            #expect(acc.isEmpty && acc.keys.isEmpty && acc.sums.isEmpty)
        }
    }

    @Test func payloadsRoundTripWithNamesNotIds() throws {
        var names = StringTable()
        _ = names.intern("padding so ids differ")
        var acc = SpendAccumulator()
        let t0 = RFC3339.parse("2026-11-21T10:00:30Z")!
        acc.addUsage(workflow: names.intern("chat"), owner: names.intern("legal"), model: names.intern("gpt-4o"), cost: usd("1.5"), requests: 1, time: t0)
        acc.addUsage(workflow: names.intern("chat"), owner: names.intern("legal"), model: names.intern("gpt-4o"), cost: usd("0.25"), requests: 1, time: t0 + 20_000)
        acc.addUsage(workflow: names.intern("chat"), owner: names.intern("legal"), model: SeriesKey.none, cost: nil, requests: 2, time: t0)
        acc.addUsage(workflow: names.intern("chat"), owner: names.intern("legal"), model: names.intern("(none)"), cost: nil, requests: 5, time: t0)
        acc.addOutcome(workflow: names.intern("invoice"), owner: names.intern("legal"), outcome: names.intern("done"), count: 3, time: t0 + 40_000)
        #expect(acc.count == 4, "same minute, same key: one sum")
        let router = SpendRouter(budgets: Self.budgets, spikes: [], outcomeLimits: Self.limits, shardCount: 1)
        let routed = router.route(acc, names: names)
        #expect(routed.keys.sorted() == [0])
        var other = StringTable()
        let entries = try SpendRouter.decode(routed[0]!, names: &other)
        #expect(entries.count == 4)
        let priced = try #require(entries.first { $0.priced })
        #expect(other[priced.workflow] == "chat" && other[priced.owner] == "legal" && other[priced.item] == "gpt-4o")
        #expect(priced.cost == usd("1.75") && priced.count == 2 && priced.time == t0 + 20_000)
        let noModel = try #require(entries.first { !$0.priced && !$0.outcome && $0.item == SeriesKey.none })
        #expect(noModel.count == 2, "no model stays no model, apart from a model named like the placeholder")
        #expect(entries.contains { !$0.priced && $0.item != SeriesKey.none && other[$0.item] == "(none)" && $0.count == 5 })
        let outcome = try #require(entries.first { $0.outcome })
        #expect(other[outcome.item] == "done" && outcome.count == 3 && outcome.cost == .zero && outcome.time == t0 + 40_000)
        #expect(throws: CheckpointFormatError.self) { try SpendRouter.decode(Array(routed[0]!.dropLast()), names: &other) }
        #expect(throws: CheckpointFormatError.self) { try SpendRouter.decode(routed[0]! + [0], names: &other) }
        var wrongVersion = routed[0]!
        wrongVersion[4] &+= 1
        #expect(throws: CheckpointFormatError.self) { try SpendRouter.decode(wrongVersion, names: &other) }
    }

    @Test func theSameSumsGiveTheSameBytesWhateverTheOrderAndIds() {
        let evs = Array(Self.stream.prefix(500))
        func bytes(_ order: [Event], padding: Int) -> [Int: [UInt8]] {
            var names = StringTable()
            for i in 0..<padding { _ = names.intern("pad \(i)") }
            var acc = SpendAccumulator()
            for e in order {
                let w = names.intern(e.workflow), o = names.intern(e.owner)
                acc.addUsage(workflow: w, owner: o, model: e.model.map { names.intern($0) } ?? SeriesKey.none, cost: e.cost, requests: 1, time: e.time)
                if e.outcome > 0 { acc.addOutcome(workflow: w, owner: o, outcome: names.intern("done"), count: e.outcome, time: e.time) }
            }
            return SpendRouter(budgets: Self.budgets, spikes: Self.spikes, outcomeLimits: Self.limits, shardCount: Self.shardCount)
                .route(acc, names: names)
        }
        let a = bytes(evs, padding: 0)
        #expect(a.count == Self.shardCount)
        #expect(bytes(evs.reversed(), padding: 3) == a)
    }

    /// Who gets what: an entry goes exactly to the shards of the rules (and keys, and models) it feeds.
    @Test func entriesGoToTheShardsOfTheRulesTheyFeed() throws {
        let count = 7
        let router = SpendRouter(budgets: Self.budgets, spikes: Self.spikes, outcomeLimits: Self.limits, shardCount: count)
        func shard(_ b: Int) -> Int { SpendShard.budget(BudgetTracker(Self.budgets[b]).identity, count: count) }
        let spikeID = SpikeTracker(Self.spikes[0]).identity, limitID = UnitCostTracker(Self.limits[0]).identity
        // Priced usage of legal's invoice: legal, company, hourly, the spike key "invoice", the outcome limit.
        #expect(router.shards(outcome: false, priced: true, workflow: "invoice", owner: "legal", item: "gpt-4o")
                == [shard(0), shard(2), shard(3), SpendShard.spike(spikeID, key: "invoice", count: count),
                    SpendShard.outcomeLimit(limitID, count: count)])
        // Support's code agent: agents (glob), company, hourly, the spike key; not legal, not the invoice limit.
        #expect(router.shards(outcome: false, priced: true, workflow: "code-agent", owner: "support", item: "claude")
                == [shard(1), shard(2), shard(3), SpendShard.spike(spikeID, key: "code-agent", count: count)])
        // Unpriced usage: only the model's shard, whatever the rules.
        #expect(router.shards(outcome: false, priced: false, workflow: "invoice", owner: "legal", item: "mystery-model")
                == [SpendShard.unpriced(model: "mystery-model", count: count)])
        // Outcomes: only matching outcome limits of that outcome.
        #expect(router.shards(outcome: true, priced: false, workflow: "invoice", owner: "legal", item: "done")
                == [SpendShard.outcomeLimit(limitID, count: count)])
        #expect(router.shards(outcome: true, priced: false, workflow: "invoice", owner: "legal", item: "other").isEmpty)
        #expect(router.shards(outcome: true, priced: false, workflow: "chat", owner: "legal", item: "done").isEmpty)
        // The hash is the design's: StableHash over the fields, modulo the count.
        var h = StableHash()
        for f in ["spike", spikeID, "chat"] { h.add(f) }
        #expect(SpendShard.spike(spikeID, key: "chat", count: count) == Int(h.finalized % UInt64(count)))
    }

    @Test func changelogRecordsAndSpendMessagesRoundTrip() throws {
        let rec = ChangelogRecord(nextOffset: 12_345, state: [1, 2, 3], spendFrom: 12_000,
                                  spend: [.init(shard: 2, bytes: [9, 9]), .init(shard: 0, bytes: []), .init(shard: 2, bytes: [7])])
        let bytes = rec.encode()
        #expect(try ChangelogRecord.decode(bytes) == rec)
        #expect(bytes.withUnsafeBytes { ChangelogRecord.nextOffset($0) } == 12_345)
        #expect([UInt8]("not a record".utf8).withUnsafeBytes { ChangelogRecord.nextOffset($0) } == nil)
        #expect(throws: CheckpointFormatError.self) { try ChangelogRecord.decode(bytes + [0]) }
        let m = SpendMessage(from: -1, to: 77, payload: [4, 5])
        #expect(try SpendMessage.decode(m.encode()) == m)
        #expect(throws: CheckpointFormatError.self) { try SpendMessage.decode(Array(m.encode().dropLast())) }
    }

    // MARK: Sharded engine

    @Test func aShardedEngineKeepsItsStateThroughEncoding() throws {
        var names = StringTable()
        let shard = SpendShard(index: SpendShard.budget(BudgetTracker(Self.budgets[2]).identity, count: 4), count: 4)
        let e = AlertEngine(budgets: Self.budgets, spikes: [], outcomeLimits: [], shard: shard)
        let t0 = RFC3339.parse("2026-11-21T10:00:00Z")!
        e.apply([SpendEntry(outcome: false, priced: true, workflow: names.intern("chat"), owner: names.intern("x"), item: names.intern("m"),
                            cost: usd("1001"), count: 3, time: t0)], names: names)
        #expect(e.takePending().map(\.rule).contains("company"))
        var w = BinaryWriter()
        e.encodeState(into: &w, names: names)
        var names2 = StringTable()
        let again = AlertEngine(budgets: Self.budgets, spikes: [], outcomeLimits: [], shard: shard)
        var r = BinaryReader(w.bytes)
        try again.decodeState(from: &r, names: &names2)
        #expect(again.budgetSpent(rule: "company", at: t0) == usd("1001"))
        var w2 = BinaryWriter()
        again.encodeState(into: &w2, names: names2)
        #expect(w2.bytes == w.bytes, "the restored state encodes to the same bytes")
        again.apply([SpendEntry(outcome: false, priced: true, workflow: names2.intern("chat"), owner: names2.intern("x"), item: names2.intern("m"),
                                cost: usd("0.5"), count: 1, time: t0)], names: names2)
        #expect(again.takePending().isEmpty, "20% was published before the state was saved; 40% is not reached")
    }

    @Test func aShardedEngineJudgesOnlyTheRulesItOwnsAfterAReload() throws {
        // Ownership follows the rule set: after a reload that renames a rule, the new identity's shard owns it.
        var names = StringTable()
        let t0 = RFC3339.parse("2026-11-21T10:00:00Z")!
        let rule = BudgetRule(name: "r0", period: .day, amount: usd("1"), thresholds: [100], forecast: false)
        let renamed = (1...40).map { BudgetRule(name: "r\($0)", period: .day, amount: usd("1"), thresholds: [100], forecast: false) }
        let owner = SpendShard.budget(BudgetTracker(rule).identity, count: 2)
        let other = try #require(renamed.first { SpendShard.budget(BudgetTracker($0).identity, count: 2) != owner })
        let e = AlertEngine(budgets: [rule], spikes: [], outcomeLimits: [], shard: SpendShard(index: owner, count: 2))
        let entry = SpendEntry(outcome: false, priced: true, workflow: names.intern("w"), owner: names.intern("o"), item: names.intern("m"),
                               cost: usd("2"), count: 1, time: t0)
        e.apply([entry], names: names)
        #expect(e.takePending().map(\.rule) == ["r0"])
        e.replaceRules(budgets: [other], spikes: [], outcomeLimits: [])
        e.apply([entry], names: names)
        #expect(e.takePending().isEmpty, "\(other.name) belongs to the other shard")
    }

    // MARK: Pipeline

    static func pipelineConfig(spend: Bool) -> TokenmeterConfig {
        let text = """
            [kafka]
            brokers = "127.0.0.1:9"
            group_id = "g"
            topics = ["usage"]
            alerts_topic = "alerts"
            \(spend ? "changelog_topic = \"cl\"\nspend_topic = \"sp\"" : "")

            [rollups]
            dir = "/nonexistent/tokenmeter-spend-test"

            [[budget]]
            name = "all"
            period = "day"
            amount_usd = 1
            thresholds = [50, 100]
            forecast = false

            [[outcome_limit]]
            name = "unit"
            workflow = "w"
            outcome = "done"
            max_cost_usd = 0.1
            period = "day"
            """
        guard case .success(let c) = ConfigLoader.parse(text: text, file: "spend.toml") else { fatalError("test config") }
        return c
    }

    @Test func inSpendModeThePipelineAccumulatesInsteadOfJudging() throws {
        let events = [
            #"{"id":"a","timestamp":"2026-11-21T08:00:10Z","workflow":"w","owner":"o","model":"m","cost_usd":0.75}"#,
            #"{"id":"b","timestamp":"2026-11-21T08:01:40Z","workflow":"w","owner":"o","model":"m","cost_usd":0.5}"#,
            #"{"id":"b","timestamp":"2026-11-21T08:01:40Z","workflow":"w","owner":"o","model":"m","cost_usd":0.5}"#,
            #"{"id":"c","timestamp":"2026-11-21T08:01:05Z","workflow":"w","owner":"o","type":"outcome","outcome":"done","count":2}"#,
        ]
        func run(_ p: Pipeline) {
            for (i, ev) in events.enumerated() {
                _ = Array(ev.utf8).withUnsafeBytes { p.process($0, topicIndex: 0, partition: 3, offset: Int64(i), messageTime: nil, wallNow: 0) }
            }
        }
        let direct = Pipeline(config: Self.pipelineConfig(spend: false), instance: "t")
        run(direct)
        let directAlerts = direct.alerts.takePending()
        #expect(Set(directAlerts.map(\.kind)) == [.budgetThreshold, .costPerOutcome])
        #expect(direct.takeSpend(topicIndex: 0, partition: 3).isEmpty)

        let spend = Pipeline(config: Self.pipelineConfig(spend: true), instance: "t")
        run(spend)
        #expect(spend.alerts.pending.isEmpty, "in spend mode the local engine judges nothing")
        let acc = spend.takeSpend(topicIndex: 0, partition: 3)
        #expect(acc.count == 3, "usage in two minutes (the duplicate not counted), one outcome")
        #expect(acc.sums.reduce(Money.zero) { $0 + $1.cost } == usd("1.25"))
        #expect(spend.takeSpend(topicIndex: 0, partition: 3).isEmpty && spend.state(topicIndex: 0, partition: 3)!.spend.isEmpty)
        #expect(spend.takeSpend(topicIndex: 0, partition: 9).isEmpty, "an unassigned partition has nothing")

        // Judged on a shard, the sums raise the alerts the direct pipeline raised.
        let c = Self.pipelineConfig(spend: true)
        let router = SpendRouter(budgets: c.budgets, spikes: c.spikes, outcomeLimits: c.outcomeLimits, shardCount: 1)
        let engine = AlertEngine(budgets: c.budgets, spikes: c.spikes, outcomeLimits: c.outcomeLimits, shard: SpendShard(index: 0, count: 1))
        var names = StringTable()
        for (_, bytes) in router.route(acc, names: spend.dimensions.names) {
            engine.apply(try SpendRouter.decode(bytes, names: &names), names: names)
        }
        #expect(Set(engine.takePending().map(\.id)) == Set(directAlerts.map(\.id)))
    }
}
