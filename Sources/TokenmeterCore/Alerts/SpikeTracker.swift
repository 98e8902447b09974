/// One `[[spike]]` rule: per workflow (or owner), the spend of the current tumbling `window` (event time)
/// against an EWMA baseline of the previous windows.
///
/// Baseline: `baseline = alpha x closed_window + (1 - alpha) x baseline` with alpha = 0.3 (about the last
/// 6 windows weigh in; a single earlier burst fades by 0.7 per window). The first window seeds it. Empty
/// windows between two active ones count as zero spend (the baseline decays by 0.7 each). Kept as exact
/// integer femtos with rational alpha 3/10, so replays compute the same numbers.
///
/// A `spend_spike` is published once per window, when the window's spend exceeds both `factor x baseline`
/// and `min_usd`, and only once the baseline has seen at least 3 previous windows: a new workflow has no
/// baseline and is never a spike, nor is a key idle for more than 64 windows (behind the rule's newest
/// window), which starts over. An event older than its key's current window is not counted here.
struct SpikeTracker {
    static let alphaNumerator: Int128 = 3
    static let alphaDenominator: Int128 = 10
    static let minimumWindows: Int64 = 3
    static let windowCap: Int64 = 1_000_000

    var rule: SpikeRule
    /// Key id -> position in `keys` and `states`.
    var index = IdIndex()
    var keys: [UInt32] = []
    var states: [SpikeKeyState] = []
    /// The newest window start of any key: a key whose window is more than `AlertEngine.spikeIdleWindows`
    /// windows behind it starts over as a new key. Saved state leaves such keys out (their baseline has
    /// decayed to nothing), so the same rule in the live engine is what makes a restart, or a rebuild of
    /// the name table, change no alert.
    var newestStart: EpochMillis = .min

    init(_ rule: SpikeRule) { self.rule = rule }

    var identity: String { "\(rule.name)\u{1F}\(rule.by.rawValue)\u{1F}\(rule.window.millis)" }

    /// Closes the current window of a state and moves it to the window starting at `newStart`.
    static func roll(_ s: inout SpikeKeyState, to newStart: EpochMillis, window: Int64) {
        if s.windows == 0 {
            s.baseline = s.spend.femtos
        } else {
            s.baseline = divideByAlphaDenominator(alphaNumerator * s.spend.femtos + (alphaDenominator - alphaNumerator) * s.baseline)
        }
        let gap = (newStart - s.windowStart) / window - 1
        var k: Int64 = 0
        while k < gap && k < 200 && s.baseline != 0 {
            s.baseline = divideByAlphaDenominator((alphaDenominator - alphaNumerator) * s.baseline)
            k += 1
        }
        s.windows = min(windowCap, s.windows + 1 + max(0, gap))
        s.windowStart = newStart
        s.spend = .zero
        s.alerted = false
        s.models.removeAll()
        s.workflows.removeAll()
    }

    /// `x / alphaDenominator`, truncating like Int128 division. Int128 division is a runtime call
    /// (`__divti3`, tens of ns); values that fit 64 bits (a window's spend under about $9,000) take the
    /// native 64-bit division, which gives the same quotient.
    @inline(__always)
    static func divideByAlphaDenominator(_ x: Int128) -> Int128 {
        if let small = Int64(exactly: x) { return Int128(small / Int64(alphaDenominator)) }
        return x / alphaDenominator
    }

    mutating func record(key: UInt32, workflow: UInt32, model: UInt32, cost: Money, time: EpochMillis,
                         names: () -> StringTable, now: () -> EpochMillis, into out: inout [Alert]) {
        let window = rule.window.millis
        let start = floorDiv(time, window) * window
        if start > newestStart { newestStart = start }
        let i: Int
        if let found = index[key] {
            i = found
            if newestStart &- states[i].windowStart > AlertEngine.spikeIdleWindows &* window {
                states[i] = SpikeKeyState(windowStart: start)
            }
        } else {
            i = states.count
            index[key] = i
            keys.append(key)
            states.append(SpikeKeyState(windowStart: start))
        }
        if start > states[i].windowStart {
            SpikeTracker.roll(&states[i], to: start, window: window)
        } else if start < states[i].windowStart {
            return  // older than the key's current window: its window is gone
        }
        states[i].spend += cost
        states[i].models.add(model, cost)
        states[i].workflows.add(workflow, cost)
        guard !states[i].alerted, states[i].windows >= SpikeTracker.minimumWindows, states[i].spend > rule.min,
              states[i].spend.femtos * 1000 > Int128(rule.factorMilli) * states[i].baseline else { return }
        states[i].alerted = true
        publish(key: key, state: states[i], time: time, names: names(), now: now, into: &out)
    }

    private func publish(key: UInt32, state s: SpikeKeyState, time: EpochMillis, names: StringTable,
                         now: () -> EpochMillis, into out: inout [Alert]) {
        let keyName = AlertText.name(key, names)
        let scope = [KeyValue(rule.by.rawValue, keyName)]
        let factorText = FixedDecimal.format(Int128(rule.factorMilli), scale: 3, maxDecimals: 3)
        let baseline = Money(femtos: s.baseline)
        let topModels = AlertText.top(s.models.dictionary, names: names)
        let end = s.windowStart + rule.window.millis
        var message = "\(rule.name): \(rule.by.rawValue) \(keyName) spent \(AlertText.dollars(s.spend)) in the \(rule.window.label) "
            + "window from \(RFC3339.format(s.windowStart))"
        if s.baseline > 0 {
            let ratio = FixedDecimal.format(s.spend.femtos * 100 / s.baseline, scale: 2, maxDecimals: 2, minDecimals: 2)
            message += ", \(ratio)x its baseline of \(AlertText.dollars(baseline))"
        } else {
            message += ", against a baseline of $0.00"
        }
        message += " (alert over \(factorText)x and \(AlertText.dollars(rule.min)))"
        if !topModels.isEmpty {
            message += "; top models: " + topModels.map { "\($0.name) \(AlertText.dollars($0.cost))" }.joined(separator: ", ")
        }
        out.append(Alert(
            id: Alert.makeID(rule: rule.name, scope: scope, periodStart: s.windowStart, kind: .spendSpike, threshold: factorText),
            kind: .spendSpike, severity: .warning, rule: rule.name, scope: scope,
            periodStart: s.windowStart, periodEnd: end, thresholdMilliPct: rule.factorMilli * 100, budget: baseline,
            spent: s.spend, usedHundredthsPct: AlertText.hundredthsPct(s.spend, of: baseline), projected: nil,
            topWorkflows: AlertText.top(s.workflows.dictionary, names: names), eventTime: time, emittedAt: now(), message: message,
            details: .spike(windowSpend: s.spend, baseline: baseline, factorMilli: rule.factorMilli, topModels: topModels)))
    }
}
