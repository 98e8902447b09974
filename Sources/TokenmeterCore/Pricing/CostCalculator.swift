/// The six per-token rates of one price entry with the contract's fallbacks already applied
/// (section 2): an omitted `cache_read` or `cache_write` is the `input` price, an omitted
/// `cache_write_1h` is the (resolved) `cache_write` price, an omitted `reasoning` is the `output` price.
/// Plain integers, so the hot path can copy it around freely.
public struct PriceRates: Sendable, Hashable {
    /// Nano-dollars per 1M tokens (= femto-dollars per token).
    public var input: Int64
    public var cacheRead: Int64
    public var cacheWrite: Int64
    public var cacheWrite1h: Int64
    public var output: Int64
    public var reasoning: Int64

    public init(input: Int64, cacheRead: Int64, cacheWrite: Int64, cacheWrite1h: Int64, output: Int64, reasoning: Int64) {
        self.input = input; self.cacheRead = cacheRead; self.cacheWrite = cacheWrite
        self.cacheWrite1h = cacheWrite1h; self.output = output; self.reasoning = reasoning
    }

    public init(_ e: PriceEntry) {
        let input = e.input.nanos
        let cacheWrite = e.cacheWrite?.nanos ?? input
        self.init(input: input,
                  cacheRead: e.cacheRead?.nanos ?? input,
                  cacheWrite: cacheWrite,
                  cacheWrite1h: e.cacheWrite1h?.nanos ?? cacheWrite,
                  output: e.output.nanos,
                  reasoning: e.reasoning?.nanos ?? e.output.nanos)
    }

    /// The exact cost of `t` (contract section 2):
    ///
    ///     (input - cacheRead - cacheWrite) x input + cacheRead x cache_read
    ///       + (cacheWrite - cacheWrite1h) x cache_write + cacheWrite1h x cache_write_1h
    ///       + (output - reasoning) x output + reasoning x reasoning
    ///
    /// Every product is tokens x nano-dollars-per-1M = femto-dollars, summed in Int128: no rounding at
    /// all. Expects the decoder's invariants (parts never exceed their wholes); it does not clamp.
    @inlinable public func cost(of t: TokenCounts) -> Money {
        let plainInput = Int128(t.input - t.cacheRead - t.cacheWrite)
        let write5m = Int128(t.cacheWrite - t.cacheWrite1h)
        let plainOutput = Int128(t.output - t.reasoning)
        var f = plainInput * Int128(input)
        f += Int128(t.cacheRead) * Int128(cacheRead)
        f += write5m * Int128(cacheWrite)
        f += Int128(t.cacheWrite1h) * Int128(cacheWrite1h)
        f += plainOutput * Int128(output)
        f += Int128(t.reasoning) * Int128(reasoning)
        return Money(femtos: f)
    }
}

extension PriceEntry {
    /// This entry's rates with the fallbacks applied.
    public var rates: PriceRates { PriceRates(self) }

    /// The exact cost of `tokens` at this entry's prices. (A `cost_usd` on the event replaces this; that
    /// is the caller's business.)
    public func cost(of tokens: TokenCounts) -> Money { PriceRates(self).cost(of: tokens) }
}

public enum CostCalculator {
    /// The exact cost of `tokens` at `entry`'s prices (contract section 2, with its fallbacks).
    public static func cost(of tokens: TokenCounts, entry: PriceEntry) -> Money { PriceRates(entry).cost(of: tokens) }

    /// The exact cost of `tokens` at already resolved rates (hot path: see `PriceTable.rates(_:)`).
    @inlinable public static func cost(of tokens: TokenCounts, rates: PriceRates) -> Money { rates.cost(of: tokens) }
}
