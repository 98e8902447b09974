import Synchronization
import TokenmeterCore

/// A snapshot of the daemon's counters, published by the polling thread once per batch (not per event)
/// for readers on other threads: the demo's progress line, /metrics, the health endpoints and STATUS.
public final class DaemonProgress: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var metrics = PipelineMetrics()
        public var assignedPartitions = 0
        public var openRows = 0
        /// Names interned by the pipeline (workflows, owners, models, providers, tag values, outcomes) and
        /// about how much memory they hold; released by the name table's compaction.
        public var internedNames = 0
        public var internedBytes = 0
        /// The state's memory by the model of `Pipeline.estimatedStateBytes`, and whether consuming is paused
        /// because it is over `state.max_memory`.
        public var stateBytes = 0
        public var memoryPaused = false
        public var pendingFiles = 0
        public var checkpoints = 0
        public var joined = false

        // Operations (filled by the polling thread; read by /metrics, /-/healthy, /-/ready and STATUS).
        /// Consuming: the group joined, partitions held and a broker reachable, or less than
        /// `kafka.ready_grace` without (see `Daemon.readiness`).
        public var ready = false
        /// Why not ready (nil when ready), for the /-/ready answer.
        public var notReadyReason: String?
        /// SIGTERM/SIGINT received: /-/ready answers 503 from here on.
        public var stopping = false
        /// Monotonic milliseconds of the consume loop's last iteration (0 before the loop starts).
        public var loopHeartbeatMono: Int64 = 0
        public var openWindows = 0
        public var rebalances = 0
        /// Consumer lag per partition from librdkafka's statistics (sorted by topic, partition).
        public var consumerLag: [PartitionLag] = []
        public var rollupFlushSeconds = Histogram(bounds: Histogram.flushBounds)
        /// Wall clock (epoch ms) of the last durable checkpoint, 0 before the first.
        public var lastCheckpointWall: Int64 = 0
        public var lastCheckpointSeconds: Double = 0
        public var checkpointFailures: Int64 = 0
        /// The rollup folder cannot be written right now (consuming paused); failed write attempts so far.
        public var rollupWriteFailing = false
        public var rollupWriteFailures: Int64 = 0
        /// The state folder (checkpoint, alert outbox) cannot be written right now (consuming paused, no
        /// commit); failed write attempts so far.
        public var stateWriteFailing = false
        public var stateWriteFailures: Int64 = 0
        /// Scale-out (issue 9): changelog records and bytes written, alert shards owned, spend ranges
        /// applied and skipped (already applied, or another group's).
        public var changelogRecords: Int64 = 0
        public var changelogBytes: Int64 = 0
        public var alertShards: Int = 0
        public var spendApplied: Int64 = 0
        public var spendSkipped: Int64 = 0
        public var configReloadSuccess = true
        /// Wall clock (epoch ms) of the last reload attempt (or of the start), 0 when none.
        public var configReloadWall: Int64 = 0
        public var configReloads: Int64 = 0
        public var eventsPerSecond: Double = 0

        // Alerts: filled by the alert integration.
        public var alertsPublished: Int64 = 0
        public var alertsFailed: Int64 = 0
        /// Alerts moved out of the outbox because they can never be produced (`outbox/rejected/`).
        public var alertsRejected: Int64 = 0
        /// Dead letters kept in the spill file (the topic could not take them), those too large even for
        /// it (only counted), and the spill files' size.
        public var deadLettersSpilled: Int64 = 0
        public var deadLetterSpillDropped: Int64 = 0
        public var deadLetterSpillBytes: Int64 = 0
        public var alertOutboxDepth: Int64 = 0
        public var alertLatencySeconds = Histogram(bounds: Histogram.alertLatencyBounds)
        /// One line about the last alert published, for STATUS (nil: none yet).
        public var lastAlert: String? = nil

        public init() {}
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) { state.withLock { body(&$0) } }
}

public struct PartitionLag: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var lag: Int64
    public init(topic: String, partition: Int32, lag: Int64) { self.topic = topic; self.partition = partition; self.lag = lag }
}

/// A Prometheus histogram: cumulative counts per upper bound, plus sum and count.
public struct Histogram: Sendable, Equatable {
    public static let flushBounds: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    public static let alertLatencyBounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30]
    public let bounds: [Double]
    public private(set) var counts: [Int64]
    public private(set) var sum: Double = 0
    public private(set) var count: Int64 = 0

    public init(bounds: [Double]) { self.bounds = bounds; self.counts = Array(repeating: 0, count: bounds.count) }

    public mutating func observe(_ v: Double) {
        for i in bounds.indices where v <= bounds[i] { counts[i] += 1 }
        sum += v
        count += 1
    }
}
