import Testing
@testable import TokenmeterCore

private func usd(_ s: String) -> Money { Money.parse(s)! }

/// Spend mode (issue 9): what usage partitions send to alert shards, and that judging the sums on sharded
/// engines raises the same crossings as one engine fed every event.
@Suite struct SpendRoutingTests {
    static let budgets = [
        BudgetRule(name: "legal", owner: "legal", workflow: nil, period: .day, amount: usd("40"), thresholds: [25, 50, 100], forecast: false),
        BudgetRule(name: "agents", owner: nil, workflow: "*-agent", period: .month, amount: usd("90"), thresholds: [10, 50, 90, 100], forecast: false),
        BudgetRule(name: "company", owner: nil, workflow: nil, period: .month, amount: usd("150"), thresholds: [20, 40, 60, 80, 100], forecast: false),
        BudgetRule(name: "hourly", owner: nil, workflow: nil, period: .hour, amount: usd("5"), thresholds: [50, 100], forecast: false),
    ]
    static let spikes = [SpikeRule(name: "spike", by: .workflow, window: DurationSpec(millis: 300_000, label: "5m"), factorMilli: 3000, min: usd("1"))]
    static let limits = [OutcomeLimitRule(name: "unit", workflow: "invoice", outcome: "done", maxCost: usd("0.01"), period: .day)]

    struct Event {
        var workflow: String, owner: String, model: String, cost: Money?, outcome: Int64, time: EpochMillis, partition: Int
    }

    /// A seeded stream: owners and workflows mixed over partitions, an unpriced model, outcomes, two days.
    static func events(_ n: Int, seed: UInt64) -> [Event] {
        var rng = seed
        func next(_ k: UInt64) -> Int {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Int((rng >> 33) % k)
        }
        let owners = ["legal", "platform", "support"], workflows = ["invoice", "code-agent", "research-agent", "chat"]
        let start = RFC3339.parse("2026-11-20T20:00:00Z")!
        return (0..<n).map { i in
            let model = next(10) == 0 ? "mystery-model" : (next(2) == 0 ? "gpt-4o" : "claude")
            let cost: Money? = model == "mystery-model" ? nil : Money(femtos: Int128(next(900) + 100) * Money.femtosPerDollar / 1000)
            return Event(workflow: workflows[next(4)], owner: owners[next(3)], model: model, cost: cost,
                         outcome: next(5) == 0 ? Int64(next(3) + 1) : 0, time: start + Int64(i) * 20_000 + Int64(next(15_000)),
                         partition: next(5))
        }
    }

    /// The facts of alerts that do not depend on the order contributions arrive in.
    static func facts(_ alerts: [Alert]) -> Set<String> {
        Set(alerts.filter { $0.kind == .budgetThreshold || $0.kind == .unpricedModel }.map { "\($0.id) \($0.rule) \($0.kind)" })
    }

    @Test func shardedEnginesRaiseTheCrossingsOfOneEngine() throws {
        let evs = Self.events(6_000, seed: 7)
        // One engine, every event.
        var names = StringTable()
        let one = AlertEngine(budgets: Self.budgets, spikes: Self.spikes, outcomeLimits: Self.limits)
        var oneAlerts: [Alert] = []
        for e in evs {
            let w = names.intern(e.workflow), o = names.intern(e.owner)
            one.recordUsage(workflow: w, owner: o, model: names.intern(e.model), cost: e.cost, requests: 1, time: e.time, names: names)
            if e.outcome > 0 { one.recordOutcome(workflow: w, owner: o, outcome: names.intern("done"), count: e.outcome, time: e.time, names: names) }
            oneAlerts += one.takePending()
        }

        // Five partitions accumulate, cut into batches at seeded points, routed to three shards.
        let shardCount = 3
        let router = SpendRouter(budgets: Self.budgets, spikes: Self.spikes, outcomeLimits: Self.limits, shardCount: shardCount)
        let shards = (0..<shardCount).map {
            AlertEngine(budgets: Self.budgets, spikes: Self.spikes, outcomeLimits: Self.limits, shard: SpendShard(index: $0, count: shardCount))
        }
        var shardNames = StringTable()
        var accs = Array(repeating: SpendAccumulator(), count: 5)
        var shardAlerts: [[Alert]] = Array(repeating: [], count: shardCount)
        var payloads = 0
        func flush(_ p: Int) throws {
            for (shard, bytes) in router.route(accs[p], names: names) {
                let entries = try SpendRouter.decode(bytes, names: &shardNames)
                shards[shard].apply(entries, names: shardNames)
                shardAlerts[shard] += shards[shard].takePending()
                payloads += 1
            }
            accs[p].removeAll()
        }
        for (i, e) in evs.enumerated() {
            let w = names.intern(e.workflow), o = names.intern(e.owner)
            accs[e.partition].addUsage(workflow: w, owner: o, model: names.intern(e.model), cost: e.cost, requests: 1, time: e.time)
            if e.outcome > 0 { accs[e.partition].addOutcome(workflow: w, owner: o, outcome: names.intern("done"), count: e.outcome, time: e.time) }
            if i % 97 == 0 { try flush(i % 5) }
        }
        for p in 0..<5 { try flush(p) }
        #expect(payloads > 50)

        let want = Self.facts(oneAlerts)
        #expect(want.count >= 15, "the rules cross a good number of thresholds: \(want.count)")
        #expect(Self.facts(shardAlerts.flatMap { $0 }) == want)
        // Each alert once, and from the shard that owns its rule (or model).
        let all = shardAlerts.flatMap { $0 }
        #expect(Set(all.map(\.id)).count == all.count, "no alert raised by two shards")
        for (s, list) in shardAlerts.enumerated() {
            for a in list {
                switch a.kind {
                case .budgetThreshold:
                    let rule = Self.budgets.first { $0.name == a.rule }!
                    #expect(SpendShard.budget(BudgetTracker(rule).identity, count: shardCount) == s)
                case .unpricedModel:
                    #expect(SpendShard.unpriced(model: "mystery-model", count: shardCount) == s)
                default: break
                }
            }
        }
        // The spend the shards judged is the spend of the input, to the femto-dollar.
        let total = evs.compactMap(\.cost).reduce(Money.zero, +)
        let companyShard = SpendShard.budget(BudgetTracker(Self.budgets[2]).identity, count: shardCount)
        let judged = shards[companyShard].budgetSpent(rule: "company", at: evs[0].time)
        #expect(judged == total)
    }

    @Test func payloadsRoundTripWithNamesNotIds() throws {
        var names = StringTable()
        _ = names.intern("padding so ids differ")
        var acc = SpendAccumulator()
        let t0 = RFC3339.parse("2026-11-21T10:00:30Z")!
        acc.addUsage(workflow: names.intern("chat"), owner: names.intern("legal"), model: names.intern("gpt-4o"), cost: usd("1.5"), requests: 1, time: t0)
        acc.addUsage(workflow: names.intern("chat"), owner: names.intern("legal"), model: names.intern("gpt-4o"), cost: usd("0.25"), requests: 1, time: t0 + 20_000)
        acc.addUsage(workflow: names.intern("chat"), owner: names.intern("legal"), model: SeriesKey.none, cost: nil, requests: 2, time: t0)
        #expect(acc.sums.count == 2, "same minute, same key: one sum")
        let router = SpendRouter(budgets: Self.budgets, spikes: [], outcomeLimits: [], shardCount: 1)
        let routed = router.route(acc, names: names)
        #expect(routed.keys.sorted() == [0])
        var other = StringTable()
        let entries = try SpendRouter.decode(routed[0]!, names: &other)
        let priced = try #require(entries.first { $0.priced })
        #expect(other[priced.workflow] == "chat" && other[priced.owner] == "legal" && other[priced.item] == "gpt-4o")
        #expect(priced.cost == usd("1.75") && priced.count == 2 && priced.time == t0 + 20_000)
        let unpriced = try #require(entries.first { !$0.priced })
        #expect(unpriced.item == SeriesKey.none && unpriced.count == 2)
        #expect(router.route(acc, names: names) == routed, "the same sums give the same bytes")
        #expect(throws: CheckpointFormatError.self) { try SpendRouter.decode(Array(routed[0]!.dropLast()), names: &other) }
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

    @Test func aShardedEngineKeepsItsStateThroughEncoding() throws {
        var names = StringTable()
        let shard = SpendShard(index: SpendShard.budget(BudgetTracker(Self.budgets[2]).identity, count: 4), count: 4)
        let e = AlertEngine(budgets: Self.budgets, spikes: [], outcomeLimits: [], shard: shard)
        let t0 = RFC3339.parse("2026-11-21T10:00:00Z")!
        e.apply([SpendEntry(outcome: false, priced: true, workflow: names.intern("chat"), owner: names.intern("x"), item: names.intern("m"),
                            cost: usd("31"), count: 3, time: t0)], names: names)
        #expect(e.takePending().map(\.rule).contains("company"))
        var w = BinaryWriter()
        e.encodeState(into: &w, names: names)
        var names2 = StringTable()
        let again = AlertEngine(budgets: Self.budgets, spikes: [], outcomeLimits: [], shard: shard)
        var r = BinaryReader(w.bytes)
        try again.decodeState(from: &r, names: &names2)
        #expect(again.budgetSpent(rule: "company", at: t0) == usd("31"))
        again.apply([SpendEntry(outcome: false, priced: true, workflow: names2.intern("chat"), owner: names2.intern("x"), item: names2.intern("m"),
                                cost: usd("0.5"), count: 1, time: t0)], names: names2)
        #expect(again.takePending().isEmpty, "20% was published before the state was saved; 40% is not reached")
    }
}
