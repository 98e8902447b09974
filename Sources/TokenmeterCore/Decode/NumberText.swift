/// Exact, allocation-free conversions of JSON number text (as validated by `JSONScanner.readNumber`, or a
/// string of ASCII digits) to integers and fixed-point money. No binary floating point anywhere.
enum NumberText {
    enum IntegerResult: Equatable {
        case ok(Int64)
        case negative
        case fractional
        case tooLarge
        case malformed
    }

    /// The parts of `[-]digits[.digits][(e|E)[+-]digits]`.
    struct Parts {
        var negative = false
        var intStart = 0, intEnd = 0
        var fracStart = 0, fracEnd = 0
        var exponent = 0
        @inline(__always) var intLen: Int { intEnd - intStart }
        @inline(__always) var fracLen: Int { fracEnd - fracStart }
        @inline(__always) var digitCount: Int { intLen + fracLen }
        /// The j-th digit value of the integer and fraction digits taken together.
        @inline(__always) func digit(_ p: UnsafeRawBufferPointer, _ j: Int) -> UInt8 {
            (j < intLen ? p[intStart + j] : p[fracStart + j - intLen]) &- 48
        }
    }

    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    static func split(_ p: UnsafeRawBufferPointer) -> Parts? {
        let n = p.count
        var parts = Parts()
        var i = 0
        if i < n && (p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+")) {
            parts.negative = p[i] == UInt8(ascii: "-"); i += 1
        }
        parts.intStart = i
        while i < n && isDigit(p[i]) { i += 1 }
        parts.intEnd = i
        parts.fracStart = i; parts.fracEnd = i
        if i < n && p[i] == UInt8(ascii: ".") {
            i += 1
            parts.fracStart = i
            while i < n && isDigit(p[i]) { i += 1 }
            parts.fracEnd = i
        }
        guard parts.digitCount > 0 else { return nil }
        if i < n && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            i += 1
            var expNeg = false
            if i < n && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { expNeg = p[i] == UInt8(ascii: "-"); i += 1 }
            let expStart = i
            var e = 0
            while i < n && isDigit(p[i]) {
                if e < 100_000 { e = e * 10 + Int(p[i] - 48) }
                i += 1
            }
            guard i > expStart else { return nil }
            parts.exponent = expNeg ? -e : e
        }
        guard i == n else { return nil }
        return parts
    }

    /// An exact non-negative integer not above `limit` (which must be below 10^18). Integral values written
    /// with a fraction or exponent (`100.0`, `1e3`) are accepted; `-0` is 0.
    static func integer(_ p: UnsafeRawBufferPointer, limit: Int64) -> IntegerResult {
        // Fast path: up to 18 plain digits.
        let n = p.count
        if n > 0 && n <= 18 {
            var v: Int64 = 0
            var i = 0
            while i < n {
                let d = p[i] &- 48
                if d > 9 { break }
                v = v * 10 + Int64(d)
                i += 1
            }
            if i == n { return v > limit ? .tooLarge : .ok(v) }
        }
        guard let parts = split(p) else { return .malformed }
        let total = parts.digitCount
        var f = 0
        while f < total && parts.digit(p, f) == 0 { f += 1 }
        if f == total { return .ok(0) }
        if parts.negative { return .negative }
        var l = total - 1
        while parts.digit(p, l) == 0 { l -= 1 }
        // value = digits[f...l] x 10^e
        let e = parts.exponent - parts.fracLen + (total - 1 - l)
        if e < 0 { return .fractional }
        let significant = l - f + 1
        if significant + e > 18 { return .tooLarge }
        var v: Int64 = 0
        for j in f...l { v = v * 10 + Int64(parts.digit(p, j)) }
        for _ in 0..<e { v *= 10 }
        return v > limit ? .tooLarge : .ok(v)
    }

    /// Largest accepted money amount: 10^12 USD, in femto-dollars (keeps Int128 sums far from overflow).
    static let maxFemtos: Int128 = 1_000_000_000_000 * 1_000_000_000_000_000

    /// An exact decimal amount in femto-dollars (10^-15), rounded half to even beyond that precision.
    /// Nil when malformed or larger in magnitude than `maxFemtos`.
    static func femtos(_ p: UnsafeRawBufferPointer) -> Int128? {
        guard let parts = split(p) else { return nil }
        let total = parts.digitCount
        var f = 0
        while f < total && parts.digit(p, f) == 0 { f += 1 }
        if f == total { return 0 }
        // value = digits x 10^(exponent - fracLen); femtos = value x 10^15
        let shift = parts.exponent - parts.fracLen + 15
        var result: Int128 = 0
        if shift >= 0 {
            if (total - f) + shift > 30 { return nil }
            for j in f..<total { result = result * 10 + Int128(parts.digit(p, j)) }
            for _ in 0..<shift { result *= 10 }
        } else {
            let keep = total + shift  // digits [0, keep) are integral femtos
            if keep - f > 30 { return nil }
            if keep > f {
                for j in f..<keep { result = result * 10 + Int128(parts.digit(p, j)) }
            }
            // Round half to even on the dropped digits [keep, total); when keep < 0 everything dropped is
            // below half a femto and the result stays 0.
            if keep >= 0 && keep < total {
                let d = parts.digit(p, keep)
                var rest = false
                var j = keep + 1
                while j < total { if parts.digit(p, j) != 0 { rest = true; break }; j += 1 }
                if d > 5 || (d == 5 && (rest || result % 2 == 1)) { result += 1 }
            }
        }
        guard result <= maxFemtos else { return nil }
        return parts.negative ? -result : result
    }

    /// A non-empty string of ASCII digits.
    @inline(__always) static func isDigitString(_ p: UnsafeRawBufferPointer) -> Bool {
        guard p.count > 0 else { return false }
        for c in p where !isDigit(c) { return false }
        return true
    }
}
