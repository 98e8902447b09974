/// One row of a rollup file, as read back (contract section 3).
public struct RollupRow: Sendable, Equatable {
    public var window = ""
    public var windowStart: EpochMillis = 0
    public var windowEnd: EpochMillis = 0
    public var workflow = ""
    public var owner = ""
    public var model: String? = nil
    public var provider: String? = nil
    public var tags: [String: String] = [:]
    public var counters = RollupCounters()
    /// Outcome name -> count (counters.outcomes needs interned ids; readers want names).
    public var outcomes: [String: Int64] = [:]
    public var late = false

    public init() {}
}
