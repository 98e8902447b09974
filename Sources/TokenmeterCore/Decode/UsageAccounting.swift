/// How an event's token counts are settled once its fields are read, as pure functions of plain values:
/// which source wins when an event has both canonical token fields and a provider usage block, when
/// Anthropic's `iterations` become one contribution per model, when a block is `unrecognized_usage`, and
/// which part-larger-than-whole makes the event a reject. No JSON here: `EventDecoder` calls these with what
/// its walk collected, and `UsageAccountingTests` calls them with values written by hand.
///
/// What one provider's block means (which row reads it, and its counts) is `ProviderUsage`.
enum UsageAccounting {
    /// Canonical fields win per field over the block's counts. The block's 1-hour cache write is capped at
    /// a canonical `cache_write_tokens` that overrides the block's (a 1-hour part larger than the whole
    /// write is the producer's own correction, not a reject).
    @inline(__always)
    static func applying(_ canonical: CanonicalTokens, to block: TokenCounts) -> TokenCounts {
        var c = block
        if let v = canonical.input { c.input = v }
        if let v = canonical.cacheRead { c.cacheRead = v }
        if let v = canonical.cacheWrite {
            c.cacheWrite = v
            c.cacheWrite1h = min(c.cacheWrite1h, v)
        }
        if let v = canonical.output { c.output = v }
        if let v = canonical.reasoning { c.reasoning = v }
        return c
    }

    /// Whether Anthropic's `usage.iterations` are expanded into contributions: only when the Anthropic row
    /// reads the block, the block has iterations, and the event has no canonical token field (a producer
    /// that wrote canonical fields did its own accounting: one contribution).
    @inline(__always)
    static func expandsIterations(_ block: RawUsage, row: BlockRow, canonical: CanonicalTokens) -> Bool {
        row == .anthropic && block.has.contains(.iterations) && !canonical.any
    }

    /// Whether the event's block is `unrecognized_usage`: there is one, no row reads it, and no canonical
    /// field says what the tokens were. Such a request counts, unpriced, and is never a silent zero.
    @inline(__always)
    static func isUnrecognized(blockPresent: Bool, row: BlockRow, canonical: CanonicalTokens) -> Bool {
        blockPresent && row == .none && !canonical.any
    }

    /// The event's own model with `iterations`: producers disagree on what the top level holds (the
    /// executor only, everything but earlier compactions, or a whole session), so each bucket is the larger
    /// of the top level and the sum of that model's iterations.
    @inline(__always)
    static func ownModelCounts(topLevel: TokenCounts, iterations: TokenCounts) -> TokenCounts {
        var c = topLevel
        c.formMax(iterations)
        return c
    }

    /// A part larger than its whole, in the order they are checked.
    enum PartExceedingWhole: Equatable, CaseIterable {
        /// `cache_read + cache_write > input`
        case cacheOverInput
        /// `reasoning > output`
        case reasoningOverOutput
        /// `cache_write_1h > cache_write`
        case cacheWrite1hOverCacheWrite
    }

    /// The first part of `t` larger than its whole, nil when there is none (equal is fine).
    @inline(__always)
    static func partExceedingWhole(_ t: TokenCounts) -> PartExceedingWhole? {
        if t.cacheRead + t.cacheWrite > t.input { return .cacheOverInput }
        if t.reasoning > t.output { return .reasoningOverOutput }
        if t.cacheWrite1h > t.cacheWrite { return .cacheWrite1hOverCacheWrite }
        return nil
    }
}

/// The canonical token fields an event gave itself (`input_tokens` ... or their OTel names), nil where
/// absent (or null).
struct CanonicalTokens: Equatable {
    var input: Int64? = nil
    var cacheRead: Int64? = nil
    var cacheWrite: Int64? = nil
    var output: Int64? = nil
    var reasoning: Int64? = nil

    /// Whether any canonical field is present.
    @inline(__always) var any: Bool {
        input != nil || cacheRead != nil || cacheWrite != nil || output != nil || reasoning != nil
    }
}
