import TokenmeterCore

/// One price entry for the oracle: USD per 1M tokens. An omitted cache price is the input price; an
/// omitted reasoning price is the output price (contract section 2). No dates, tiers or long-context rates.
public struct OraclePrice: Sendable, Hashable {
    /// An exact model name, or a glob with `*` (any run) and `?` (one character).
    public var model: String
    /// When set, the event's resolved provider must equal it.
    public var provider: String?
    public var input: PricePerMillion
    public var cacheRead: PricePerMillion?
    public var cacheWrite: PricePerMillion?
    public var output: PricePerMillion
    public var reasoning: PricePerMillion?

    public init(model: String, provider: String? = nil, input: PricePerMillion, cacheRead: PricePerMillion? = nil,
                cacheWrite: PricePerMillion? = nil, output: PricePerMillion, reasoning: PricePerMillion? = nil) {
        self.model = model
        self.provider = provider
        self.input = input
        self.cacheRead = cacheRead
        self.cacheWrite = cacheWrite
        self.output = output
        self.reasoning = reasoning
    }

    /// Decimal text prices (`"2.50"`); traps on malformed text (it is for literals).
    public init(_ model: String, provider: String? = nil, input: String, cacheRead: String? = nil, cacheWrite: String? = nil,
                output: String, reasoning: String? = nil) {
        func p(_ s: String) -> PricePerMillion {
            guard let v = PricePerMillion.parse(s) else { preconditionFailure("bad price \(s)") }
            return v
        }
        self.init(model: model, provider: provider, input: p(input), cacheRead: cacheRead.map(p), cacheWrite: cacheWrite.map(p),
                  output: p(output), reasoning: reasoning.map(p))
    }

    public var isGlob: Bool { model.contains("*") || model.contains("?") }

    /// The contract section 2 formula, exactly.
    public func cost(_ t: ExpectedTokens) -> Money {
        let plainInput = t.input - t.cacheRead - t.cacheWrite
        let plainOutput = t.output - t.reasoning
        return input.cost(plainInput) + (cacheRead ?? input).cost(t.cacheRead) + (cacheWrite ?? input).cost(t.cacheWrite)
            + output.cost(plainOutput) + (reasoning ?? output).cost(t.reasoning)
    }
}

/// `*` matches any run of characters, `?` one character; everything else literally.
func globMatches(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.unicodeScalars)
    let s = Array(text.unicodeScalars)
    var pi = 0, si = 0, star = -1, mark = 0
    while si < s.count {
        if pi < p.count && (p[pi] == "?" || p[pi] == s[si]) {
            pi += 1; si += 1
        } else if pi < p.count && p[pi] == "*" {
            star = pi; mark = si; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; si = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == "*" { pi += 1 }
    return pi == p.count
}

/// ExpectedRow for one key: exact integers and fixed-point money.
public struct ExpectedRow: Sendable, Hashable {
    public var requests: Int64 = 0
    public var errors: Int64 = 0
    public var inputTokens: Int64 = 0
    public var cacheReadTokens: Int64 = 0
    public var cacheWriteTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    public var reasoningTokens: Int64 = 0
    /// Priced requests' cost (the formula, or `cost_usd` when given).
    public var cost: Money = .zero
    public var unpricedRequests: Int64 = 0
    public var outcomes: [String: Int64] = [:]
    public var outcomeValue: Money = .zero

    public init() {}

    public mutating func add(_ o: ExpectedRow) {
        requests += o.requests
        errors += o.errors
        inputTokens += o.inputTokens
        cacheReadTokens += o.cacheReadTokens
        cacheWriteTokens += o.cacheWriteTokens
        outputTokens += o.outputTokens
        reasoningTokens += o.reasoningTokens
        cost += o.cost
        unpricedRequests += o.unpricedRequests
        for (k, v) in o.outcomes { outcomes[k, default: 0] += v }
        outcomeValue += o.outcomeValue
    }

    public var tokens: ExpectedTokens {
        ExpectedTokens(input: inputTokens, cacheRead: cacheReadTokens, cacheWrite: cacheWriteTokens, output: outputTokens,
                    reasoning: reasoningTokens)
    }
}

/// Rollup key without time: outcome rows have a nil model.
public struct ExpectedKey: Sendable, Hashable {
    public var workflow: String
    public var owner: String
    public var model: String?

    public init(workflow: String, owner: String, model: String?) {
        self.workflow = workflow
        self.owner = owner
        self.model = model
    }
}

public struct ExpectedWindowKey: Sendable, Hashable {
    public var windowMillis: Int64
    public var windowStart: EpochMillis
    public var workflow: String
    public var owner: String
    public var model: String?

    public init(windowMillis: Int64, windowStart: EpochMillis, workflow: String, owner: String, model: String?) {
        self.windowMillis = windowMillis
        self.windowStart = windowStart
        self.workflow = workflow
        self.owner = owner
        self.model = model
    }

    public var key: ExpectedKey { ExpectedKey(workflow: workflow, owner: owner, model: model) }
}

/// The independent oracle: what the rollups must add up to for a list of generated events.
public struct ExpectedTotals: Sendable {
    public var prices: [OraclePrice]
    /// Tumbling window sizes in milliseconds (event time, aligned to the epoch).
    public var windows: [Int64]

    public private(set) var byKey: [ExpectedKey: ExpectedRow] = [:]
    public private(set) var byWindow: [ExpectedWindowKey: ExpectedRow] = [:]
    public private(set) var grandTotal = ExpectedRow()
    /// Bad lines per `BadClass.rawValue`.
    public private(set) var deadLetters: [String: Int] = [:]
    public private(set) var duplicates = 0
    /// Models that had at least one request without a matching price.
    public private(set) var unpricedModels: Set<String> = []

    public init(prices: [OraclePrice] = Catalogue.referencePrices, windows: [Int64] = []) {
        self.prices = prices
        self.windows = windows
    }

    public init<S: Sequence>(_ effects: S, prices: [OraclePrice] = Catalogue.referencePrices, windows: [Int64] = [])
    where S.Element == ExpectedEffect {
        self.init(prices: prices, windows: windows)
        add(contentsOf: effects)
    }

    /// The price entry that applies: provider must match when set; exact beats glob; a longer glob beats a shorter.
    public func price(model: String, provider: String?) -> OraclePrice? {
        var best: OraclePrice?
        for p in prices {
            if let want = p.provider, want != provider { continue }
            if p.isGlob {
                guard globMatches(p.model, model) else { continue }
                if let b = best, !b.isGlob || b.model.utf8.count >= p.model.utf8.count { continue }
                best = p
            } else {
                guard p.model == model else { continue }
                if let b = best, !b.isGlob { continue }
                best = p
            }
        }
        return best
    }

    /// The cost of one usage event, nil when it is unpriced.
    public func cost(of u: ExpectedUsage) -> Money? {
        if let c = u.costOverride { return c }
        return price(model: u.model, provider: u.provider)?.cost(u.tokens)
    }

    public mutating func add<S: Sequence>(contentsOf effects: S) where S.Element == ExpectedEffect {
        for e in effects { add(e) }
    }

    public mutating func add(_ effect: ExpectedEffect) {
        var t = ExpectedRow()
        let key: ExpectedKey
        let time: EpochMillis
        switch effect {
        case .bad(let reason):
            deadLetters[reason, default: 0] += 1
            return
        case .duplicate:
            duplicates += 1
            return
        case .usage(let u):
            t.requests = 1
            t.errors = u.isError ? 1 : 0
            t.inputTokens = u.tokens.input
            t.cacheReadTokens = u.tokens.cacheRead
            t.cacheWriteTokens = u.tokens.cacheWrite
            t.outputTokens = u.tokens.output
            t.reasoningTokens = u.tokens.reasoning
            if let c = cost(of: u) {
                t.cost = c
            } else {
                t.unpricedRequests = 1
                unpricedModels.insert(u.model)
            }
            key = ExpectedKey(workflow: u.workflow, owner: u.owner, model: u.model)
            time = u.eventTime
        case .outcome(let o):
            t.outcomes[o.outcome] = o.count
            t.outcomeValue = o.valueUSD ?? .zero
            key = ExpectedKey(workflow: o.workflow, owner: o.owner, model: nil)
            time = o.eventTime
        }
        byKey[key, default: ExpectedRow()].add(t)
        grandTotal.add(t)
        for w in windows {
            let start = floorDiv(time, w) * w
            let wk = ExpectedWindowKey(windowMillis: w, windowStart: start, workflow: key.workflow, owner: key.owner, model: key.model)
            byWindow[wk, default: ExpectedRow()].add(t)
        }
    }

    /// Sum over all keys matching a filter (e.g. one owner, or one workflow across models).
    public func total(where predicate: (ExpectedKey) -> Bool) -> ExpectedRow {
        var t = ExpectedRow()
        for (k, v) in byKey where predicate(k) { t.add(v) }
        return t
    }
}
