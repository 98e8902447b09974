/// One guardrail alert (contract section 4): the value published to the alerts topic, keyed by `key`.
///
/// Every alert carries every field of the contract; a field that means nothing for its type is `null`
/// (an unpriced model has no budget and no known spend). Type-specific facts follow the contract's
/// fields in `details`. Percentages are kept exactly: `thresholdMilliPct` in thousandths of a percent
/// (spike factors such as 2.345 give 234.5%), `usedHundredthsPct` in hundredths (printed with 2 decimals).
public struct Alert: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        case budgetThreshold = "budget_threshold"
        case budgetForecast = "budget_forecast"
        case spendSpike = "spend_spike"
        case unpricedModel = "unpriced_model"
        case unrecognizedUsage = "unrecognized_usage"
        case costPerOutcome = "cost_per_outcome"
    }

    public enum Severity: String, Sendable, Equatable {
        case info, warning, critical
    }

    /// A name and the money attributed to it (`top_workflows`, `top_models`).
    public struct Share: Sendable, Equatable {
        public var name: String
        public var cost: Money
        public init(name: String, cost: Money) { self.name = name; self.cost = cost }
    }

    /// The facts only one type of alert has, written after the contract's fields.
    public enum Details: Sendable, Equatable {
        /// `budget_threshold`: nothing beyond the contract's fields.
        case threshold
        /// `budget_forecast`: when, at the projected rate, the budget runs out (`projected_exhaustion`).
        case forecast(exhaustion: EpochMillis?)
        /// `spend_spike`: the window's spend, the baseline (EWMA of earlier windows), the rule's factor
        /// (thousandths) and the models that spent most in the window.
        case spike(windowSpend: Money, baseline: Money, factorMilli: Int64, topModels: [Share])
        /// `unpriced_model`: the model, its requests so far that UTC day, and the first caller seen.
        case unpriced(model: String, requests: Int64, workflow: String, owner: String)
        /// `unrecognized_usage`: the model, its requests so far that UTC day with a usage block no row
        /// reads, the first caller seen, and that block's top-level key names (`a, b, c`, bounded).
        case unrecognized(model: String, requests: Int64, workflow: String, owner: String, keys: String)
        /// `cost_per_outcome`: the outcome, its count, the period's spend per outcome and the limit.
        case costPerOutcome(outcome: String, outcomes: Int64, costPerOutcome: Money, maxCost: Money)
    }

    public var id: String
    public var kind: Kind
    public var severity: Severity
    public var rule: String
    /// Ordered key/values: `owner` before `workflow`; empty = everything.
    public var scope: [KeyValue]
    public var periodStart: EpochMillis
    public var periodEnd: EpochMillis
    public var thresholdMilliPct: Int64?
    public var budget: Money?
    public var spent: Money?
    public var usedHundredthsPct: Int64?
    public var projected: Money?
    public var topWorkflows: [Share]
    public var eventTime: EpochMillis
    public var emittedAt: EpochMillis
    public var message: String
    public var details: Details

    public init(id: String, kind: Kind, severity: Severity, rule: String, scope: [KeyValue], periodStart: EpochMillis,
                periodEnd: EpochMillis, thresholdMilliPct: Int64?, budget: Money?, spent: Money?,
                usedHundredthsPct: Int64?, projected: Money?, topWorkflows: [Share], eventTime: EpochMillis,
                emittedAt: EpochMillis, message: String, details: Details) {
        self.id = id; self.kind = kind; self.severity = severity; self.rule = rule; self.scope = scope
        self.periodStart = periodStart; self.periodEnd = periodEnd; self.thresholdMilliPct = thresholdMilliPct
        self.budget = budget; self.spent = spent; self.usedHundredthsPct = usedHundredthsPct; self.projected = projected
        self.topWorkflows = topWorkflows; self.eventTime = eventTime; self.emittedAt = emittedAt
        self.message = message; self.details = details
    }

    /// The scope as text: `owner=finance-ops,workflow=invoice-*`, or `all` for an empty scope. Part of the
    /// alert's identity (`makeID`); the Kafka key is its escaped form, `kafkaKey`.
    public var key: String { Alert.scopeKey(scope) }

    /// The Kafka key: `key` with control characters and backslashes escaped (`\n`, `\u001b`, `\\`), so
    /// that a model name with a newline in it cannot break a line-oriented consumer of the keys.
    public var kafkaKey: String { Alert.escapedKey(key) }

    static func escapedKey(_ key: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(key.utf8.count)
        var previous: UInt8 = 0
        for b in key.utf8 {
            defer { previous = b }
            switch b {
            case 0x5C: bytes += [0x5C, 0x5C]
            case 0x0A: bytes += [0x5C, 0x6E]
            case 0x0D: bytes += [0x5C, 0x72]
            case 0x09: bytes += [0x5C, 0x74]
            case ..<0x20, 0x7F: appendJSONUnicodeEscape(b, to: &bytes)
            // C1 controls (U+0080-U+009F) are 0xC2 0x80-0x9F in UTF-8: replace the pair with the escape.
            case 0x80...0x9F where previous == 0xC2:
                bytes.removeLast()
                appendJSONUnicodeEscape(b, to: &bytes)
            default: bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Sized to fit

    /// The most UTF-8 bytes a name (rule, scope key or value, a top list's name, model, workflow, owner,
    /// outcome) keeps in a published alert; a longer one is cut with `truncationMarker`.
    public static let maxNameBytes = 512
    /// The most UTF-8 bytes the human `message` keeps.
    public static let maxMessageBytes = 2048
    /// Appended to a cut string (inside the limit): the reader sees the value is not whole.
    public static let truncationMarker = "…[truncated]"

    /// The alert as it is published: every free-text string bounded (`maxNameBytes`, `maxMessageBytes`),
    /// so that the JSON value stays far below any producer's message size limit whatever names the events
    /// carried (at most a few tens of KiB even when every character needs a six-byte escape). The
    /// `alert_id` is kept: it was derived from the whole names, so the same crossing keeps the same id.
    public func fittedForPublishing() -> Alert {
        var a = self
        a.rule = Alert.bounded(rule, Alert.maxNameBytes)
        a.scope = scope.map { KeyValue(Alert.bounded($0.key, Alert.maxNameBytes), Alert.bounded($0.value, Alert.maxNameBytes)) }
        a.topWorkflows = topWorkflows.map { Share(name: Alert.bounded($0.name, Alert.maxNameBytes), cost: $0.cost) }
        a.message = Alert.bounded(message, Alert.maxMessageBytes)
        switch details {
        case .threshold, .forecast:
            break
        case .spike(let windowSpend, let baseline, let factorMilli, let topModels):
            a.details = .spike(windowSpend: windowSpend, baseline: baseline, factorMilli: factorMilli,
                               topModels: topModels.map { Share(name: Alert.bounded($0.name, Alert.maxNameBytes), cost: $0.cost) })
        case .unpriced(let model, let requests, let workflow, let owner):
            a.details = .unpriced(model: Alert.bounded(model, Alert.maxNameBytes), requests: requests,
                                  workflow: Alert.bounded(workflow, Alert.maxNameBytes), owner: Alert.bounded(owner, Alert.maxNameBytes))
        case .unrecognized(let model, let requests, let workflow, let owner, let keys):
            a.details = .unrecognized(model: Alert.bounded(model, Alert.maxNameBytes), requests: requests,
                                      workflow: Alert.bounded(workflow, Alert.maxNameBytes),
                                      owner: Alert.bounded(owner, Alert.maxNameBytes), keys: Alert.bounded(keys, Alert.maxNameBytes))
        case .costPerOutcome(let outcome, let outcomes, let costPerOutcome, let maxCost):
            a.details = .costPerOutcome(outcome: Alert.bounded(outcome, Alert.maxNameBytes), outcomes: outcomes,
                                        costPerOutcome: costPerOutcome, maxCost: maxCost)
        }
        return a
    }

    /// `s` when it has at most `limit` UTF-8 bytes; otherwise its longest prefix of whole characters that
    /// leaves room for `truncationMarker`, followed by the marker (`limit` bytes at most in all).
    public static func bounded(_ s: String, _ limit: Int) -> String {
        guard s.utf8.count > limit else { return s }
        let room = max(0, limit - truncationMarker.utf8.count)
        var bytes = 0
        var end = s.unicodeScalars.startIndex
        for i in s.unicodeScalars.indices {
            let w = UTF8.width(s.unicodeScalars[i])
            if bytes + w > room { break }
            bytes += w
            end = s.unicodeScalars.index(after: i)
        }
        return String(s.unicodeScalars[..<end]) + truncationMarker
    }

    public static func scopeKey(_ scope: [KeyValue]) -> String {
        scope.isEmpty ? "all" : scope.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// The deterministic id of a crossing: 16 hex digits of a stable hash of (rule, scope, period start,
    /// type, threshold). The same crossing gets the same id in every process, restart and replay.
    public static func makeID(rule: String, scope: [KeyValue], periodStart: EpochMillis, kind: Kind,
                              threshold: String) -> String {
        StableHash.hex([rule, scopeKey(scope), String(periodStart), kind.rawValue, threshold])
    }

    /// The alert as one line of JSON (no trailing newline), field names exactly as in the contract.
    public var json: String {
        var w = JSONTextWriter()
        w.beginObject()
        w.field("alert_id", id)
        w.field("type", kind.rawValue)
        w.field("severity", severity.rawValue)
        w.field("rule", rule)
        w.key("scope")
        w.beginObject()
        for kv in scope { w.field(kv.key, kv.value) }
        w.endObject()
        w.field("period_start", RFC3339.format(periodStart))
        w.field("period_end", RFC3339.format(periodEnd))
        w.field("threshold_pct", number: thresholdMilliPct.map { FixedDecimal.format(Int128($0), scale: 3, maxDecimals: 3) })
        w.field("budget_usd", budget)
        w.field("spent_usd", spent)
        w.field("used_pct", number: usedHundredthsPct.map {
            FixedDecimal.format(Int128($0), scale: 2, maxDecimals: 2, minDecimals: 2)
        })
        w.field("projected_usd", projected)
        w.key("top_workflows")
        Alert.writeShares(topWorkflows, nameKey: "workflow", into: &w)
        w.field("event_time", RFC3339.format(eventTime))
        w.field("emitted_at", RFC3339.format(emittedAt, fraction: true))
        w.field("message", message)
        switch details {
        case .threshold:
            break
        case .forecast(let exhaustion):
            w.field("projected_exhaustion", exhaustion.map { RFC3339.format($0) })
        case .spike(let windowSpend, let baseline, let factorMilli, let topModels):
            w.field("window_spend_usd", windowSpend)
            w.field("baseline_usd", baseline)
            w.field("factor", number: FixedDecimal.format(Int128(factorMilli), scale: 3, maxDecimals: 3))
            w.key("top_models")
            Alert.writeShares(topModels, nameKey: "model", into: &w)
        case .unpriced(let model, let requests, let workflow, let owner):
            w.field("model", model)
            w.field("requests", requests)
            w.field("workflow", workflow)
            w.field("owner", owner)
        case .unrecognized(let model, let requests, let workflow, let owner, let keys):
            w.field("model", model)
            w.field("requests", requests)
            w.field("workflow", workflow)
            w.field("owner", owner)
            w.field("usage_keys", keys)
        case .costPerOutcome(let outcome, let outcomes, let costPerOutcome, let maxCost):
            w.field("outcome", outcome)
            w.field("outcomes", outcomes)
            w.field("cost_per_outcome_usd", costPerOutcome)
            w.field("max_cost_usd", maxCost)
        }
        w.endObject()
        return w.text
    }

    /// The JSON value as bytes, for the producer and the outbox.
    public var jsonBytes: [UInt8] { Array(json.utf8) }

    private static func writeShares(_ shares: [Share], nameKey: String, into w: inout JSONTextWriter) {
        w.beginArray()
        for s in shares {
            w.beginObject()
            w.field(nameKey, s.name)
            w.field("cost_usd", s.cost)
            w.endObject()
        }
        w.endArray()
    }
}
