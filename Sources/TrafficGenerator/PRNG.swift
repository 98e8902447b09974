/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and the same sequence on every platform.
///
/// All derived draws below use only integer arithmetic and correctly rounded IEEE operations
/// (`+ - * /`, `sqrt`), never libm transcendental functions, so a seed yields the same traffic on
/// Linux and macOS, in debug and release.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { self.state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform integer in 0..<n, unbiased (Lemire's multiply with rejection).
    public mutating func below(_ n: UInt64) -> UInt64 {
        precondition(n > 0)
        let threshold = (0 &- n) % n
        while true {
            let m = next().multipliedFullWidth(by: n)
            if m.low >= threshold { return m.high }
        }
    }

    /// Uniform integer in the closed range.
    public mutating func int(_ range: ClosedRange<Int64>) -> Int64 {
        let span = UInt64(bitPattern: range.upperBound &- range.lowerBound) &+ 1
        if span == 0 { return Int64(bitPattern: next()) }
        return range.lowerBound &+ Int64(bitPattern: below(span))
    }

    public mutating func index(_ count: Int) -> Int { Int(below(UInt64(count))) }

    public mutating func chance(_ p: Double) -> Bool { p > 0 && uniform() < p }

    public mutating func pick<T>(_ items: [T]) -> T { items[index(items.count)] }

    /// An index drawn with the given non-negative weights.
    public mutating func weighted(_ weights: [Double]) -> Int {
        var total = 0.0
        for w in weights { total += w }
        var r = uniform() * total
        for (i, w) in weights.enumerated() {
            if r < w { return i }
            r -= w
        }
        return weights.lastIndex { $0 > 0 } ?? 0
    }

    /// Approximately standard normal (Irwin-Hall, 12 uniforms): range +-6, no libm.
    public mutating func normal() -> Double {
        var s = 0.0
        for _ in 0..<12 { s += uniform() }
        return s - 6
    }

    /// Log-normal around `median` with log-space standard deviation `sigma`, rounded, at least `minimum`.
    public mutating func logNormal(median: Double, sigma: Double, minimum: Int64 = 1, maximum: Int64 = 2_000_000) -> Int64 {
        let v = median * deterministicExp(sigma * normal())
        let r = Int64(v.rounded())
        return min(max(r, minimum), maximum)
    }
}

/// e^x with only `+ * /`: halve into [-0.5, 0.5], Taylor series, square back. Deterministic everywhere.
public func deterministicExp(_ x: Double) -> Double {
    var r = x
    var k = 0
    while r > 0.5 || r < -0.5 {
        r /= 2
        k += 1
    }
    var term = 1.0
    var sum = 1.0
    for i in 1...18 {
        term = term * r / Double(i)
        sum += term
    }
    for _ in 0..<k { sum *= sum }
    return sum
}
