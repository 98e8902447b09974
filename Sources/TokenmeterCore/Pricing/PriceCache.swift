/// `PriceTable.candidates` results per interned (model, provider) pair, so the globs run once per pair
/// and each event pays an array index and a short scan instead of hashing a key into a dictionary.
struct PriceCache {
    private var index = IdPairIndex()
    private var candidates: [PriceCandidates] = []

    /// `mutating` only so that a caller holding the cache in a class property accesses it in place
    /// (a non-mutating call on a class's struct property copies the struct, retaining each array).
    @inline(__always)
    mutating func get(model: UInt32, provider: UInt32) -> PriceCandidates? {
        index.find(model, provider).map { candidates[$0] }
    }

    mutating func set(_ c: PriceCandidates, model: UInt32, provider: UInt32) {
        index.insert(model, provider, value: candidates.count)
        candidates.append(c)
    }
}
