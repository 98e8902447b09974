import TokenmeterCore

/// `tokenmeter prices check`: runs a sample of events through the real decoder and the real price lookup
/// (the same choice `Pipeline` makes: the event's provider and tier, the contribution's whole input for
/// `min_input_tokens`, the event's time for `effective_from`) and says, per (model, provider, service tier)
/// seen, how many requests there were and which `[[price]]` entry priced them, or that none did.
public struct PriceCheck {
    public struct Key: Hashable, Comparable, Sendable {
        public var model: String?
        public var provider: String?
        /// As the event gives it; nil is `standard`.
        public var serviceTier: String?
        public static func < (a: Key, b: Key) -> Bool {
            (a.model ?? "", a.provider ?? "", a.serviceTier ?? "") < (b.model ?? "", b.provider ?? "", b.serviceTier ?? "")
        }
    }

    /// The requests of one key that resolved to one entry (nil = unpriced), with one of them kept as the
    /// sample `explain` is run on.
    public struct Resolution: Sendable {
        public var entry: Int?
        public var requests: Int = 0
        public var sampleTime: EpochMillis
        public var sampleInputTokens: Int64
    }

    public struct Group: Sendable {
        public var key: Key
        public var requests: Int = 0
        /// Requests whose event carried `cost_usd` (the producer's cost replaces the price table).
        public var costGiven: Int = 0
        /// Sorted by entry (config order), unpriced last.
        public var resolutions: [Resolution] = []
        /// Requests no entry priced and that had no `cost_usd`.
        public var unpricedRequests: Int = 0
    }

    public let table: PriceTable
    public private(set) var lines = 0
    public private(set) var usageEvents = 0
    public private(set) var outcomeEvents = 0
    public private(set) var rejected = 0
    /// Reject code -> count.
    public private(set) var rejectReasons: [String: Int] = [:]
    /// Events without a timestamp: priced as of `fallbackTime`.
    public private(set) var untimed = 0
    private var groups: [Key: Group] = [:]
    private let decoder = EventDecoder()
    private let fallbackTime: EpochMillis

    /// `fallbackTime` stands in for the Kafka message time of events that have no timestamp.
    public init(prices: [PriceEntry], fallbackTime: EpochMillis) {
        self.table = PriceTable(prices)
        self.fallbackTime = fallbackTime
    }

    /// One line of the sample (one event). Blank lines are ignored.
    public mutating func add(_ line: UnsafeRawBufferPointer) {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
        lines += 1
        if let r = decoder.decode(line) {
            rejected += 1
            rejectReasons[r.code.rawValue, default: 0] += 1
            return
        }
        let ev = decoder.event
        if ev.kind == .outcome { outcomeEvents += 1; return }
        usageEvents += 1
        if ev.timestamp == nil { untimed += 1 }
        let time = ev.timestamp ?? fallbackTime
        let provider = decoder.string(ev.provider)
        let tierText = decoder.string(ev.serviceTier)
        let tier = table.tierKey(tierText)
        for c in ev.contributions {
            let model = decoder.string(c.model)
            let key = Key(model: model, provider: provider, serviceTier: tierText)
            var g = groups[key] ?? Group(key: key)
            g.requests += 1
            if ev.costOverride != nil { g.costGiven += 1 }
            var entry: Int? = nil
            if let model {
                entry = table.selectIndex(table.candidates(model: model, provider: provider), at: time,
                                          inputTokens: c.tokens.input, tier: tier)
            }
            if entry == nil && ev.costOverride == nil { g.unpricedRequests += 1 }
            if let i = g.resolutions.firstIndex(where: { $0.entry == entry }) {
                g.resolutions[i].requests += 1
            } else {
                g.resolutions.append(Resolution(entry: entry, requests: 1, sampleTime: time, sampleInputTokens: c.tokens.input))
                g.resolutions.sort { ($0.entry ?? Int.max) < ($1.entry ?? Int.max) }
            }
            groups[key] = g
        }
    }

    public mutating func add(_ line: String) {
        var s = line
        s.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }

    /// Every (model, provider, tier) seen, sorted.
    public var results: [Group] { groups.values.sorted { $0.key < $1.key } }

    /// The (model, provider) pairs with requests that no entry prices (and no `cost_usd` covers): what a
    /// user must add prices for. A null model is listed too (it can never be priced).
    public var unpriced: [(model: String?, provider: String?, requests: Int)] {
        var out: [Key: Int] = [:]
        for g in groups.values where g.unpricedRequests > 0 {
            out[Key(model: g.key.model, provider: g.key.provider, serviceTier: nil), default: 0] += g.unpricedRequests
        }
        return out.sorted { $0.key < $1.key }.map { ($0.key.model, $0.key.provider, $0.value) }
    }

    /// `PriceTable.explain` for the sample request of a resolution.
    public func explain(_ g: Group, _ r: Resolution) -> [String] {
        guard let model = g.key.model else {
            return ["lookup: the event names no model: it cannot be priced (its tokens are counted, its cost is not)"]
        }
        return table.explain(model: model, provider: g.key.provider, at: r.sampleTime, inputTokens: r.sampleInputTokens,
                             serviceTier: g.key.serviceTier)
    }

    /// `FILE:LINE` of an entry, or `entry #N` when it has no origin.
    public func origin(_ entry: Int) -> String {
        let e = table.entries[entry]
        return e.origin.isEmpty ? "entry #\(entry + 1)" : e.origin
    }
}
