/// Counters of what the pipeline did, read by the daemon for logs, STATUS and /metrics.
public struct PipelineMetrics: Sendable, Equatable {
    public var messages: Int64 = 0
    public var usageEvents: Int64 = 0
    public var outcomeEvents: Int64 = 0
    public var duplicates: Int64 = 0
    public var lateEvents: Int64 = 0
    public var rejected: [RejectReason.Code: Int64] = [:]
    public var windowsClosed: Int64 = 0
    public var filesWritten: Int64 = 0
    public var unpricedRequests: Int64 = 0
    /// Requests whose usage block no row of the table reads (also in `unpricedRequests`).
    public var unrecognizedUsage: Int64 = 0
    /// Events counted under the `__overflow__` key because a window reached `rollups.max_keys_per_window`.
    public var overflowEvents: Int64 = 0
    /// Rebuilds of the name table from the names still in use (`Pipeline.compactNames`).
    public var nameCompactions: Int64 = 0

    public init() {}

    public var rejectedTotal: Int64 { rejected.values.reduce(0, +) }
}
