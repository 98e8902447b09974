import Synchronization
import TokenmeterCore

/// A snapshot of the daemon's counters, published by the polling thread once per batch (not per event)
/// for readers on other threads: the demo's progress line, later /metrics and STATUS.
public final class DaemonProgress: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var metrics = PipelineMetrics()
        public var assignedPartitions = 0
        public var openRows = 0
        public var pendingFiles = 0
        public var checkpoints = 0
        public var joined = false
        public var alertsPublished: Int64 = 0
        public var alertsFailed: Int64 = 0
        public var alertOutboxDepth = 0
        public var lastAlert: String? = nil
        public init() {}
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) { state.withLock { body(&$0) } }
}
