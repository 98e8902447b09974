import TokenmeterCore

/// Relative weights of the wire shapes for usage events. Provider-native blocks follow the model's provider
/// (OpenAI Chat or Responses, Anthropic Messages, Gemini); a model with no native block (Bedrock) is written
/// canonical instead. CloudEvents wrap a canonical or native payload.
public struct ShapeMix: Sendable, Hashable {
    public var canonical: Double = 0.25
    public var native: Double = 0.45
    public var otel: Double = 0.15
    public var cloudEvents: Double = 0.15
    /// Of OpenAI native blocks, the share written as Responses (the rest Chat Completions).
    public var openAIResponsesShare: Double = 0.4
    /// Of Google native blocks, the share written through the OpenAI-compatible endpoint (1f).
    public var geminiOpenAICompatShare: Double = 0.1
    /// Of CloudEvents, the share whose `data` is a string holding the JSON object.
    public var cloudEventStringDataShare: Double = 0.3

    public init() {}

    /// Only one kind of shape (handy in tests).
    public static func only(canonical: Double = 0, native: Double = 0, otel: Double = 0, cloudEvents: Double = 0) -> ShapeMix {
        var m = ShapeMix()
        m.canonical = canonical
        m.native = native
        m.otel = otel
        m.cloudEvents = cloudEvents
        return m
    }
}

/// From `startFraction` of `TrafficConfig.plannedEvents` on, `workflow` makes `factor` times as many
/// requests (the other workflows keep their rate: events come faster) with `factor` times larger token sizes.
public struct TrafficSpike: Sendable, Hashable {
    public var workflow: String
    public var startFraction: Double
    public var factor: Double

    public init(workflow: String, startFraction: Double = 0.6, factor: Double = 5) {
        self.workflow = workflow
        self.startFraction = startFraction
        self.factor = factor
    }
}

public struct TrafficConfig: Sendable {
    public var seed: UInt64
    /// Event time of the first event.
    public var start: EpochMillis
    /// Mean event-time gap between consecutive events (uniform in [0, 2 x mean]).
    public var meanIntervalMillis: Double
    /// The run length the spike's `startFraction` refers to.
    public var plannedEvents: Int
    /// Ids are `<idPrefix>-<sequence>`.
    public var idPrefix: String = "evt"

    public var outcomeFraction: Double = 0.05
    public var badFraction: Double = 0.02
    public var lateFraction: Double = 0.01
    /// Byte-identical repeats of a recent event (same id): 0 by default.
    public var duplicateFraction: Double = 0
    public var costOverrideFraction: Double = 0.01
    /// Multiplies every workflow's error rate (1-3 %).
    public var errorRateScale: Double = 1

    /// Share of events written slightly behind the stream position (out of order), and by how much at most.
    public var jitterFraction: Double = 0.03
    public var maxJitterMillis: Int64 = 5_000
    /// How far behind the stream position late events are (within the 7-day horizon).
    public var lateMinMillis: Int64 = 3_600_000
    public var lateMaxMillis: Int64 = 72 * 3_600_000

    /// The bad classes drawn from, uniformly. `tooLarge` is added when `includeOversized`.
    public var badClasses: [BadClass] = BadClass.defaultClasses
    public var includeOversized = false

    public var shapes = ShapeMix()
    public var spike: TrafficSpike?
    public var workflows: [CatalogueWorkflow] = Catalogue.workflows

    /// `events` events spread over `spanMillis` of event time from `start` (default: 6 hours).
    public init(seed: UInt64, start: EpochMillis, events: Int = 50_000, spanMillis: Int64 = 6 * 3_600_000) {
        self.seed = seed
        self.start = start
        self.plannedEvents = max(events, 1)
        self.meanIntervalMillis = Double(spanMillis) / Double(max(events, 1))
    }
}

/// Deterministic LLM usage traffic that knows its right answer. Same seed and config, same lines.
public struct TrafficGenerator: Sendable {
    public let config: TrafficConfig
    private var rng: SplitMix64
    private var sequence = 0
    /// Stream position (event time) in microseconds.
    private var clockMicros: Int64
    private var recent: [GeneratedEvent] = []
    private var recentNext = 0
    private let baseWeights: [Double]
    private let spikedWeights: [Double]
    private let spikeRateScale: Double
    private let badClasses: [BadClass]

    public init(_ config: TrafficConfig) {
        self.config = config
        self.rng = SplitMix64(seed: config.seed)
        self.clockMicros = config.start * 1000
        baseWeights = config.workflows.map(\.rate)
        if let s = config.spike {
            spikedWeights = config.workflows.map { $0.name == s.workflow ? $0.rate * s.factor : $0.rate }
        } else {
            spikedWeights = baseWeights
        }
        let base = baseWeights.reduce(0, +)
        let spiked = spikedWeights.reduce(0, +)
        spikeRateScale = spiked > 0 ? base / spiked : 1
        var classes = config.badClasses
        if config.includeOversized && !classes.contains(.tooLarge) { classes.append(.tooLarge) }
        badClasses = classes.isEmpty ? BadClass.defaultClasses : classes
    }

    /// The number of events generated so far.
    public var count: Int { sequence }

    /// The current stream position (event time of an on-time event).
    public var position: EpochMillis { floorDiv(clockMicros, 1000) }

    private static let listPrices = ExpectedTotals(prices: Catalogue.referencePrices)

    public var spikeActive: Bool {
        guard let s = config.spike else { return false }
        return Double(sequence) >= s.startFraction * Double(config.plannedEvents)
    }

    public mutating func next() -> GeneratedEvent {
        let spiking = spikeActive
        let gap = rng.uniform() * 2 * config.meanIntervalMillis * 1000 * (spiking ? spikeRateScale : 1)
        clockMicros += Int64(gap.rounded())
        let id = "\(config.idPrefix)-\(sequence)"
        sequence += 1

        let r = rng.uniform()
        var edge = config.badFraction
        if r < edge { return makeBad(id: id) }
        edge += config.duplicateFraction
        if r < edge, !recent.isEmpty {
            let e = recent[rng.index(recent.count)]
            return GeneratedEvent(line: e.line, expected: .duplicate(id: e.expected.id ?? ""))
        }

        // Event time: the stream position, sometimes a little behind (out of order), rarely hours behind (late).
        var t = position
        var late = false
        if rng.chance(config.lateFraction) {
            t -= rng.int(config.lateMinMillis...max(config.lateMinMillis, config.lateMaxMillis))
            late = true
        } else if rng.chance(config.jitterFraction) {
            t -= rng.int(0...max(0, config.maxJitterMillis))
        }

        edge += config.outcomeFraction
        let event = r < edge ? makeOutcome(id: id, time: t, late: late, spiking: spiking)
            : makeUsage(id: id, time: t, late: late, spiking: spiking)
        if config.duplicateFraction > 0 {
            if recent.count < 256 { recent.append(event) } else { recent[recentNext] = event; recentNext = (recentNext + 1) % 256 }
        }
        return event
    }

    public mutating func generate(_ n: Int) -> [GeneratedEvent] {
        var out: [GeneratedEvent] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(next()) }
        return out
    }

    // MARK: - Choices

    private mutating func pickWorkflow(spiking: Bool) -> CatalogueWorkflow {
        config.workflows[rng.weighted(spiking ? spikedWeights : baseWeights)]
    }

    private func sizeFactor(_ w: CatalogueWorkflow, spiking: Bool) -> Double {
        if spiking, let s = config.spike, s.workflow == w.name { return s.factor }
        return 1
    }

    /// Timestamp as written, and the instant it denotes. `allowEpoch`: an integer of epoch ms is allowed.
    private mutating func timestamp(_ t: EpochMillis, allowEpoch: Bool) -> (json: String, time: EpochMillis) {
        let r = rng.uniform()
        if allowEpoch && r < 0.15 { return (String(t), t) }
        if r < 0.55 {
            let s = floorDiv(t, 1000) * 1000
            return (JSONText.quote(RFC3339.format(s)), s)
        }
        if r < 0.8 { return (JSONText.quote(RFC3339.format(t, fraction: true)), t) }
        // An explicit offset, with or without fractional seconds.
        let offsets: [Int64] = [120, -300, 330, 60, -480, 545, -210, 0]
        let off = rng.pick(offsets)
        let fraction = rng.chance(0.5)
        let instant = fraction ? t : floorDiv(t, 1000) * 1000
        let local = RFC3339.format(instant + off * 60_000, fraction: fraction)
        let a = abs(off)
        let hh = a / 60, mm = a % 60
        let suffix = (off < 0 ? "-" : "+") + (hh < 10 ? "0" : "") + String(hh) + ":" + (mm < 10 ? "0" : "") + String(mm)
        return (JSONText.quote(String(local.dropLast()) + suffix), instant)
    }

    private mutating func timeKey() -> String {
        let r = rng.uniform()
        return r < 0.7 ? "timestamp" : (r < 0.85 ? "ts" : "time")
    }

    private mutating func tags() -> [String: String] {
        var t = ["environment": rng.chance(0.85) ? "prod" : "staging"]
        if rng.chance(0.8) {
            // Skewed: the first customers are the big ones.
            let i = min(rng.index(Catalogue.customers.count), rng.index(Catalogue.customers.count))
            t["customer"] = Catalogue.customers[i]
        }
        return t
    }

    // MARK: - Usage

    private enum Family { case canonical, native, otel }

    private mutating func makeUsage(id: String, time: EpochMillis, late: Bool, spiking: Bool) -> GeneratedEvent {
        let w = pickWorkflow(spiking: spiking)
        let modelName = w.models[rng.weighted(w.models.map(\.weight))].model
        let info = Catalogue.model(named: modelName)
            ?? CatalogueModel(name: modelName, provider: "openai", snapshot: modelName, reasoning: .none)
        let factor = sizeFactor(w, spiking: spiking)

        // Shape first: it constrains what a provider block can say.
        let mix = config.shapes
        let pick = rng.weighted([mix.canonical, mix.native, mix.otel, mix.cloudEvents])
        let wrap = pick == 3
        var family: Family = [.canonical, .native, .otel, .canonical][pick]
        if wrap { family = rng.weighted([mix.canonical, mix.native]) == 1 ? .native : .canonical }
        var shape = EventShape.canonical
        if family == .otel { shape = .otel }
        if family == .native {
            switch info.provider {
            case "openai": shape = rng.chance(mix.openAIResponsesShare) ? .openAIResponses : .openAIChat
            case "anthropic": shape = .anthropic
            case "google": shape = rng.chance(mix.geminiOpenAICompatShare) ? .geminiOpenAICompat : .gemini
            default: shape = .canonical
            }
        }

        // Tokens, in canonical buckets.
        let input = rng.logNormal(median: w.promptMedian * factor, sigma: w.promptSigma, minimum: 8, maximum: 1_500_000)
        var cacheRead: Int64 = 0
        var cacheWrite: Int64 = 0
        if rng.chance(w.cacheHitRate) {
            let share = min(0.98, max(0.05, w.cachedShare + 0.12 * rng.normal()))
            cacheRead = Int64((Double(input) * share).rounded(.down))
            if info.provider == "openai" { cacheRead = cacheRead / 128 * 128 } // OpenAI caches in 128-token blocks
        } else if info.provider == "anthropic" && w.cacheHitRate > 0 && rng.chance(0.5) {
            cacheWrite = Int64((Double(input) * min(0.95, w.cachedShare)).rounded(.down))
        } else if info.provider == "openai" && input >= 1024 && rng.chance(0.05) {
            cacheWrite = input / 128 * 64
        }
        if shape == .geminiOpenAICompat { cacheRead = 0 }
        var visible = rng.logNormal(median: w.outputMedian * factor, sigma: w.outputSigma, minimum: 1, maximum: 200_000)
        var reasoning: Int64 = 0
        let reasons: Bool
        switch info.reasoning {
        case .none: reasons = false
        case .always: reasons = true
        case .sometimes(let p): reasons = rng.chance(p)
        }
        if reasons { reasoning = rng.logNormal(median: w.reasoningMedian * factor, sigma: 0.6, minimum: 16, maximum: 200_000) }
        let isError = rng.chance(w.errorRate * config.errorRateScale)
        if isError && rng.chance(0.5) { visible = 0; reasoning = 0 } // failed before any output
        let tokens = ExpectedTokens(input: input, cacheRead: cacheRead, cacheWrite: cacheWrite, output: visible + reasoning,
                                 reasoning: reasoning)
        var costOverride: Money?
        if rng.chance(config.costOverrideFraction) {
            // A producer that knows its bill: the list price with a 15% negotiated discount, in whole nano-dollars.
            if let p = Self.listPrices.price(model: info.name, provider: info.provider) {
                costOverride = Money(nanos: Int64(p.cost(tokens).femtos * 17 / 20 / Money.femtosPerNano))
            } else {
                costOverride = Money(nanos: rng.int(1_000...9_000_000))
            }
        }
        let tags = tags()

        var expected = ExpectedUsage(id: id, workflow: w.name, owner: w.owner, model: info.name, provider: info.provider,
                                     tags: tags, tokens: tokens, isError: isError, costOverride: costOverride, eventTime: time,
                                     isLate: late, shape: shape, cloudEvent: wrap, dataAsString: false)

        var o = JSONObject()
        var ownerInData = true
        if wrap {
            ownerInData = rng.chance(0.5)
        } else {
            o.string("id", id)
            let ts = timestamp(time, allowEpoch: true)
            o.raw(timeKey(), ts.json)
            expected.eventTime = ts.time
        }
        if rng.chance(0.2) { o.string("type", "usage") }
        switch shape {
        case .otel:
            writeOtel(&o, w: w, info: info, tokens: tokens, ownerInData: ownerInData, expected: &expected)
        default:
            o.string("workflow", w.name)
            if ownerInData { o.string("owner", w.owner) }
            writeModelAndUsage(&o, shape: shape, info: info, tokens: tokens, expected: &expected)
        }
        if isError { o.string("status", "error") } else if rng.chance(0.1) { o.string("status", "ok") }
        if let c = costOverride { o.raw("cost_usd", c.decimalString()) }
        o.stringMap("tags", tags)

        if !wrap { return GeneratedEvent(line: o.json, expected: .usage(expected)) }
        let asString = rng.chance(mix.cloudEventStringDataShare)
        expected.dataAsString = asString
        let ts = timestamp(time, allowEpoch: false)
        expected.eventTime = ts.time
        let subject = ownerInData ? "\(w.name)/\(sequence)" : w.owner
        let line = cloudEvent(id: id, time: ts.json, type: "com.example.llm.usage", source: "/apps/\(w.name)", subject: subject,
                              data: o.json, asString: asString)
        return GeneratedEvent(line: line, expected: .usage(expected))
    }

    private func cloudEvent(id: String, time: String, type: String, source: String, subject: String, data: String, asString: Bool) -> String {
        var ce = JSONObject()
        ce.string("specversion", "1.0")
        ce.string("id", id)
        ce.string("source", source)
        ce.string("type", type)
        ce.string("subject", subject)
        ce.raw("time", time)
        ce.string("datacontenttype", "application/json")
        ce.raw("data", asString ? JSONText.quote(data) : data)
        return ce.json
    }

    /// `model`, `provider` and the tokens in the given shape (canonical or a provider block).
    private mutating func writeModelAndUsage(_ o: inout JSONObject, shape: EventShape, info: CatalogueModel, tokens t: ExpectedTokens,
                                             expected: inout ExpectedUsage) {
        o.string("model", info.name)
        let writeProvider = shape == .geminiOpenAICompat || rng.chance(shape == .canonical ? 0.8 : 0.7)
        if writeProvider { o.string("provider", info.provider) }
        var u = JSONObject()
        switch shape {
        case .openAIChat:
            u.int("prompt_tokens", t.input)
            u.int("completion_tokens", t.output)
            u.int("total_tokens", t.input + t.output)
            if t.cacheRead > 0 || t.cacheWrite > 0 || rng.chance(0.7) {
                var d = JSONObject()
                d.int("cached_tokens", t.cacheRead)
                d.int("audio_tokens", 0)
                if t.cacheWrite > 0 || rng.chance(0.2) { d.int("cache_write_tokens", t.cacheWrite) }
                u.object("prompt_tokens_details", d)
            }
            if t.reasoning > 0 || rng.chance(0.7) {
                var d = JSONObject()
                d.int("reasoning_tokens", t.reasoning)
                d.int("audio_tokens", 0)
                d.int("accepted_prediction_tokens", 0)
                d.int("rejected_prediction_tokens", 0)
                u.object("completion_tokens_details", d)
            }
        case .openAIResponses:
            u.int("input_tokens", t.input)
            var d = JSONObject()
            d.int("cached_tokens", t.cacheRead)
            if t.cacheWrite > 0 { d.int("cache_write_tokens", t.cacheWrite) }
            u.object("input_tokens_details", d)
            u.int("output_tokens", t.output)
            var r = JSONObject()
            r.int("reasoning_tokens", t.reasoning)
            u.object("output_tokens_details", r)
            u.int("total_tokens", t.input + t.output)
        case .anthropic:
            // Anthropic's input_tokens EXCLUDES cache reads and writes. The cache fields are always present,
            // which is what identifies the block when `provider` is omitted.
            u.int("input_tokens", t.input - t.cacheRead - t.cacheWrite)
            u.int("cache_creation_input_tokens", t.cacheWrite)
            u.int("cache_read_input_tokens", t.cacheRead)
            if rng.chance(0.5) {
                var c = JSONObject()
                c.int("ephemeral_5m_input_tokens", t.cacheWrite)
                c.int("ephemeral_1h_input_tokens", 0)
                u.object("cache_creation", c)
            }
            u.int("output_tokens", t.output)
            if t.reasoning > 0 {
                var d = JSONObject()
                d.int("thinking_tokens", t.reasoning)
                u.object("output_tokens_details", d)
            }
            if rng.chance(0.3) { u.string("service_tier", "standard") }
        case .gemini:
            // promptTokenCount includes the cached part; tool-use prompt tokens are added to input.
            var tool: Int64 = 0
            if t.input - t.cacheRead > 100 && rng.chance(0.15) { tool = rng.int(1...min(4000, t.input - t.cacheRead - 1)) }
            let prompt = t.input - tool
            u.int("promptTokenCount", prompt)
            if tool > 0 { u.int("toolUsePromptTokenCount", tool) }
            if t.output - t.reasoning > 0 { u.int("candidatesTokenCount", t.output - t.reasoning) }
            if t.reasoning > 0 { u.int("thoughtsTokenCount", t.reasoning) }
            if t.cacheRead > 0 { u.int("cachedContentTokenCount", t.cacheRead) }
            u.int("totalTokenCount", t.input + t.output)
            u.string("trafficType", "ON_DEMAND")
            u.raw("promptTokensDetails", "[{\"modality\":\"TEXT\",\"tokenCount\":\(prompt)}]")
        case .geminiOpenAICompat:
            // Thinking is left out of completion_tokens and shows only in total_tokens.
            u.int("prompt_tokens", t.input)
            u.int("completion_tokens", t.output - t.reasoning)
            u.int("total_tokens", t.input + t.output)
        default:
            // Canonical: explicit fields; zero parts sometimes omitted (default 0).
            let omitZeros = rng.chance(0.5)
            let decoy = rng.chance(0.05) && writeProvider
            for (k, v) in [("input_tokens", t.input), ("cache_read_tokens", t.cacheRead), ("cache_write_tokens", t.cacheWrite),
                           ("output_tokens", t.output), ("reasoning_tokens", t.reasoning)] {
                if v == 0 && omitZeros && !decoy && k != "input_tokens" { continue }
                o.int(k, v)
            }
            if decoy {
                // A raw block that disagrees: the canonical fields win.
                var d = JSONObject()
                d.int("prompt_tokens", t.input * 2 + 7)
                d.int("completion_tokens", t.output + 3)
                d.int("total_tokens", t.input * 2 + t.output + 10)
                o.object("usage", d)
            }
            if !writeProvider { expected.provider = Catalogue.providerFromModelName(info.name) }
            return
        }
        o.object("usage", u)
    }

    private mutating func writeOtel(_ o: inout JSONObject, w: CatalogueWorkflow, info: CatalogueModel, tokens t: ExpectedTokens,
                                    ownerInData: Bool, expected: inout ExpectedUsage) {
        o.string("gen_ai.operation.name", "chat")
        let p = rng.uniform()
        if p < 0.6 { o.string("gen_ai.provider.name", info.provider) } else if p < 0.9 { o.string("gen_ai.system", info.provider) } else {
            expected.provider = Catalogue.providerFromModelName(info.name)
        }
        // gen_ai.response.model wins over gen_ai.request.model.
        let m = rng.uniform()
        if m < 0.2 {
            o.string("gen_ai.request.model", info.name)
        } else if m < 0.5 {
            o.string("gen_ai.request.model", info.name)
            o.string("gen_ai.response.model", info.snapshot)
            expected.model = info.snapshot
        } else {
            o.string("gen_ai.request.model", info.name)
            o.string("gen_ai.response.model", info.name)
        }
        if rng.chance(0.5) { o.string("gen_ai.workflow.name", w.name) } else { o.string("workflow", w.name) }
        if ownerInData { o.string("owner", w.owner) }
        let asString = rng.chance(0.3)
        let dotted = rng.chance(0.5)
        o.count("gen_ai.usage.input_tokens", t.input, asString: asString)
        o.count("gen_ai.usage.output_tokens", t.output, asString: asString)
        if t.cacheRead > 0 || rng.chance(0.3) {
            o.count(dotted ? "gen_ai.usage.cache_read.input_tokens" : "gen_ai.usage.cache_read_input_tokens", t.cacheRead, asString: asString)
        }
        if t.cacheWrite > 0 || rng.chance(0.2) {
            o.count(dotted ? "gen_ai.usage.cache_creation.input_tokens" : "gen_ai.usage.cache_creation_input_tokens", t.cacheWrite,
                    asString: asString)
        }
        if t.reasoning > 0 || rng.chance(0.2) {
            o.count(dotted ? "gen_ai.usage.reasoning.output_tokens" : "gen_ai.usage.reasoning_tokens", t.reasoning, asString: asString)
        }
        if expected.isError { o.string("error.type", rng.pick(["timeout", "rate_limited", "server_error"])) }
    }

    // MARK: - Outcomes

    private mutating func makeOutcome(id: String, time: EpochMillis, late: Bool, spiking: Bool) -> GeneratedEvent {
        let w = pickWorkflow(spiking: spiking)
        let wrap = rng.chance(0.2)
        var o = JSONObject()
        var ownerInData = true
        var instant = time
        if wrap {
            ownerInData = rng.chance(0.5)
        } else {
            o.string("id", id)
        }
        o.string("type", "outcome")
        if !wrap {
            let ts = timestamp(time, allowEpoch: true)
            o.raw(timeKey(), ts.json)
            instant = ts.time
        }
        o.string("workflow", w.name)
        if ownerInData { o.string("owner", w.owner) }
        o.string("outcome", w.outcome)
        var count: Int64 = 1
        if rng.chance(0.5) {
            count = rng.chance(0.7) ? 1 : rng.int(2...20)
            o.int("count", count)
        }
        var value: Money?
        if let cents = w.outcomeValueCents, rng.chance(0.7) {
            let v = Money(femtos: Int128(cents) * Int128(count) * 10_000_000_000_000)
            value = v
            o.raw("value_usd", v.decimalString())
        }
        if !wrap {
            let e = ExpectedOutcome(id: id, workflow: w.name, owner: w.owner, outcome: w.outcome, count: count, valueUSD: value,
                                    eventTime: instant, isLate: late, cloudEvent: false)
            return GeneratedEvent(line: o.json, expected: .outcome(e))
        }
        let ts = timestamp(time, allowEpoch: false)
        let subject = ownerInData ? "\(w.name)/\(sequence)" : w.owner
        let line = cloudEvent(id: id, time: ts.json, type: "com.example.llm.outcome", source: "/apps/\(w.name)", subject: subject,
                              data: o.json, asString: rng.chance(config.shapes.cloudEventStringDataShare))
        let e = ExpectedOutcome(id: id, workflow: w.name, owner: w.owner, outcome: w.outcome, count: count, valueUSD: value,
                                eventTime: ts.time, isLate: late, cloudEvent: true)
        return GeneratedEvent(line: line, expected: .outcome(e))
    }

    // MARK: - Bad input (contract 1e)

    private mutating func makeBad(id: String) -> GeneratedEvent {
        let cls = badClasses[rng.index(badClasses.count)]
        let w = pickWorkflow(spiking: false)
        let model = w.models[0].model
        let provider = Catalogue.model(named: model)?.provider ?? "openai"
        let q = JSONText.quote
        // A valid canonical event, as ordered (key, raw JSON) pairs, then broken in one way.
        var f: [(String, String)] = [
            ("id", q(id)), ("timestamp", q(RFC3339.format(position))), ("workflow", q(w.name)), ("owner", q(w.owner)),
            ("model", q(model)), ("provider", q(provider)), ("input_tokens", "1200"), ("cache_read_tokens", "200"),
            ("output_tokens", "300"), ("reasoning_tokens", "0"), ("tags", "{\"environment\":\"prod\"}"),
        ]
        func set(_ k: String, _ v: String) {
            if let i = f.firstIndex(where: { $0.0 == k }) { f[i].1 = v } else { f.append((k, v)) }
        }
        func remove(_ k: String) { f.removeAll { $0.0 == k } }
        func render() -> String { "{" + f.map { q($0.0) + ":" + $0.1 }.joined(separator: ",") + "}" }
        let tokenKeys = ["input_tokens", "cache_read_tokens", "output_tokens"]
        /// Some token classes are written inside an OpenAI Chat block instead of the canonical fields.
        func blockVariant(_ bad: String) {
            for k in ["input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens"] { remove(k) }
            set("provider", q("openai"))
            set("usage", "{\"prompt_tokens\":\(bad),\"completion_tokens\":40,\"total_tokens\":1240}")
        }

        var line: String
        switch cls {
        case .invalidJSON:
            let valid = render()
            switch rng.index(5) {
            case 0: line = String(valid.dropLast(Int(rng.int(1...12))))  // truncated
            case 1: line = valid.replacing(",\"owner\":", with: " \"owner\":")  // missing comma between members
            case 2: line = valid.replacing("\"", with: "'")  // single quotes
            case 3: line = "{workflow: \(q(w.name)), owner: \(q(w.owner)), input_tokens: 5}"  // unquoted keys
            default: line = valid.replacing("\"output_tokens\":300", with: "\"output_tokens\":NaN")
            }
        case .notObject:
            line = rng.pick(["[" + render() + "]", q("usage event"), "42", "null", "true", "[]"])
        case .missingWorkflow:
            remove("workflow"); line = render()
        case .missingOwner:
            remove("owner"); line = render()
        case .emptyOwner:
            set("owner", q("")); line = render()
        case .ownerTooLong:
            // Over 256 bytes; the multi-byte variant is at most 256 characters but over 256 UTF-8 bytes.
            let owner = rng.chance(0.5) ? String(repeating: "x", count: Int(rng.int(257...400)))
                : String(repeating: "é", count: Int(rng.int(129...200)))
            set("owner", q(owner)); line = render()
        case .negativeTokens:
            if rng.chance(0.3) { blockVariant("-\(rng.int(1...5000))") } else { set(rng.pick(tokenKeys), "-\(rng.int(1...5000))") }
            line = render()
        case .fractionalTokens:
            if rng.chance(0.3) { blockVariant("1200.5") } else { set(rng.pick(["input_tokens", "output_tokens"]), "\(rng.int(300...2000)).5") }
            line = render()
        case .nonNumericTokens:
            let v = q(rng.pick(["lots", "12k", "1,200", "NaN", "twelve", "0x4b0"]))
            if rng.chance(0.3) { blockVariant(v) } else { set(rng.pick(tokenKeys), v) }
            line = render()
        case .absurdTokens:
            set(rng.pick(["input_tokens", "output_tokens"]), String(rng.int(1_000_000_001...50_000_000_000))); line = render()
        case .cacheExceedsInput:
            if rng.chance(0.5) {
                set("cache_read_tokens", "1500")
            } else {
                set("cache_read_tokens", "800"); set("cache_write_tokens", "600")
            }
            line = render()
        case .reasoningExceedsOutput:
            set("reasoning_tokens", String(rng.int(301...5000))); line = render()
        case .badTimestamp:
            let v = rng.pick(["\"2026-13-01T00:00:00Z\"", "\"2026-11-29T25:61:00Z\"", "\"yesterday\"", "\"2026/11/29 10:00:00\"",
                              "\"2026-02-30T10:00:00Z\"", "\"2026-11-29T10:00:00\"", "{\"seconds\":5}"])
            set("timestamp", v); line = render()
        case .tooLarge:
            set("prompt", q(String(repeating: "lorem ipsum ", count: 100_000))); line = render()
        }
        return GeneratedEvent(line: line, expected: .bad(reason: cls.rawValue))
    }
}
