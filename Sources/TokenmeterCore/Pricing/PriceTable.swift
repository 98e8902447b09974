/// The `[[price]]` entries of the config, ready for per-event lookup (contract section 2).
///
/// An entry applies to an event when all of these hold:
/// - its model pattern (exact name or `Glob`) matches the event's model;
/// - its `provider`, when set, equals the event's provider exactly (case-sensitive); an event with no
///   provider never matches a provider-restricted entry;
/// - its `service_tier`, when set, equals the event's tier exactly; an event with no tier is `standard`;
/// - its `min_input_tokens`, when set, is at most the request's `input_tokens` (cache included);
/// - its `effective_from`, when set, is not after the event's time (absent = the beginning of time).
///
/// Among the entries that apply, the winner is the first by this precedence:
/// 1. an entry with a (matching) `service_tier` beats one without;
/// 2. a larger `min_input_tokens` beats a smaller one (absent = 0);
/// 3. an exact model name beats a glob; a longer glob (more literal characters, see `Glob`) beats a
///    shorter one; at equal length, fewer `*` wins;
/// 4. a provider-specific entry beats a provider-less one. This ranks *below* the pattern rules: the
///    contract makes "exact beats glob" unconditional, so a provider-less exact `gpt-4o` beats
///    `provider = "azure"` with `gpt-*`; at the same pattern the provider-specific price wins, which is
///    what a user who writes both expects;
/// 5. among entries that agree on all of the above (the same pattern, provider, tier and
///    `min_input_tokens`): the latest `effective_from` not after the event's time. Entries whose
///    `effective_from` is still in the future do not apply at all, so the lookup falls through to the
///    next entry by precedence (e.g. from a future-dated exact price to the current glob price);
/// 6. remaining ties (different patterns equally specific, e.g. `gpt-*-mini` and `gpt-5*mini`, or exact
///    duplicates): the entry written first in the config wins, deterministically. `explain` says so.
///
/// Hot path: `candidates(model:provider:)` runs the globs once and returns the matching entries sorted
/// by precedence; the daemon caches it per (model, provider). `select` then walks that short list
/// comparing integers only: no allocation, no string work (use the `ServiceTierKey` overload; the
/// `String?` overload only adds an equality check against the table's few tier names).
public struct PriceTable: Sendable {
    /// The entries as configured, in config order. `select` results index into this.
    public let entries: [PriceEntry]
    /// `entries[i]` with its fallbacks applied.
    public let rates: [PriceRates]
    @usableFromInline let globs: [Glob]
    /// Entry indices sorted by precedence (rules 1 to 6 above).
    @usableFromInline let order: [Int]
    /// Per entry: index into `tierNames`, or `PriceCandidates.Slot.anyTier`.
    @usableFromInline let entryTier: [Int32]
    /// Distinct `service_tier` values named by entries, as UTF-8; a `ServiceTierKey` indexes this.
    @usableFromInline let tierNames: [[UInt8]]
    /// Per entry: the index of the first entry with the same (pattern, provider, tier, min_input_tokens).
    @usableFromInline let group: [Int]
    /// The key of `standard`, the tier of an event that names none.
    public let standardKey: ServiceTierKey

    public init(_ entries: [PriceEntry]) {
        self.entries = entries
        self.rates = entries.map(PriceRates.init)
        let globs = entries.map { Glob($0.model) }
        self.globs = globs

        var tierNames: [[UInt8]] = []
        var entryTier: [Int32] = []
        entryTier.reserveCapacity(entries.count)
        for e in entries {
            if let t = e.serviceTier {
                let b = Array(t.utf8)
                if let i = tierNames.firstIndex(of: b) {
                    entryTier.append(Int32(i))
                } else {
                    tierNames.append(b)
                    entryTier.append(Int32(tierNames.count - 1))
                }
            } else {
                entryTier.append(PriceCandidates.Slot.anyTier)
            }
        }
        self.tierNames = tierNames
        self.entryTier = entryTier
        self.standardKey = tierNames.firstIndex(of: Array("standard".utf8)).map { ServiceTierKey(raw: Int32($0)) } ?? .unknown

        struct GroupKey: Hashable { var model: String; var provider: String?; var tier: String?; var minInput: Int64 }
        var firstOfGroup: [GroupKey: Int] = [:]
        var group: [Int] = []
        group.reserveCapacity(entries.count)
        for (i, e) in entries.enumerated() {
            let k = GroupKey(model: e.model, provider: e.provider, tier: e.serviceTier, minInput: max(0, e.minInputTokens ?? 0))
            if let g = firstOfGroup[k] { group.append(g) } else { firstOfGroup[k] = i; group.append(i) }
        }
        self.group = group

        self.order = entries.indices.sorted { a, b in
            PriceTable.precedes(a, b, entries: entries, globs: globs, group: group)
        }
    }

    public var isEmpty: Bool { entries.isEmpty }

    // MARK: - Precedence

    /// The first rule on which `a` and `b` differ, with the winner (`true` = `a`), or nil on a total tie.
    /// The single source of truth for both sorting and `explain`.
    static func firstDifference(_ a: Int, _ b: Int, entries: [PriceEntry], globs: [Glob], group: [Int])
        -> (aWins: Bool, rule: Rule)? {
        let ea = entries[a], eb = entries[b]
        let ta = ea.serviceTier != nil, tb = eb.serviceTier != nil
        if ta != tb { return (ta, .serviceTier) }
        let ma = max(0, ea.minInputTokens ?? 0), mb = max(0, eb.minInputTokens ?? 0)
        if ma != mb { return (ma > mb, .minInputTokens) }
        let ga = globs[a], gb = globs[b]
        if ga.isExact != gb.isExact { return (ga.isExact, .exactBeatsGlob) }
        if ga.literalCount != gb.literalCount { return (ga.literalCount > gb.literalCount, .longerGlob) }
        if ga.starCount != gb.starCount { return (ga.starCount < gb.starCount, .fewerStars) }
        let pa = ea.provider != nil, pb = eb.provider != nil
        if pa != pb { return (pa, .providerSpecific) }
        if group[a] != group[b] { return (group[a] < group[b], .configOrderBetweenPatterns) }
        let fa = ea.effectiveFrom ?? Int64.min, fb = eb.effectiveFrom ?? Int64.min
        if fa != fb { return (fa > fb, .laterEffectiveFrom) }
        if a != b { return (a < b, .duplicate) }
        return nil
    }

    static func precedes(_ a: Int, _ b: Int, entries: [PriceEntry], globs: [Glob], group: [Int]) -> Bool {
        firstDifference(a, b, entries: entries, globs: globs, group: group)?.aWins ?? false
    }

    enum Rule {
        case serviceTier, minInputTokens, exactBeatsGlob, longerGlob, fewerStars, providerSpecific
        case configOrderBetweenPatterns, laterEffectiveFrom, duplicate
    }

    // MARK: - Lookup

    /// The entries whose model pattern and provider match, sorted by precedence. Runs every glob: call it
    /// once per distinct (model, provider) and cache the result.
    public func candidates(model: String, provider: String?) -> PriceCandidates {
        var slots: [PriceCandidates.Slot] = []
        for i in order {
            let e = entries[i]
            if let p = e.provider, p != provider { continue }
            guard globs[i].matches(model) else { continue }
            slots.append(slot(i))
        }
        return PriceCandidates(slots: slots)
    }

    /// The same for a model and provider given as UTF-8 bytes (e.g. in a decoder's scratch buffer).
    /// `provider` nil means the event names no provider.
    public func candidates(modelUTF8 model: UnsafeRawBufferPointer, providerUTF8 provider: UnsafeRawBufferPointer?) -> PriceCandidates {
        var slots: [PriceCandidates.Slot] = []
        for i in order {
            let e = entries[i]
            if let p = e.provider {
                guard let provider else { continue }
                let equal = p.utf8.withContiguousStorageIfAvailable { $0.elementsEqual(provider) }
                    ?? Array(p.utf8).elementsEqual(provider)
                if !equal { continue }
            }
            guard globs[i].matches(utf8: model) else { continue }
            slots.append(slot(i))
        }
        return PriceCandidates(slots: slots)
    }

    private func slot(_ i: Int) -> PriceCandidates.Slot {
        let e = entries[i]
        return PriceCandidates.Slot(entry: Int32(i), tier: entryTier[i], minInput: max(0, e.minInputTokens ?? 0),
                                    effectiveFrom: e.effectiveFrom ?? Int64.min, rates: rates[i])
    }

    /// The interned form of an event's service tier: nil (no tier) is `standard`. A tier that no entry
    /// names gets a key that matches only tier-less entries.
    public func tierKey(_ serviceTier: String?) -> ServiceTierKey {
        guard let serviceTier else { return standardKey }
        if let k = serviceTier.utf8.withContiguousStorageIfAvailable({ tierKey(utf8: UnsafeRawBufferPointer($0)) }) {
            return k
        }
        var copy = serviceTier
        return copy.withUTF8 { tierKey(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// `tierKey` for a tier given as UTF-8 bytes; nil is `standard`.
    public func tierKey(utf8 serviceTier: UnsafeRawBufferPointer?) -> ServiceTierKey {
        guard let s = serviceTier else { return standardKey }
        var i = 0
        while i < tierNames.count {
            let equal = tierNames[i].withUnsafeBufferPointer { name -> Bool in
                guard name.count == s.count else { return false }
                var j = 0
                while j < name.count { if name[j] != s[j] { return false }; j += 1 }
                return true
            }
            if equal { return ServiceTierKey(raw: Int32(i)) }
            i += 1
        }
        return .unknown
    }

    /// The entry that prices an event, or nil (unpriced). `inputTokens` is the request's whole input,
    /// cache included; `serviceTier` nil is `standard`. Allocation-free, but returning a `PriceEntry`
    /// copies its strings (about 0.1 us per call in release); per-event code should intern the tier
    /// once with `tierKey` and use `selectIndex` plus `rates[i]` (about 10 ns).
    public func select(_ c: PriceCandidates, at time: EpochMillis, inputTokens: Int64, serviceTier: String?) -> PriceEntry? {
        if c.slots.isEmpty { return nil }
        let key = c.hasTierRestricted ? tierKey(serviceTier) : .unknown
        guard let i = selectIndex(c, at: time, inputTokens: inputTokens, tier: key) else { return nil }
        return entries[i]
    }

    /// The hot-path form of `select`: integers only. Returns an index into `entries` and `rates`.
    @inlinable public func selectIndex(_ c: PriceCandidates, at time: EpochMillis, inputTokens: Int64,
                                       tier: ServiceTierKey) -> Int? {
        c.firstApplicable(at: time, inputTokens: inputTokens, tier: tier.raw)
    }

    /// The exact cost of `tokens` under the entry `select` picks, or nil when unpriced.
    public func cost(of tokens: TokenCounts, candidates c: PriceCandidates, at time: EpochMillis,
                     tier: ServiceTierKey) -> Money? {
        guard let i = selectIndex(c, at: time, inputTokens: tokens.input, tier: tier) else { return nil }
        return rates[i].cost(of: tokens)
    }

    // MARK: - Explain

    /// A human account of the lookup, for `tokenmeter prices check`: every entry whose model pattern
    /// matches, in precedence order, with why it was skipped, chosen, or outranked; then the result.
    public func explain(model: String, provider: String?, at time: EpochMillis, inputTokens: Int64,
                        serviceTier: String?) -> [String] {
        var out: [String] = []
        let tierText = serviceTier.map { "\"\($0)\"" } ?? "standard (none given)"
        out.append("lookup: model \"\(model)\", provider \(provider.map { "\"\($0)\"" } ?? "none"), at \(Self.time(time)), "
                   + "input_tokens \(inputTokens), service_tier \(tierText)")
        let eventTier = serviceTier ?? "standard"
        var winner: Int? = nil
        var modelMatches = 0
        var rank = 0
        var winnerRank = 0
        for i in order {
            let e = entries[i]
            guard globs[i].matches(model) else { continue }
            modelMatches += 1
            if let p = e.provider, p != provider {
                out.append("  - \(describe(i)): not a candidate: provider \"\(p)\" is not the event's "
                           + (provider.map { "\"\($0)\"" } ?? "(none)"))
                continue
            }
            rank += 1
            let prefix = "  \(rank). \(describe(i)): "
            if let t = e.serviceTier, t != eventTier {
                out.append(prefix + "skipped: service_tier \"\(t)\" is not the event's \"\(eventTier)\""); continue
            }
            if let m = e.minInputTokens, inputTokens < m {
                out.append(prefix + "skipped: input_tokens \(inputTokens) is below min_input_tokens \(m)"); continue
            }
            if let f = e.effectiveFrom, f > time {
                out.append(prefix + "skipped: effective_from \(Self.time(f)) is after the event's time"); continue
            }
            if let w = winner {
                let why: String
                if let d = Self.firstDifference(w, i, entries: entries, globs: globs, group: group) {
                    why = Self.reason(d.rule, winner: w, loser: i, entries: entries, globs: globs)
                } else { why = "identical" }
                out.append(prefix + "applies, but outranked by #\(winnerRank): \(why)")
                continue
            }
            winner = i
            winnerRank = rank
            out.append(prefix + "SELECTED")
        }
        if modelMatches == 0 {
            out.append("  no [[price]] entry matches model \"\(model)\"")
        }
        if let w = winner {
            let r = rates[w]
            out.append("result: \(entries[w].origin.isEmpty ? "entry #\(w + 1)" : entries[w].origin) (USD per 1M: "
                       + "input \(PricePerMillion(nanos: r.input)), cache_read \(PricePerMillion(nanos: r.cacheRead)), "
                       + "cache_write \(PricePerMillion(nanos: r.cacheWrite)), cache_write_1h \(PricePerMillion(nanos: r.cacheWrite1h)), "
                       + "output \(PricePerMillion(nanos: r.output)), reasoning \(PricePerMillion(nanos: r.reasoning)))")
        } else {
            out.append("result: unpriced (no entry applies; tokens are counted, cost is not)")
        }
        return out
    }

    private func describe(_ i: Int) -> String {
        let e = entries[i]
        var s = e.origin.isEmpty ? "entry #\(i + 1)" : e.origin
        s += " model \"\(e.model)\"" + (globs[i].isExact ? "" : " (glob, \(globs[i].literalCount) literal chars)")
        if let p = e.provider { s += " provider \"\(p)\"" }
        if let t = e.serviceTier { s += " service_tier \"\(t)\"" }
        if let m = e.minInputTokens { s += " min_input_tokens \(m)" }
        if let f = e.effectiveFrom { s += " effective_from \(Self.time(f))" }
        return s
    }

    static func reason(_ rule: Rule, winner w: Int, loser l: Int, entries: [PriceEntry], globs: [Glob]) -> String {
        switch rule {
        case .serviceTier: return "an entry with a matching service_tier beats one without"
        case .minInputTokens:
            return "a larger min_input_tokens (\(entries[w].minInputTokens ?? 0)) beats a smaller one (\(entries[l].minInputTokens ?? 0))"
        case .exactBeatsGlob: return "an exact model name beats a glob"
        case .longerGlob:
            return "a longer glob (\(globs[w].literalCount) literal chars) beats a shorter one (\(globs[l].literalCount))"
        case .fewerStars: return "at equal length, a glob with fewer '*' beats one with more"
        case .providerSpecific: return "at equal pattern specificity, a provider-specific entry beats a provider-less one"
        case .configOrderBetweenPatterns:
            return "equally specific patterns: the entry written first in the config wins (ambiguous; consider making one more specific)"
        case .laterEffectiveFrom: return "same pattern: the latest effective_from not after the event's time applies"
        case .duplicate: return "duplicate entry: the one written first in the config wins"
        }
    }

    static func time(_ t: EpochMillis) -> String { RFC3339.format(t, fraction: t % 1000 != 0) }
}

/// An event's service tier interned against a `PriceTable` (see `PriceTable.tierKey`).
public struct ServiceTierKey: Sendable, Hashable {
    public var raw: Int32
    @inlinable public init(raw: Int32) { self.raw = raw }
    /// A tier no entry names: matches only entries without `service_tier`.
    public static let unknown = ServiceTierKey(raw: -2)
}

/// The entries of a `PriceTable` that match one (model, provider), sorted by precedence, reduced to the
/// integers `select` needs. Cache it per (model, provider) for as long as the table lives.
public struct PriceCandidates: Sendable, Equatable {
    @usableFromInline struct Slot: Sendable, Equatable {
        @usableFromInline static let anyTier: Int32 = -1
        @usableFromInline var entry: Int32
        /// Index into the table's tier names, or `anyTier`.
        @usableFromInline var tier: Int32
        @usableFromInline var minInput: Int64
        /// `Int64.min` when the entry has no `effective_from`.
        @usableFromInline var effectiveFrom: Int64
        /// The entry's rates, so that pricing an event needs nothing from the table itself.
        @usableFromInline var rates: PriceRates
        @usableFromInline init(entry: Int32, tier: Int32, minInput: Int64, effectiveFrom: Int64, rates: PriceRates) {
            self.entry = entry; self.tier = tier; self.minInput = minInput; self.effectiveFrom = effectiveFrom
            self.rates = rates
        }
    }

    @usableFromInline let slots: [Slot]
    @usableFromInline let hasTierRestricted: Bool

    init(slots: [Slot]) {
        self.slots = slots
        self.hasTierRestricted = slots.contains { $0.tier != Slot.anyTier }
    }

    /// No entry can ever price this (model, provider).
    public var isEmpty: Bool { slots.isEmpty }
    public var count: Int { slots.count }
    /// Indices into `PriceTable.entries`, in precedence order.
    public var entryIndices: [Int] { slots.map { Int($0.entry) } }

    @inlinable func firstApplicable(at time: EpochMillis, inputTokens: Int64, tier: Int32) -> Int? {
        firstApplicableSlot(at: time, inputTokens: inputTokens, tier: tier).map { Int(slots[$0].entry) }
    }

    @inlinable func firstApplicableSlot(at time: EpochMillis, inputTokens: Int64, tier: Int32) -> Int? {
        for i in slots.indices {
            let s = slots[i]
            if s.tier != Slot.anyTier && s.tier != tier { continue }
            if inputTokens < s.minInput { continue }
            if s.effectiveFrom > time { continue }
            return i
        }
        return nil
    }

    /// The exact cost of `tokens` under the entry that applies (the same choice as
    /// `PriceTable.selectIndex`), or nil when none does. Reads only this value: the hot path prices an
    /// event from its cached candidates without touching the table.
    @inlinable public func cost(of tokens: TokenCounts, at time: EpochMillis, tier: ServiceTierKey) -> Money? {
        guard let i = firstApplicableSlot(at: time, inputTokens: tokens.input, tier: tier.raw) else { return nil }
        return slots[i].rates.cost(of: tokens)
    }
}
