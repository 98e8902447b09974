/// The spike state of one workflow (or owner) under one `[[spike]]` rule.
struct SpikeKeyState: Equatable {
    /// Start of the current tumbling window (event time).
    var windowStart: EpochMillis
    /// Spend in the current window.
    var spend: Money = .zero
    /// EWMA of the spend of previous windows, in femtos.
    var baseline: Int128 = 0
    /// How many previous windows the baseline has seen (empty ones included), capped.
    var windows: Int64 = 0
    /// A spike was already published for the current window.
    var alerted = false
    /// Spend per model and per workflow in the current window (the models and workflows driving a spike).
    var models = SpendShares()
    var workflows = SpendShares()

    init(windowStart: EpochMillis) { self.windowStart = windowStart }
}
