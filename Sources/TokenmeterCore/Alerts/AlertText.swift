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

    /// The most bytes of one name a message quotes; longer names end in `...` (a marker that the name was
    /// cut). Names are bounded on input too, so this is a second guard that keeps alerts small.
    static let maxQuotedBytes = 256

    /// `s`, cut at a character boundary to at most `maxQuotedBytes` bytes plus the `...` marker.
    static func truncated(_ s: String) -> String {
        guard s.utf8.count > maxQuotedBytes else { return s }
        var out = ""
        var n = 0
        for ch in s.unicodeScalars {
            let w = String(ch).utf8.count
            if n + w > maxQuotedBytes - 3 { break }
            out.unicodeScalars.append(ch)
            n += w
        }
        return out + "..."
    }

    static func name(_ id: UInt32, _ names: StringTable) -> String {
        id == SeriesKey.none || Int(id) >= names.count ? noneName : names[id]
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
