import Foundation
import Testing
import TokenmeterCore
@testable import TrafficGenerator

let start2026: EpochMillis = RFC3339.parse("2026-11-29T00:00:00Z")!

func config(seed: UInt64 = 42, events: Int = 20_000) -> TrafficConfig {
    TrafficConfig(seed: seed, start: start2026, events: events, spanMillis: 6 * 3_600_000)
}

@Test func catalogueIsRealistic() {
    #expect(Catalogue.workflows.count >= 24)
    #expect(Set(Catalogue.workflows.map(\.owner)).count >= 6)
    #expect(Set(Catalogue.workflows.map(\.name)).count == Catalogue.workflows.count)
    #expect(Catalogue.models.count >= 10)
    for w in Catalogue.workflows {
        #expect((1...3).contains(w.models.count), "\(w.name)")
        for m in w.models { #expect(Catalogue.model(named: m.model) != nil, "\(w.name): \(m.model)") }
        #expect(Catalogue.owners.contains(w.owner))
    }
    for p in ["openai", "anthropic", "google"] { #expect(Catalogue.models.contains { $0.provider == p }) }
}

@Test func sameSeedSameTrafficOtherSeedOther() {
    var a = TrafficGenerator(config(seed: 7))
    var b = TrafficGenerator(config(seed: 7))
    var c = TrafficGenerator(config(seed: 8))
    let ea = a.generate(3000), eb = b.generate(3000), ec = c.generate(3000)
    #expect(ea == eb)
    #expect(ea.map(\.line) != ec.map(\.line))
    // A fixed fingerprint: the sequence must not change across platforms or runs.
    var rng = SplitMix64(seed: 0)
    #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
    #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
}

@Test func deterministicExpIsAccurate() {
    var x = -4.0
    while x <= 4 {
        let e = deterministicExp(x)
        #expect(abs(e - Foundation.exp(x)) / Foundation.exp(x) < 1e-12, "\(x)")
        x += 0.137
    }
}

@Test func mixProportionsRoughlyAsConfigured() {
    var g = TrafficGenerator(config(events: 40_000))
    let events = g.generate(40_000)
    var bad = 0, outcome = 0, usage = 0, late = 0, ce = 0, otel = 0, native = 0, canonical = 0, errors = 0, overrides = 0
    for e in events {
        switch e.expected {
        case .bad: bad += 1
        case .outcome(let o):
            outcome += 1
            if o.isLate { late += 1 }
        case .usage(let u):
            usage += 1
            if u.isLate { late += 1 }
            if u.cloudEvent { ce += 1 } else if u.shape == .otel { otel += 1 } else if u.shape == .canonical { canonical += 1 } else { native += 1 }
            if u.isError { errors += 1 }
            if u.costOverride != nil { overrides += 1 }
        case .duplicate: Issue.record("no duplicates by default")
        }
    }
    let n = Double(events.count)
    #expect(abs(Double(bad) / n - 0.02) < 0.005)
    #expect(abs(Double(outcome) / n - 0.05) < 0.008)
    #expect(abs(Double(late) / n - 0.01) < 0.004)
    let u = Double(usage)
    #expect(abs(Double(ce) / u - 0.15) < 0.02)
    #expect(abs(Double(otel) / u - 0.15) < 0.02)
    #expect(native > canonical)  // 45% native, 25% canonical plus the share of Bedrock native
    #expect(errors > 0 && Double(errors) / u < 0.05)
    #expect(abs(Double(overrides) / u - 0.01) < 0.004)
    // Event time spans roughly the configured 6 hours.
    #expect(abs(g.position - start2026 - 6 * 3_600_000) < 15 * 60_000)
}

@Test func everyUsageAndOutcomeLineSaysWhatItsExpectationClaims() throws {
    var g = TrafficGenerator(config(seed: 99, events: 30_000))
    var shapes: Set<String> = []
    var sawOffset = false, sawFraction = false, sawEpoch = false, sawStringData = false, sawStringCounts = false
    for _ in 0..<30_000 {
        let e = g.next()
        #expect(!e.line.contains("\n"))
        switch e.expected {
        case .usage(let u):
            let d = try #require(ReferenceDecoder.decode(e.line), "not a JSON object: \(e.line)")
            shapes.insert(u.shape.rawValue + (u.cloudEvent ? "+ce" : ""))
            #expect(d.type == "usage", "\(e.line)")
            #expect(d.id == u.id)
            #expect(d.workflow == u.workflow, "\(e.line)")
            #expect(d.owner == u.owner, "\(e.line)")
            #expect(d.model == u.model, "\(e.line)")
            #expect(d.provider == u.provider, "\(e.line)")
            #expect(d.tokens == u.tokens, "\(e.line)")
            #expect(d.isError == u.isError)
            #expect(d.eventTime == u.eventTime, "\(e.line)")
            #expect(d.tags == u.tags)
            // Canonical bucket invariants.
            let t = u.tokens
            #expect(t.cacheRead + t.cacheWrite <= t.input && t.reasoning <= t.output && t.cacheRead >= 0 && t.cacheWrite >= 0)
            #expect(t.input <= 1_000_000_000 && t.output <= 1_000_000_000)
            if let c = u.costOverride {
                #expect(ReferenceDecoder.rawNumber("cost_usd", in: e.line.replacingOccurrences(of: "\\\"", with: "\"")).flatMap { Money.parse($0) } == c)
            } else {
                #expect(!e.line.contains("\"cost_usd\""))
            }
            // Spot checks of the mapping rules straight from the raw block.
            if u.shape == .anthropic, !u.cloudEvent || !u.dataAsString {
                let obj = try #require(ReferenceDecoder.object(e.line))
                let block = try #require(((obj["data"] as? [String: Any]) ?? obj)["usage"] as? [String: Any])
                let sum = (block["input_tokens"] as! NSNumber).int64Value + (block["cache_read_input_tokens"] as! NSNumber).int64Value
                    + (block["cache_creation_input_tokens"] as! NSNumber).int64Value
                #expect(sum == u.tokens.input)
            }
            if u.shape == .gemini, !u.cloudEvent {
                let block = try #require(ReferenceDecoder.object(e.line)?["usage"] as? [String: Any])
                let cand = (block["candidatesTokenCount"] as? NSNumber)?.int64Value ?? 0
                let thoughts = (block["thoughtsTokenCount"] as? NSNumber)?.int64Value ?? 0
                #expect(cand + thoughts == u.tokens.output)
            }
            if u.dataAsString { sawStringData = true }
            if u.shape == .otel && e.line.contains("\"gen_ai.usage.input_tokens\":\"") { sawStringCounts = true }
        case .outcome(let o):
            let d = try #require(ReferenceDecoder.decode(e.line), "not a JSON object: \(e.line)")
            #expect(d.type == "outcome")
            #expect(d.id == o.id && d.workflow == o.workflow && d.owner == o.owner && d.outcome == o.outcome)
            #expect(d.count == o.count && d.eventTime == o.eventTime, "\(e.line)")
            if let v = o.valueUSD {
                #expect(ReferenceDecoder.rawNumber("value_usd", in: e.line.replacingOccurrences(of: "\\\"", with: "\"")).flatMap { Money.parse($0) } == v)
            }
        case .bad, .duplicate:
            continue
        }
        if e.line.range(of: #"[0-9]{2}:[0-9]{2}(\.[0-9]{3})?[+-][0-9]{2}:[0-9]{2}\\?""#, options: .regularExpression) != nil { sawOffset = true }
        if e.line.range(of: #":[0-9]{2}\.[0-9]{3}Z"#, options: .regularExpression) != nil { sawFraction = true }
        if e.line.range(of: #""(timestamp|ts|time)":[0-9]{13}"#, options: .regularExpression) != nil { sawEpoch = true }
    }
    for s in ["canonical", "openai-chat", "openai-responses", "anthropic", "gemini", "gemini-openai-compat", "otel",
              "canonical+ce", "anthropic+ce", "gemini+ce", "openai-chat+ce"] {
        #expect(shapes.contains(s), "shape \(s) never generated")
    }
    #expect(sawOffset && sawFraction && sawEpoch && sawStringData && sawStringCounts)
}

@Test func everyBadClassAppearsAndIsBadForItsReason() throws {
    var c = config(seed: 5, events: 20_000)
    c.badFraction = 0.2
    c.includeOversized = true
    var g = TrafficGenerator(c)
    var seen: [String: Int] = [:]
    for _ in 0..<20_000 {
        let e = g.next()
        guard case .bad(let reason) = e.expected else { continue }
        seen[reason, default: 0] += 1
        let cls = try #require(BadClass(rawValue: reason))
        switch cls {
        case .invalidJSON:
            #expect(!ReferenceDecoder.isValidJSON(e.line), "\(e.line)")
        case .notObject:
            #expect(ReferenceDecoder.isValidJSON(e.line) && ReferenceDecoder.object(e.line) == nil)
        default:
            let o = try #require(ReferenceDecoder.object(e.line), "\(reason): \(e.line.prefix(300))")
            switch cls {
            case .missingWorkflow: #expect(o["workflow"] == nil && o["owner"] != nil)
            case .missingOwner: #expect(o["owner"] == nil && o["workflow"] != nil)
            case .emptyOwner: #expect((o["owner"] as? String) == "")
            case .ownerTooLong: #expect(((o["owner"] as? String)?.utf8.count ?? 0) > 256)
            case .negativeTokens: #expect(e.line.range(of: #"_tokens":-[0-9]"#, options: .regularExpression) != nil)
            case .fractionalTokens: #expect(e.line.range(of: #"_tokens":[0-9]+\.5"#, options: .regularExpression) != nil)
            case .nonNumericTokens: #expect(e.line.range(of: #"_tokens":"[^"]*[^0-9"][^"]*""#, options: .regularExpression) != nil)
            case .absurdTokens:
                let v = max(ReferenceDecoder.count(o["input_tokens"]) ?? 0, ReferenceDecoder.count(o["output_tokens"]) ?? 0)
                #expect(v > 1_000_000_000)
            case .cacheExceedsInput:
                let d = try #require(ReferenceDecoder.decode(e.line))
                #expect(d.tokens.cacheRead + d.tokens.cacheWrite > d.tokens.input)
            case .reasoningExceedsOutput:
                let d = try #require(ReferenceDecoder.decode(e.line))
                #expect(d.tokens.reasoning > d.tokens.output)
            case .badTimestamp:
                #expect(ReferenceDecoder.time(o["timestamp"]) == nil)
            case .tooLarge:
                #expect(e.line.utf8.count > 1 << 20)
            default: break
            }
            // Apart from the one defect, the line is a well-formed usage event.
            if cls != .missingWorkflow { #expect(o["workflow"] is String) }
        }
    }
    for cls in BadClass.allCases { #expect(seen[cls.rawValue, default: 0] > 0, "bad class \(cls.rawValue) never generated") }
}

@Test func idsAreUnique() {
    var g = TrafficGenerator(config(seed: 11, events: 20_000))
    var ids = Set<String>()
    for _ in 0..<20_000 {
        let e = g.next()
        if let id = e.expected.id { #expect(ids.insert(id).inserted, "duplicate id \(id)") }
    }
    #expect(ids.count > 19_000)
}

@Test func duplicatesRepeatAnEarlierLine() {
    var c = config(seed: 3, events: 5_000)
    c.duplicateFraction = 0.02
    var g = TrafficGenerator(c)
    var lines: [String: String] = [:]
    var dups = 0
    for _ in 0..<5_000 {
        let e = g.next()
        switch e.expected {
        case .duplicate(let id):
            dups += 1
            #expect(lines[id] == e.line)
        case .usage(let u): lines[u.id] = e.line
        case .outcome(let o): lines[o.id] = e.line
        case .bad: break
        }
    }
    #expect(dups > 50)
    let totals = ExpectedTotals(TrafficGenerator(c).peek(5_000).map(\.expected))
    #expect(totals.duplicates == dups)
}

@Test func spikeMultipliesRateAndSize() {
    var c = config(seed: 21, events: 40_000)
    c.spike = TrafficSpike(workflow: "support-triage", startFraction: 0.5, factor: 5)
    c.badFraction = 0
    c.outcomeFraction = 0
    c.lateFraction = 0
    var g = TrafficGenerator(c)
    var before = (n: 0, spiked: 0, input: Int64(0), span: EpochMillis(0))
    var after = before
    var t0 = g.position
    for i in 0..<40_000 {
        if i == 20_000 { before.span = g.position - t0; t0 = g.position }
        guard case .usage(let u) = g.next().expected else { continue }
        if i < 20_000 {
            before.n += 1
            if u.workflow == "support-triage" { before.spiked += 1; before.input += u.tokens.input }
        } else {
            after.n += 1
            if u.workflow == "support-triage" { after.spiked += 1; after.input += u.tokens.input }
        }
    }
    after.span = g.position - t0
    // Rate per hour of event time.
    let rateBefore = Double(before.spiked) / Double(before.span)
    let rateAfter = Double(after.spiked) / Double(after.span)
    #expect(rateAfter / rateBefore > 4 && rateAfter / rateBefore < 6)
    let sizeRatio = (Double(after.input) / Double(after.spiked)) / (Double(before.input) / Double(before.spiked))
    #expect(sizeRatio > 4 && sizeRatio < 6)
    // Other workflows keep their rate.
    let othersBefore = Double(before.n - before.spiked) / Double(before.span)
    let othersAfter = Double(after.n - after.spiked) / Double(after.span)
    #expect(abs(othersAfter / othersBefore - 1) < 0.1)
}

@Test func lateAndOutOfOrderEventsStayWithinHorizon() {
    var g = TrafficGenerator(config(seed: 4, events: 20_000))
    var outOfOrder = 0, late = 0
    var maxSeen: EpochMillis = .min
    for _ in 0..<20_000 {
        let pos = g.position
        let e = g.next()
        guard case .usage(let u) = e.expected else { continue }
        if u.isLate {
            late += 1
            #expect(u.eventTime < g.position - 3_600_000 + 1000 && u.eventTime > pos - 7 * 86_400_000)
        } else {
            if u.eventTime < maxSeen { outOfOrder += 1 }
            #expect(u.eventTime > g.position - 6_000)
            maxSeen = max(maxSeen, u.eventTime)
        }
    }
    #expect(late > 50 && outOfOrder > 50)
}

@Test func totalsFollowTheCostFormulaAndAddUp() throws {
    let prices = [
        OraclePrice("m-exact", input: "2", output: "10"),
        OraclePrice("m-*", input: "1", cacheRead: "0.5", cacheWrite: "3", output: "4", reasoning: "8"),
        OraclePrice("m-long*", input: "100", output: "100"),
    ]
    var totals = ExpectedTotals(prices: prices, windows: [60_000, 3_600_000])
    func usage(_ model: String, _ t: ExpectedTokens, time: EpochMillis, cost: Money? = nil, error: Bool = false) -> ExpectedEffect {
        .usage(ExpectedUsage(id: "x", workflow: "w", owner: "o", model: model, provider: nil, tags: [:], tokens: t, isError: error,
                             costOverride: cost, eventTime: time, isLate: false, shape: .canonical, cloudEvent: false, dataAsString: false))
    }
    let t = ExpectedTokens(input: 1_000_000, cacheRead: 200_000, cacheWrite: 100_000, output: 500_000, reasoning: 100_000)
    // Exact beats glob: (1M x 2) + (0.5M x 10) = 2 + 5 = 7 USD; cache and reasoning prices default to input/output.
    #expect(totals.cost(of: try #require(usage("m-exact", t, time: 0).usage)) == Money(dollars: 7))
    // Glob: 0.7M x 1 + 0.2M x 0.5 + 0.1M x 3 + 0.4M x 4 + 0.1M x 8 = 0.7 + 0.1 + 0.3 + 1.6 + 0.8 = 3.5
    #expect(totals.cost(of: try #require(usage("m-x", t, time: 0).usage)) == Money.parse("3.5"))
    // Longer glob wins.
    #expect(totals.price(model: "m-long-1", provider: nil)?.model == "m-long*")
    totals.add(usage("m-exact", t, time: start2026))
    totals.add(usage("m-x", t, time: start2026 + 61_000, error: true))
    totals.add(usage("m-x", t, time: start2026 + 3_600_000, cost: Money.parse("0.25")))
    totals.add(usage("unknown", t, time: start2026))
    totals.add(.outcome(ExpectedOutcome(id: "y", workflow: "w", owner: "o", outcome: "done", count: 3, valueUSD: Money(dollars: 2),
                                        eventTime: start2026, isLate: false, cloudEvent: false)))
    totals.add(.bad(reason: "invalid_json"))
    totals.add(.bad(reason: "invalid_json"))
    #expect(totals.grandTotal.requests == 4)
    #expect(totals.grandTotal.errors == 1)
    #expect(totals.grandTotal.unpricedRequests == 1)
    #expect(totals.grandTotal.cost == Money.parse("10.75"))
    #expect(totals.grandTotal.inputTokens == 4_000_000)
    #expect(totals.grandTotal.outcomes == ["done": 3])
    #expect(totals.grandTotal.outcomeValue == Money(dollars: 2))
    #expect(totals.deadLetters == ["invalid_json": 2])
    #expect(totals.unpricedModels == ["unknown"])
    #expect(totals.byKey[ExpectedKey(workflow: "w", owner: "o", model: nil)]?.outcomes == ["done": 3])
    #expect(totals.byWindow.keys.filter { $0.windowMillis == 60_000 }.count == 5)
    #expect(totals.byWindow[ExpectedWindowKey(windowMillis: 3_600_000, windowStart: start2026, workflow: "w", owner: "o", model: "m-x")]?.requests == 1)
}

@Test func windowTotalsSumToKeyTotalsOnGeneratedTraffic() {
    var g = TrafficGenerator(config(seed: 8, events: 10_000))
    let totals = ExpectedTotals(g.generate(10_000).map(\.expected), windows: [60_000, 3_600_000, 86_400_000])
    for w: Int64 in [60_000, 3_600_000, 86_400_000] {
        var sum: [ExpectedKey: ExpectedRow] = [:]
        for (k, v) in totals.byWindow where k.windowMillis == w { sum[k.key, default: ExpectedRow()].add(v) }
        #expect(sum == totals.byKey)
    }
    #expect(totals.grandTotal.cost > .zero)
    #expect(totals.unpricedModels == ["meta.llama3-3-70b-instruct-v1:0"])
    #expect(totals.deadLetters.values.reduce(0, +) > 100)
}

@Test func writesJSONLinesFile() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("traffic-\(UInt32.random(in: 0...UInt32.max)).jsonl").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    var g = TrafficGenerator(config(seed: 1, events: 2_000))
    let effects = try g.write(count: 2_000, toFile: path)
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.count == 2_001 && lines.last == "")
    #expect(effects == TrafficGenerator(config(seed: 1, events: 2_000)).peek(2_000).map(\.expected))
    var totals = ExpectedTotals()
    var g2 = TrafficGenerator(config(seed: 1, events: 2_000))
    try g2.write(count: 2_000, toFile: path, into: &totals)
    #expect(totals.grandTotal == ExpectedTotals(effects).grandTotal)
}

@Test func jsonQuotingEscapes() throws {
    let s = "a\"b\\c\nd\u{01}é\u{2028}"
    let q = JSONText.quote(s)
    #expect(!q.contains("\n"))
    let back = try JSONSerialization.jsonObject(with: Data(q.utf8), options: [.fragmentsAllowed]) as? String
    #expect(back == s)
}

@Test func jsonQuotingEscapesEachSpecialCharacterAloneAndCopiesTheRest() throws {
    // Each character that needs an escape, alone in otherwise plain text, still gets it (the plain
    // fast path must not swallow one); plain and non-ASCII text comes back unchanged.
    let escapes = [("\"", "\\\""), ("\\", "\\\\"), ("\n", "\\n"), ("\u{1F}", "\\u001f"),
                   ("\u{2028}", "\\u2028"), ("\u{2029}", "\\u2029")]
    for (special, escaped) in escapes {
        let s = "plain " + special + " text"
        let q = JSONText.quote(s)
        #expect(q == "\"plain " + escaped + " text\"")
        let back = try JSONSerialization.jsonObject(with: Data(q.utf8), options: [.fragmentsAllowed]) as? String
        #expect(back == s)
    }
    for plain in ["", "gpt-4o", "héllo wörld ✓ 日本"] {
        #expect(JSONText.quote(plain) == "\"" + plain + "\"")
    }
}

extension ExpectedEffect {
    var usage: ExpectedUsage? { if case .usage(let u) = self { return u } else { return nil } }
}

extension TrafficGenerator {
    func peek(_ n: Int) -> [GeneratedEvent] {
        var copy = self
        return copy.generate(n)
    }
}
