/// `PriceTable.candidates` results per interned (model, provider) pair, so the globs run once per pair
/// and each event pays an array index and a short scan instead of hashing a key into a dictionary.
struct PriceCache {
    private var index = IdPairIndex()
    private var candidates: [PriceCandidates] = []

    /// The cost of `tokens` under the cached candidates of (model, provider), read where they are kept:
    /// nil when the pair is not cached yet, `.some(nil)` when it is and no entry applies. Returning the
    /// candidates instead copied them out (a retain and a release of their slots) for every priced call.
    /// `mutating` only so that a caller holding the cache in a class property accesses it in place (a
    /// non-mutating call on a class's struct property copies the struct, retaining each array).
    @inline(__always)
    mutating func cost(model: UInt32, provider: UInt32, of tokens: TokenCounts, at time: EpochMillis,
                       tier: ServiceTierKey) -> Money?? {
        guard let i = index.find(model, provider) else { return nil }
        return .some(candidates[i].cost(of: tokens, at: time, tier: tier))
    }

    mutating func set(_ c: PriceCandidates, model: UInt32, provider: UInt32) {
        index.insert(model, provider, value: candidates.count)
        candidates.append(c)
    }
}
