extension Dictionary where Key == UInt32, Value == Money {
    /// Adds `cost` to the workflow's share of a period, or to the "other workflows" share once the period
    /// holds `AlertText.maxWorkflowShares` workflows (see there).
    @inline(__always)
    mutating func addShare(_ workflow: UInt32, _ cost: Money) {
        if let i = index(forKey: workflow) {
            values[i] += cost
        } else if count < AlertText.maxWorkflowShares {
            self[workflow] = cost
        } else {
            self[AlertText.otherWorkflows, default: .zero] += cost
        }
    }
}

/// Helpers shared by the trackers to build alerts: shares, percentages, human text.
enum AlertText {
    /// `$4012.35`
    static func dollars(_ m: Money) -> String { "$" + m.dollarsString() }

    /// Up to `limit` largest entries, ties broken by name so the output is deterministic.
    static func top(_ spend: [UInt32: Money], names: StringTable, limit: Int = 5) -> [Alert.Share] {
        spend.map { Alert.Share(name: name($0.key, names), cost: $0.value) }
            .sorted { $0.cost != $1.cost ? $0.cost > $1.cost : $0.name < $1.name }
            .prefix(limit).map { $0 }
    }

    /// What an absent name (`SeriesKey.none`: usage without a model) prints and is saved as.
    static let noneName = "(none)"

    /// The most bytes of one name a message quotes; a longer name is cut and ends in `Alert.truncationMarker`.
    /// Names are bounded on input too, so this is a second guard that keeps messages readable.
    static let maxQuotedBytes = 256

    /// `s`, cut at a character boundary to at most `maxQuotedBytes` bytes, marker included.
    static func truncated(_ s: String) -> String { Alert.bounded(s, maxQuotedBytes) }

    static func name(_ id: UInt32, _ names: StringTable) -> String {
        if id == otherWorkflows { return otherWorkflowsName }
        return id == SeriesKey.none || Int(id) >= names.count ? noneName : names[id]
    }

    /// A period's spend per workflow (for `top_workflows`) keeps at most this many workflows; the spend of
    /// any further one is summed under `otherWorkflowsName`, so that a stream of new workflow names cannot
    /// grow a monthly budget's state (and keep every name in memory) for the whole month.
    static let maxWorkflowShares = 1_000
    /// The id of that sum: never an interned name's (ids count up from 0; `SeriesKey.none` is the last).
    static let otherWorkflows: UInt32 = SeriesKey.none - 1
    static let otherWorkflowsName = "(other workflows)"

    /// The id a saved share name comes back as: the "other workflows" sum keeps its own id.
    static func restoredShare(_ name: String, _ names: inout StringTable) -> UInt32 {
        name == otherWorkflowsName ? otherWorkflows : names.intern(name)
    }

    /// `part / whole` in hundredths of a percent, rounded half up; nil for a zero whole.
    static func hundredthsPct(_ part: Money, of whole: Money) -> Int64? {
        guard whole.femtos > 0 else { return nil }
        let v = (part.femtos * 20_000 + whole.femtos) / (2 * whole.femtos)
        return v > Int128(Int64.max) ? Int64.max : Int64(v)
    }

    static func pct(_ hundredths: Int64) -> String {
        FixedDecimal.format(Int128(hundredths), scale: 2, maxDecimals: 2, minDecimals: 2) + "%"
    }

    /// `9 days left`, `5 hours left`, `12 minutes left`, `period over`.
    static func timeLeft(from t: EpochMillis, to end: EpochMillis) -> String {
        let ms = end - t
        if ms <= 0 { return "period over" }
        func plural(_ n: Int64, _ unit: String) -> String { "\(n) \(unit)\(n == 1 ? "" : "s") left" }
        if ms >= 2 * AlertPeriods.dayMillis { return plural(ms / AlertPeriods.dayMillis, "day") }
        if ms >= 2 * AlertPeriods.hourMillis { return plural(ms / AlertPeriods.hourMillis, "hour") }
        return plural(max(1, ms / 60_000), "minute")
    }

    static func severity(thresholdPct: Int) -> Alert.Severity { thresholdPct >= 100 ? .critical : .warning }
}
