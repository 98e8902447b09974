/// Exact money: an integer count of femto-dollars (10^-15 USD).
///
/// Why femto-dollars: prices are USD per 1M tokens with up to 9 decimals (nano-dollars per 1M tokens), so
/// `tokens x price` is an exact integer in 10^-15 USD. Sums never round; rounding to the 9 decimals of the
/// output happens only when a number is printed. Int128 keeps a sum exact far beyond any real bill.
public struct Money: Sendable, Hashable, Comparable, AdditiveArithmetic, CustomStringConvertible {
    public var femtos: Int128

    public static let femtosPerDollar: Int128 = 1_000_000_000_000_000
    public static let femtosPerNano: Int128 = 1_000_000
    public static let zero = Money(femtos: 0)

    @inlinable public init(femtos: Int128) { self.femtos = femtos }

    public init(nanos: Int64) { self.femtos = Int128(nanos) * Money.femtosPerNano }

    public init(dollars: Int) { self.femtos = Int128(dollars) * Money.femtosPerDollar }

    @inlinable public static func + (a: Money, b: Money) -> Money { Money(femtos: a.femtos + b.femtos) }
    @inlinable public static func - (a: Money, b: Money) -> Money { Money(femtos: a.femtos - b.femtos) }
    @inlinable public static func += (a: inout Money, b: Money) { a.femtos += b.femtos }
    @inlinable public static func < (a: Money, b: Money) -> Bool { a.femtos < b.femtos }

    /// Parses a decimal number such as `5`, `0.05`, `-1.5`, `2.5e-7` exactly (no binary floating point).
    /// Digits beyond femto precision are rounded half to even.
    public static func parse<S: StringProtocol>(_ text: S) -> Money? {
        guard let v = FixedDecimal.parse(text, scale: 15) else { return nil }
        return Money(femtos: v)
    }

    /// The amount as an exact decimal string with at most `decimals` decimals (rounded half to even),
    /// trailing zeros dropped: `5.75`, `0.0000048`, `0`.
    public func decimalString(decimals: Int = 9) -> String {
        FixedDecimal.format(femtos, scale: 15, maxDecimals: decimals)
    }

    /// `decimalString()` appended to a byte buffer.
    public func appendDecimal(to out: inout [UInt8], decimals: Int = 9) {
        writeDecimal(to: &out, decimals: decimals)
    }

    /// `decimalString()` into any sink: at most `FixedDecimal.bound` bytes.
    func writeDecimal<S: ByteSink>(to out: inout S, decimals: Int = 9) {
        FixedDecimal.write(femtos, scale: 15, maxDecimals: decimals, to: &out)
    }

    /// Fixed two decimals, for human messages: `4012.35`.
    public func dollarsString() -> String {
        FixedDecimal.format(femtos, scale: 15, maxDecimals: 2, minDecimals: 2)
    }

    /// Only for display arithmetic (percentages, projections); never for sums.
    public var approximateDollars: Double { Double(femtos) / 1e15 }

    public var description: String { decimalString() }
}

/// A price in nano-dollars per 1 million tokens: `2.50` USD/1M is 2_500_000_000.
public struct PricePerMillion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanos: Int64

    public init(nanos: Int64) { self.nanos = nanos }

    /// Exact parse of a decimal price per 1M tokens (`2.50`, `0.075`, `1.5e-1`).
    public static func parse<S: StringProtocol>(_ text: S) -> PricePerMillion? {
        guard let v = FixedDecimal.parse(text, scale: 9), v >= 0, v <= Int128(Int64.max) else { return nil }
        return PricePerMillion(nanos: Int64(v))
    }

    /// The exact cost of `tokens` tokens at this price.
    @inlinable public func cost(_ tokens: Int64) -> Money {
        // nanos per 1M tokens = 10^-9 USD / 10^6 tokens = 10^-15 USD per token: the product is femtos.
        Money(femtos: Int128(tokens) * Int128(nanos))
    }

    public static func < (a: PricePerMillion, b: PricePerMillion) -> Bool { a.nanos < b.nanos }

    public var description: String { FixedDecimal.format(Int128(nanos), scale: 9, maxDecimals: 9) }
}

/// Exact decimal text <-> scaled integer conversion.
public enum FixedDecimal {
    /// Parses `[-+]digits[.digits][e[-+]digits]` into an integer scaled by 10^scale.
    /// Extra precision is rounded half to even. Returns nil on malformed text or overflow.
    public static func parse<S: StringProtocol>(_ text: S, scale: Int) -> Int128? {
        var digits: [UInt8] = []
        digits.reserveCapacity(24)
        var negative = false
        var fractionDigits = 0
        var exponent = 0
        var sawDigit = false
        var inFraction = false
        var it = text.utf8.makeIterator()
        var c = it.next()
        if c == UInt8(ascii: "-") { negative = true; c = it.next() } else if c == UInt8(ascii: "+") { c = it.next() }
        while let ch = c {
            if ch >= 48 && ch <= 57 {
                sawDigit = true
                if !(digits.isEmpty && ch == 48) { digits.append(ch - 48) } else if inFraction { digits.append(0) }
                if inFraction { fractionDigits += 1 }
            } else if ch == UInt8(ascii: ".") && !inFraction {
                inFraction = true
            } else if ch == UInt8(ascii: "_") {
                // TOML allows underscores between digits.
            } else if ch == UInt8(ascii: "e") || ch == UInt8(ascii: "E") {
                var expNeg = false
                var sawExpDigit = false
                c = it.next()
                if c == UInt8(ascii: "-") { expNeg = true; c = it.next() } else if c == UInt8(ascii: "+") { c = it.next() }
                while let e = c {
                    guard e >= 48 && e <= 57 else { return nil }
                    sawExpDigit = true
                    exponent = exponent * 10 + Int(e - 48)
                    if exponent > 400 { return nil }
                    c = it.next()
                }
                guard sawExpDigit else { return nil }
                if expNeg { exponent = -exponent }
                break
            } else {
                return nil
            }
            c = it.next()
        }
        guard sawDigit else { return nil }
        // value = digits x 10^(exponent - fractionDigits); we want value x 10^scale.
        let shift = exponent - fractionDigits + scale
        var result: Int128 = 0
        let limit = Int128.max / 10
        if shift >= 0 {
            for d in digits {
                guard result <= limit else { return nil }
                result = result * 10 + Int128(d)
            }
            for _ in 0..<shift {
                guard result <= limit else { return nil }
                result *= 10
            }
        } else {
            let keep = digits.count + shift
            if keep <= 0 {
                result = 0
                // Rounding: only a first dropped digit > 5 (or == 5 with more) can round 0 up to 1.
                if keep == 0, let first = digits.first {
                    let rest = digits.dropFirst().contains { $0 != 0 }
                    if first > 5 || (first == 5 && rest) { result = 1 }
                }
            } else {
                for d in digits[0..<keep] {
                    guard result <= limit else { return nil }
                    result = result * 10 + Int128(d)
                }
                let first = digits[keep]
                let rest = digits[(keep + 1)...].contains { $0 != 0 }
                if first > 5 || (first == 5 && (rest || result % 2 == 1)) { result += 1 }
            }
        }
        return negative ? -result : result
    }

    /// Formats `value / 10^scale` with at most `maxDecimals` decimals (half to even), trailing zeros
    /// dropped down to `minDecimals`.
    public static func format(_ value: Int128, scale: Int, maxDecimals: Int, minDecimals: Int = 0) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        append(value, scale: scale, maxDecimals: maxDecimals, minDecimals: minDecimals, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `format` appended to a byte buffer, digit by digit on the stack: rollup files print two amounts
    /// per row, and a `String` per amount was most of the encoder's time.
    public static func append(_ value: Int128, scale: Int, maxDecimals: Int, minDecimals: Int = 0, to out: inout [UInt8]) {
        write(value, scale: scale, maxDecimals: maxDecimals, minDecimals: minDecimals, to: &out)
    }

    /// The most bytes `write` writes: a sign, 64 digits (see the buffer below) and the point.
    static let bound = 66

    /// `v / d` rounded half to even (`d` at least 2, so the quotient has room for the carry).
    @inline(__always)
    static func roundedHalfToEven<T: FixedWidthInteger & UnsignedInteger>(_ v: T, dividedBy d: T) -> T {
        let (q, r) = v.quotientAndRemainder(dividingBy: d)
        let half = d / 2
        return r > half || (r == half && q % 2 == 1) ? q + 1 : q
    }

    /// `format` into any sink.
    static func write<S: ByteSink>(_ value: Int128, scale: Int, maxDecimals: Int, minDecimals: Int = 0, to out: inout S) {
        precondition(scale >= 0 && scale <= 38 && maxDecimals >= 0 && minDecimals <= maxDecimals)
        // Zero is most rows' outcome value (and an unpriced row's cost): what the general path writes
        // for it, without its divisions and loops.
        if value == 0 && minDecimals == 0 { out.put(UInt8(ascii: "0")); return }
        var v = value.magnitude
        var s = scale
        if scale > maxDecimals {
            var div: UInt128 = 1
            for _ in 0..<(scale - maxDecimals) { div *= 10 }
            // Nearly every amount (up to $18,446 in femtos) fits 64 bits: one 64-bit division instead of a
            // call to the 128-bit one, for each cost on each rollup row.
            v = v <= UInt128(UInt64.max) && div <= UInt128(UInt64.max)
                ? UInt128(roundedHalfToEven(UInt64(v), dividedBy: UInt64(div)))
                : roundedHalfToEven(v, dividedBy: div)
            s = maxDecimals
        }
        if value < 0 && v != 0 { out.put(UInt8(ascii: "-")) }
        // Digits right-aligned in 64 bytes: UInt128.max has 39, plus up to `s` leading zeros (s <= 38, and
        // zeros are only added while the digits are fewer than s + 1).
        var buf: (UInt128, UInt128, UInt128, UInt128) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &buf) { b in
            var n = 0
            var x = v
            repeat {
                // 10^18 chunks keep all but one division in 64 bits (none below 10^18).
                let (q, r) = x < 1_000_000_000_000_000_000 ? (0, x) : x.quotientAndRemainder(dividingBy: 1_000_000_000_000_000_000)
                var chunk = UInt64(r)
                var written = 0
                while chunk > 0 || (q > 0 && written < 18) || (n == 0 && written == 0) {
                    b[63 - n] = UInt8(truncatingIfNeeded: chunk % 10) &+ 48
                    chunk /= 10; n += 1; written += 1
                }
                x = q
            } while x > 0
            while n <= s { b[63 - n] = UInt8(ascii: "0"); n += 1 }
            let first = 64 - n
            let intEnd = 64 - s
            out.put(UnsafeRawBufferPointer(rebasing: b[first..<intEnd]))
            var fracEnd = 64
            while fracEnd - intEnd > minDecimals && b[fracEnd - 1] == UInt8(ascii: "0") { fracEnd -= 1 }
            if fracEnd > intEnd {
                out.put(UInt8(ascii: "."))
                out.put(UnsafeRawBufferPointer(rebasing: b[intEnd..<fracEnd]))
            }
        }
    }
}
