import TokenmeterCore

/// Number formatting for reports, without Foundation: money exact or to cents, shares, grouped integers.
public enum ReportText {
    /// Exact decimal dollars (up to 15 decimals, trailing zeros dropped): csv, json, focus.
    public static func exact(_ m: Money) -> String { m.decimalString(decimals: 15) }

    /// `1,234.56` (two decimals, grouped): tables.
    public static func dollars(_ m: Money, decimals: Int = 2) -> String {
        let s = FixedDecimal.format(m.femtos, scale: 15, maxDecimals: decimals, minDecimals: decimals)
        let negative = s.hasPrefix("-")
        let body = negative ? String(s.dropFirst()) : s
        let parts = body.split(separator: ".", maxSplits: 1)
        let grouped = group(String(parts[0]))
        return (negative ? "-" : "") + grouped + (parts.count > 1 ? "." + parts[1] : "")
    }

    /// `$1,234.56`, or for small amounts more decimals so they do not read as zero (`$0.0042`).
    public static func usd(_ m: Money) -> String {
        let a = m.femtos < 0 ? -m.femtos : m.femtos
        if a != 0 && a < 10 * Money.femtosPerDollar / 100 { return (m.femtos < 0 ? "-$" : "$") + dollars(Money(femtos: a), decimals: 4) }
        return m.femtos < 0 ? "-$" + dollars(Money(femtos: a)) : "$" + dollars(m)
    }

    /// `1,234,567`.
    public static func grouped(_ v: Int64) -> String {
        v < 0 ? "-" + group(String(-v)) : group(String(v))
    }

    private static func group(_ digits: String) -> String {
        var out = ""
        let n = digits.count
        for (i, c) in digits.enumerated() {
            if i > 0 && (n - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return out
    }

    /// `12.3M`, `4.5k`, `950`.
    public static func compact(_ v: Int64) -> String {
        let a = Double(v < 0 ? -v : v), sign = v < 0 ? "-" : ""
        if a >= 1e9 { return sign + fixed(a / 1e9, a >= 1e11 ? 0 : 1) + "G" }
        if a >= 1e6 { return sign + fixed(a / 1e6, a >= 1e8 ? 0 : 1) + "M" }
        if a >= 1e4 { return sign + fixed(a / 1e3, a >= 1e5 ? 0 : 1) + "k" }
        return String(v)
    }

    /// A share as a percentage: `12.3%`; "-" when nil.
    public static func percent(_ x: Double?, decimals: Int = 1) -> String {
        guard let x, x.isFinite else { return "-" }
        return fixed(x * 100, decimals) + "%"
    }

    /// `+12.3%` / `-4.0%`.
    public static func signedPercent(_ x: Double?) -> String {
        guard let x, x.isFinite else { return "new" }
        return (x >= 0 ? "+" : "") + fixed(x * 100, 1) + "%"
    }

    /// A ratio for machines: up to 6 decimals, trailing zeros dropped; "" when nil.
    public static func ratio(_ x: Double?) -> String {
        guard let x, x.isFinite else { return "" }
        var s = fixed(x, 6)
        if s.contains(".") { while s.hasSuffix("0") { s.removeLast() }; if s.hasSuffix(".") { s.removeLast() } }
        return s == "-0" ? "0" : s
    }

    /// `x` rounded half away from zero to `decimals` decimals.
    public static func fixed(_ x: Double, _ decimals: Int) -> String {
        guard x.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let r = (abs(x) * scale).rounded(.toNearestOrAwayFromZero)
        guard r < 9e18 else { return String(x) }
        let v = Int64(r)
        let negative = x < 0 && v != 0
        var digits = String(v)
        if decimals > 0 {
            if digits.count <= decimals { digits = String(repeating: "0", count: decimals - digits.count + 1) + digits }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -decimals))
        }
        return (negative ? "-" : "") + digits
    }

    /// Outcomes as `name=count;name=count`, sorted by name.
    public static func outcomes(_ o: [String: Int64]) -> String {
        o.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ";")
    }

    /// The span for headers: `2026-11-29T00:00:00Z to 2026-11-30T00:00:00Z`.
    public static func span(_ from: EpochMillis, _ to: EpochMillis) -> String {
        RFC3339.format(from) + " to " + RFC3339.format(to)
    }
}
