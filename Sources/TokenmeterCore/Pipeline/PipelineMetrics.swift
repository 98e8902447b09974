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
    /// OTLP trace topics: spans that became events (then counted, late or duplicate like any event),
    /// spans without GenAI usage (not events), and spans rejected by reason (their message still counts:
    /// not dead letters).
    /// Whether any topic is an OTLP trace topic (the span counters are shown only then).
    public var readsTraces = false
    public var llmSpans: Int64 = 0
    public var spansIgnored: Int64 = 0
    public var spansRejected: [RejectReason.Code: Int64] = [:]

    public init() {}

    public var rejectedTotal: Int64 { rejected.values.reduce(0, +) }
    public var spansRejectedTotal: Int64 { spansRejected.values.reduce(0, +) }
}
