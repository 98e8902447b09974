/// Event time as integer milliseconds since the Unix epoch, UTC. No `Foundation.Date` on the hot path.
public typealias EpochMillis = Int64

/// RFC 3339 parsing and formatting, by hand: the decoder calls this per event.
public enum RFC3339 {
    /// Parses `2026-11-29T10:00:00Z`, `2026-11-29T10:00:00.123+02:00`, `2026-11-29 10:00:00Z`, and
    /// (when `allowDateOnly`) `2026-11-29` as midnight UTC. Returns nil for anything else.
    public static func parse(_ p: UnsafeRawBufferPointer, allowDateOnly: Bool = false) -> EpochMillis? {
        let n = p.count
        guard n >= 10 else { return nil }
        @inline(__always) func digit(_ i: Int) -> Int? {
            let c = p[i]
            return c >= 48 && c <= 57 ? Int(c - 48) : nil
        }
        @inline(__always) func num(_ i: Int, _ len: Int) -> Int? {
            var v = 0
            for k in i..<(i + len) { guard let d = digit(k) else { return nil }; v = v * 10 + d }
            return v
        }
        guard let year = num(0, 4), p[4] == UInt8(ascii: "-"), let month = num(5, 2), p[7] == UInt8(ascii: "-"),
              let day = num(8, 2), month >= 1, month <= 12, day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        if n == 10 { return allowDateOnly ? Int64(days) * 86_400_000 : nil }
        let sep = p[10]
        guard sep == UInt8(ascii: "T") || sep == UInt8(ascii: "t") || sep == UInt8(ascii: " "), n >= 20,
              let hour = num(11, 2), p[13] == UInt8(ascii: ":"), let minute = num(14, 2), p[16] == UInt8(ascii: ":"),
              let second = num(17, 2), hour < 24, minute < 60, second < 61
        else { return nil }
        var i = 19
        var millis = 0
        if p[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 100
            let start = i
            while i < n, let d = digit(i) {
                millis += d * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < n else { return nil }
        var offsetMinutes = 0
        let z = p[i]
        if z == UInt8(ascii: "Z") || z == UInt8(ascii: "z") {
            i += 1
        } else if z == UInt8(ascii: "+") || z == UInt8(ascii: "-") {
            guard i + 6 == n, let oh = num(i + 1, 2), p[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2),
                  oh < 24, om < 60 else { return nil }
            offsetMinutes = (oh * 60 + om) * (z == UInt8(ascii: "+") ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == n else { return nil }
        let secs = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetMinutes * 60)
        return secs * 1000 + Int64(millis)
    }

    public static func parse(_ s: String, allowDateOnly: Bool = false) -> EpochMillis? {
        var s = s
        return s.withUTF8 { parse(UnsafeRawBufferPointer($0), allowDateOnly: allowDateOnly) }
    }

    /// `2026-11-29T10:00:00Z`, or with milliseconds (`.000` included) when `fraction` is true.
    public static func format(_ ms: EpochMillis, fraction: Bool = false) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        append(ms, fraction: fraction, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `format` appended to a byte buffer: rollup rows are encoded without intermediate strings.
    public static func append(_ ms: EpochMillis, fraction: Bool = false, to out: inout [UInt8]) {
        let (y, mo, d, h, mi, s, frac) = components(ms)
        appendPadded(y, 4, &out); out.append(UInt8(ascii: "-")); appendPadded(mo, 2, &out); out.append(UInt8(ascii: "-"))
        appendPadded(d, 2, &out); out.append(UInt8(ascii: "T")); appendPadded(h, 2, &out); out.append(UInt8(ascii: ":"))
        appendPadded(mi, 2, &out); out.append(UInt8(ascii: ":")); appendPadded(s, 2, &out)
        if fraction { out.append(UInt8(ascii: ".")); appendPadded(frac, 3, &out) }
        out.append(UInt8(ascii: "Z"))
    }

    /// The compact form used in file names: `20261129T100000Z`.
    public static func compact(_ ms: EpochMillis) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        appendCompact(ms, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public static func appendCompact(_ ms: EpochMillis, to out: inout [UInt8]) {
        let (y, mo, d, h, mi, s, _) = components(ms)
        appendPadded(y, 4, &out); appendPadded(mo, 2, &out); appendPadded(d, 2, &out); out.append(UInt8(ascii: "T"))
        appendPadded(h, 2, &out); appendPadded(mi, 2, &out); appendPadded(s, 2, &out); out.append(UInt8(ascii: "Z"))
    }

    /// `2026-11-29`: the day folder of a rollup file.
    public static func day(_ ms: EpochMillis) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(10)
        appendDay(ms, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public static func appendDay(_ ms: EpochMillis, to out: inout [UInt8]) {
        let (y, mo, d, _, _, _, _) = components(ms)
        appendPadded(y, 4, &out); out.append(UInt8(ascii: "-")); appendPadded(mo, 2, &out); out.append(UInt8(ascii: "-"))
        appendPadded(d, 2, &out)
    }

    public static func components(_ ms: EpochMillis) -> (Int, Int, Int, Int, Int, Int, Int) {
        let days = floorDiv(ms, 86_400_000)
        let msOfDay = Int(ms - days * 86_400_000)
        let (y, mo, d) = civilFromDays(Int(days))
        return (y, mo, d, msOfDay / 3_600_000, (msOfDay / 60_000) % 60, (msOfDay / 1000) % 60, msOfDay % 1000)
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Zero-padded decimal digits (a negative year keeps its sign in front of the padding).
    static func appendPadded(_ v: Int, _ width: Int, _ out: inout [UInt8]) {
        var v = v
        if v < 0 { out.append(UInt8(ascii: "-")); v = -v }
        var digits = 1, p = 10
        while p <= v { digits += 1; p &*= 10 }
        for _ in digits..<max(width, digits) { out.append(UInt8(ascii: "0")) }
        appendDigits(UInt64(v), &out)
    }
}

/// The decimal digits of `v`, appended without an intermediate `String`.
@usableFromInline func appendDigits(_ v: UInt64, _ out: inout [UInt8]) {
    writeDigits(v, &out)
}

/// The decimal digits of `v` into any sink (at most 20).
func writeDigits<S: ByteSink>(_ v: UInt64, _ out: inout S) {
    if v < 10 { out.put(UInt8(truncatingIfNeeded: v) &+ 48); return }
    var buf: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: room for UInt64.max's 20 digits
    var n = 0
    var x = v
    withUnsafeMutableBytes(of: &buf) { b in
        while x > 0 { b[23 - n] = UInt8(truncatingIfNeeded: x % 10) &+ 48; x /= 10; n += 1 }
        out.put(UnsafeRawBufferPointer(rebasing: b[(24 - n)...]))
    }
}

/// A signed integer's decimal text appended to a byte buffer.
public func appendInteger(_ v: Int64, to out: inout [UInt8]) {
    writeInteger(v, to: &out)
}

/// A signed integer's decimal text into any sink: at most `integerBound` bytes.
func writeInteger<S: ByteSink>(_ v: Int64, to out: inout S) {
    if v < 0 { out.put(UInt8(ascii: "-")) }
    writeDigits(v.magnitude, &out)
}

/// The most bytes `writeInteger` writes: a sign and 19 digits (`Int64.min`).
let integerBound = 20

@inlinable public func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// A length of time parsed from config text such as `30s`, `2m`, `1h`, `7d`, `500ms`, `1w`.
public struct DurationSpec: Sendable, Hashable, CustomStringConvertible {
    public var millis: Int64
    /// The text as the user wrote it (`1h`): used as the window's label in rollups.
    public var label: String

    public init(millis: Int64, label: String) { self.millis = millis; self.label = label }

    public static func parse(_ text: String) -> DurationSpec? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
        var total: Int64 = 0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let v = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unitText = rest.prefix { $0.isLetter }
            guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
            rest = rest.dropFirst(unitText.count)
            let (m, o1) = v.multipliedReportingOverflow(by: unit.1)
            let (t, o2) = total.addingReportingOverflow(m)
            guard !o1, !o2 else { return nil }
            total = t
        }
        return DurationSpec(millis: total, label: text)
    }

    public var description: String { label }
}

/// A size in bytes as written in the config: a whole number and a unit (`512MiB`, `2GiB`, `64KiB`, `1GB`,
/// `500MB`, `4096B`): binary units are powers of 1024, decimal ones of 1000.
public struct ByteSize: Sendable, Hashable, CustomStringConvertible {
    public var bytes: Int64
    public var label: String

    public init(bytes: Int64, label: String) { self.bytes = bytes; self.label = label }

    public static func parse(_ text: String) -> ByteSize? {
        let units: [(String, Int64)] = [("B", 1), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                                        ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000)]
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let value = Int64(digits),
              let unit = units.first(where: { $0.0 == text.dropFirst(digits.count) }) else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: unit.1)
        return overflow ? nil : ByteSize(bytes: bytes, label: text)
    }

    public var description: String { label }
}
