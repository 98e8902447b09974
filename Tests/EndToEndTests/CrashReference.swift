import Foundation
import Testing
import TokenmeterCore
import TokenmeterKafka
import TrafficGenerator

/// What the kill -9 test compares against an uninterrupted run: guardrail rules whose alerts do not depend
/// on how partitions interleave, the alerts they must raise (computed from the generator's independent
/// totals), the alerts read from a topic, and the rollup files of a folder.
///
/// Which alerts are order-independent (see `AlertEngine`): `alert_id` is a hash of (rule, scope, period
/// start, type, threshold), so it is the same whenever the same crossing happens. A budget threshold is
/// crossed once the period's running total reaches it; costs are never negative, so the set of
/// thresholds crossed is decided by the period's FINAL total alone, whatever the order of the events, as
/// long as every event is judged. An event is judged when its period is the rule's current or previous
/// one (`PeriodRing`): the scenario keeps every event time in 2026-11-20 or 2026-11-21 (November), so
/// month rules have one period and day rules two, and whichever comes first, both end up kept. The same
/// holds for `unpriced_model` (once per model and day). Left out: `spend_spike` (the baseline depends
/// on which windows were seen first across partitions), `budget_forecast` (the projection depends on the
/// latest event time seen at each point) and `cost_per_outcome` (the ratio goes up and down as spend and
/// outcomes interleave). Order-DEPENDENT fields of the alerts that are compared: `spent_usd`, `used_pct`,
/// `top_workflows`, `event_time`, `message`, the unpriced `requests`/`workflow`/`owner`, `emitted_at`.
struct CrashReference {
    struct Budget {
        var name: String
        var owner: String?
        var workflow: String?
        var period: String          // "day" | "month"
        var amount: Money
        var thresholds: [Int]
    }

    /// One alert as comparable across runs: its id and the fields that do not depend on event order.
    struct AlertFacts: Hashable, CustomStringConvertible {
        var id: String
        var type: String
        var rule: String
        var scope: String           // the Kafka key: `owner=...,workflow=...`, `model=...`
        var periodStart: String
        var periodEnd: String
        var threshold: String?      // JSON text of threshold_pct
        var severity: String
        var budget: Money?
        var description: String { "\(type) \(rule) \(scope) \(periodStart) \(threshold ?? "-")" }
    }

    static let day: Int64 = 86_400_000
    let budgets: [Budget]

    /// Budgets sized from the expected totals so that thresholds are crossed part-way through the input
    /// (between the kills), and some are not crossed at all.
    init(_ expected: ExpectedTotals) {
        let d20 = RFC3339.parse("2026-11-20T00:00:00Z")!
        func spend(owner: String? = nil, workflow: (String) -> Bool = { _ in true }, day start: EpochMillis? = nil) -> Money {
            var m = Money.zero
            for (k, v) in expected.byWindow where k.windowMillis == Self.day && (start == nil || k.windowStart == start)
                && (owner == nil || k.owner == owner) && workflow(k.workflow) { m += v.cost }
            return m
        }
        /// `base` x pct / 100, rounded down to cents (a config value is written with 2 decimals).
        func scaled(_ base: Money, pct: Int128) -> Money {
            let cents: Int128 = Money.femtosPerDollar / 100
            return Money(femtos: max(base.femtos * pct / 100 / cents, 1) * cents)
        }
        budgets = [
            // 11-20 holds only late events (about 1% of the input): the 50% and 100% of that day cross.
            Budget(name: "legal-daily", owner: "legal", workflow: nil, period: "day",
                   amount: scaled(spend(owner: "legal", day: d20), pct: 95), thresholds: [50, 100, 1000]),
            Budget(name: "support-monthly", owner: nil, workflow: "support-*", period: "month",
                   amount: scaled(spend(workflow: { $0.hasPrefix("support-") }), pct: 105), thresholds: [10, 30, 50, 70, 90, 100, 110]),
            Budget(name: "platform-agents", owner: "platform-eng", workflow: "*-agent", period: "month",
                   amount: scaled(spend(owner: "platform-eng", workflow: { $0.hasSuffix("-agent") }), pct: 80), thresholds: [25, 75, 100, 200]),
            Budget(name: "company-monthly", owner: nil, workflow: nil, period: "month",
                   amount: scaled(spend(), pct: 110), thresholds: [20, 40, 60, 80, 100]),
        ]
    }

    var toml: String {
        budgets.map { b in
            var s = "\n[[budget]]\nname = \"\(b.name)\"\n"
            if let o = b.owner { s += "owner = \"\(o)\"\n" }
            if let w = b.workflow { s += "workflow = \"\(w)\"\n" }
            s += "period = \"\(b.period)\"\namount_usd = \(b.amount.decimalString(decimals: 2))\n"
            s += "thresholds = [\(b.thresholds.map(String.init).joined(separator: ", "))]\n"
            return s
        }.joined()
    }

    /// The alerts these rules raise over the whole input, from the generator's own totals: every threshold
    /// whose crossing total a period's final spend reaches, and one `unpriced_model` per model and day.
    func expectedAlerts(_ expected: ExpectedTotals) -> Set<AlertFacts> {
        var out = Set<AlertFacts>()
        let daily = expected.byWindow.filter { $0.key.windowMillis == Self.day }
        for b in budgets {
            var scope: [KeyValue] = []
            if let o = b.owner { scope.append(KeyValue("owner", o)) }
            if let w = b.workflow { scope.append(KeyValue("workflow", w)) }
            var periods: [EpochMillis: Money] = [:]
            for (k, v) in daily {
                if let o = b.owner, k.owner != o { continue }
                if let w = b.workflow, !Self.glob(w, k.workflow) { continue }
                let start = b.period == "day" ? k.windowStart : RFC3339.parse("2026-11-01T00:00:00Z")!
                periods[start, default: .zero] += v.cost
            }
            for (start, total) in periods {
                let end = b.period == "day" ? start + Self.day : RFC3339.parse("2026-12-01T00:00:00Z")!
                for pct in b.thresholds where total.femtos * 100 >= b.amount.femtos * Int128(pct) {
                    out.insert(AlertFacts(
                        id: Alert.makeID(rule: b.name, scope: scope, periodStart: start, kind: .budgetThreshold, threshold: String(pct)),
                        type: "budget_threshold", rule: b.name,
                        scope: scope.isEmpty ? "all" : scope.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
                        periodStart: RFC3339.format(start), periodEnd: RFC3339.format(end), threshold: String(pct),
                        severity: pct >= 100 ? "critical" : "warning", budget: b.amount))
                }
            }
        }
        for (k, v) in daily where v.unpricedRequests > 0 {
            guard let model = k.model else { continue }
            out.insert(AlertFacts(
                id: Alert.makeID(rule: "unpriced_model", scope: [KeyValue("model", model)], periodStart: k.windowStart,
                                 kind: .unpricedModel, threshold: ""),
                type: "unpriced_model", rule: "unpriced_model", scope: "model=\(model)",
                periodStart: RFC3339.format(k.windowStart), periodEnd: RFC3339.format(k.windowStart + Self.day),
                threshold: nil, severity: "info", budget: nil))
        }
        return out
    }

    static func glob(_ pattern: String, _ s: String) -> Bool {
        if pattern.hasPrefix("*") { return s.hasSuffix(pattern.dropFirst()) }
        if pattern.hasSuffix("*") { return s.hasPrefix(pattern.dropLast()) }
        return pattern == s
    }

    // MARK: Reading alerts

    /// Every message on `topic` (all partitions, from the start, a fresh group), as facts; reads on for 2 s
    /// past `expected` messages so that duplicates show up too.
    static func readAlerts(brokers: String, topic: String, expected: Int, seconds: Double) throws -> [AlertFacts] {
        let consumer = try KafkaConsumer(properties: [("bootstrap.servers", brokers), ("group.id", "alert-reader-\(UUID().uuidString)"),
                                                      ("auto.offset.reset", "earliest")], topics: [topic], rebalance: nil)
        defer { consumer.close() }
        var out: [AlertFacts] = []
        Harness.pollUntilQuiet(consumer, seconds: seconds, quiet: 2, maxMessages: 100, enough: { out.count >= expected }) { m in
            let text = String(decoding: m.payload, as: UTF8.self)
            let o = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
            func number(_ field: String) -> String? {
                guard let r = text.range(of: "\"\(field)\":") else { return nil }
                let v = String(text[r.upperBound...].prefix { $0 != "," && $0 != "}" })
                return v == "null" ? nil : v
            }
            out.append(AlertFacts(id: o["alert_id"] as? String ?? "", type: o["type"] as? String ?? "",
                                  rule: o["rule"] as? String ?? "", scope: m.key.map { String(decoding: $0, as: UTF8.self) } ?? "",
                                  periodStart: o["period_start"] as? String ?? "", periodEnd: o["period_end"] as? String ?? "",
                                  threshold: number("threshold_pct"), severity: o["severity"] as? String ?? "",
                                  budget: number("budget_usd").flatMap { Money.parse($0) }))
        }
        return out
    }

    /// De-duplicated by alert_id, `got` equals the uninterrupted `reference`'s alerts, and both are the
    /// crossings the input's totals make (`want`); a duplicate carries the same facts as its first copy.
    /// Records an issue for each difference; returns whether all agree.
    static func expectSameAlerts(_ got: [AlertFacts], reference: [AlertFacts], want: Set<AlertFacts>,
                                 sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        var byID: [String: AlertFacts] = [:]
        for a in got {
            if let first = byID[a.id] {
                #expect(first == a, "a duplicate alert differs from its first copy: \(a) vs \(first)", sourceLocation: sourceLocation)
            }
            byID[a.id] = a
        }
        let mine = Set(byID.values)
        let theirs = Set(Dictionary(reference.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }).values)
        #expect(mine == theirs, "run under test: \(mine.subtracting(theirs)) not in the reference; \(theirs.subtracting(mine)) missing",
                sourceLocation: sourceLocation)
        #expect(theirs == want, "reference: \(theirs.subtracting(want)) not expected; \(want.subtracting(theirs)) missing",
                sourceLocation: sourceLocation)
        return mine == theirs && theirs == want
    }

    static func outboxCount(_ state: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: state + "/outbox")) ?? []).filter { $0.hasSuffix(".alert") }.count
    }

    // MARK: Rollup files

    /// Every rollup file of `dir`: relative path -> its rows, sorted. Every name is made of event times
    /// and offsets only (window start, writer, and for late rows the partition's event-time watermark or,
    /// when the idle close flushed them, the partition's offset), so two runs over the same partitions
    /// must have the same names.
    static func rollupFiles(_ dir: String) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        guard let e = FileManager.default.enumerator(atPath: dir) else { return out }
        for case let rel as String in e where rel.hasSuffix(".jsonl") && !(rel as NSString).lastPathComponent.hasPrefix(".") {
            out[rel] = try String(contentsOfFile: dir + "/" + rel, encoding: .utf8).split(separator: "\n").map(String.init).sorted()
        }
        return out
    }
}
