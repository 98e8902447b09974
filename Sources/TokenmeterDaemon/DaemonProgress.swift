import Synchronization
import TokenmeterCore

/// A snapshot of the daemon's counters, published by the polling thread once per batch (not per event)
/// for readers on other threads: the demo's progress line, /metrics, the health endpoints and STATUS.
public final class DaemonProgress: Sendable {
    /// Grouped by the part of the daemon each field describes. The polling thread fills it (see
    /// `Daemon.publishProgress`); /metrics, /-/healthy, /-/ready, STATUS, the demo and the bench read it.
    public struct Snapshot: Sendable, Equatable {
        public var pipeline = PipelineProgress()
        public var consumer = ConsumerStatus()
        public var readiness = ReadinessStatus()
        public var memory = MemoryUse()
        public var disk = DiskWrites()
        public var checkpoint = CheckpointStatus()
        public var alerts = AlertDelivery()
        public var deadLetters = DeadLetterSpillStatus()
        public var scaleOut = ScaleOut()
        public var reload = ConfigReloadStatus()
        public var spend = SpendStatus()

        public init() {}

        /// The event path: what was consumed and counted, and what the open windows hold.
        public struct PipelineProgress: Sendable, Equatable {
            public var metrics = PipelineMetrics()
            /// Messages consumed per second, over the last rate interval (STATUS).
            public var eventsPerSecond: Double = 0
            public var openWindows = 0
            /// Rows held in open windows and late buckets.
            public var openRows = 0
            /// Closed windows waiting to be written (non-zero while the rollup folder is failing).
            public var pendingFiles = 0
            public init() {}
        }

        /// This instance in the consumer group: membership, the partitions it holds, how far behind it is.
        public struct ConsumerStatus: Sendable, Equatable {
            /// A partition has been assigned at least once.
            public var joined = false
            public var assignedPartitions = 0
            /// Rebalances (assignments and revocations) seen by this instance.
            public var rebalances = 0
            /// Consumer lag per partition from librdkafka's statistics (sorted by topic, partition); empty
            /// when the statistics are stale.
            public var lag: [PartitionLag] = []
            public init() {}
        }

        /// What the health endpoints answer.
        public struct ReadinessStatus: Sendable, Equatable {
            /// Consuming: the group joined, partitions held and a broker reachable, or less than
            /// `kafka.ready_grace` without (see `Daemon.readiness`).
            public var ready = false
            /// Why not ready (nil when ready), for the /-/ready answer.
            public var notReadyReason: String?
            /// SIGTERM/SIGINT received: /-/ready answers 503 from here on.
            public var stopping = false
            /// Monotonic milliseconds of the consume loop's last iteration (0 before the loop starts), for
            /// /-/healthy.
            public var loopHeartbeatMono: Int64 = 0
            public init() {}
        }

        /// The state's memory against `state.max_memory`.
        public struct MemoryUse: Sendable, Equatable {
            /// Names interned by the pipeline (workflows, owners, models, providers, tag values, outcomes)
            /// and about how much memory they hold; released by the name table's compaction.
            public var internedNames = 0
            public var internedBytes = 0
            /// De-duplication ids held by the assigned partitions.
            public var dedupIds = 0
            /// The state's memory by the model of `Pipeline.estimatedStateBytes`.
            public var stateBytes = 0
            /// Consuming is paused because the state is over `state.max_memory`.
            public var paused = false
            public init() {}
        }

        /// Disk trouble: a folder that cannot be written pauses consuming until a write succeeds.
        public struct DiskWrites: Sendable, Equatable {
            /// The rollup folder cannot be written right now; failed write attempts so far.
            public var rollupFailing = false
            public var rollupFailures: Int64 = 0
            /// The state folder (checkpoint, alert outbox) cannot be written right now (no commit either);
            /// failed write attempts so far.
            public var stateFailing = false
            public var stateFailures: Int64 = 0
            public init() {}
        }

        /// The durable checkpoints and the rollup flushes they start with.
        public struct CheckpointStatus: Sendable, Equatable {
            public var written = 0
            /// Wall clock (epoch ms) of the last durable checkpoint, 0 before the first.
            public var lastWall: Int64 = 0
            /// How long the last durable checkpoint took (files, dead letters, state file, commit).
            public var lastSeconds: Double = 0
            /// Checkpoints postponed because a step failed.
            public var failures: Int64 = 0
            public var rollupFlushSeconds = Histogram(bounds: Histogram.flushBounds)
            /// CPU seconds the polling thread spent in checkpoints.
            public var cpuSeconds: Double = 0
            /// Bytes written to the local checkpoint file and the de-duplication id segments.
            public var stateBytesWritten: Int64 = 0
            /// De-duplication id segment files on disk.
            public var idSegments = 0
            public init() {}
        }

        /// Alerts from the outbox to the alerts topic.
        public struct AlertDelivery: Sendable, Equatable {
            public var published: Int64 = 0
            public var failed: Int64 = 0
            /// Alerts moved out of the outbox because they can never be produced (`outbox/rejected/`).
            public var rejected: Int64 = 0
            public var outboxDepth: Int64 = 0
            public var latencySeconds = Histogram(bounds: Histogram.alertLatencyBounds)
            /// One line about the last alert published, for STATUS (nil: none yet).
            public var last: String? = nil
            public init() {}
        }

        /// Dead letters the dead-letter topic could not take.
        public struct DeadLetterSpillStatus: Sendable, Equatable {
            /// Kept in the spill file.
            public var spilled: Int64 = 0
            /// Too large even for the spill file: only counted.
            public var dropped: Int64 = 0
            /// The spill files' size.
            public var bytes: Int64 = 0
            public init() {}
        }

        /// Scale-out: changelog records and bytes written, alert shards owned, spend ranges applied and
        /// skipped (already applied, or another group's).
        public struct ScaleOut: Sendable, Equatable {
            public var changelogRecords: Int64 = 0
            public var changelogBytes: Int64 = 0
            public var alertShards = 0
            public var spendApplied: Int64 = 0
            public var spendSkipped: Int64 = 0
            public init() {}
        }

        /// Spend as an operational metric: the spend counters by `metrics.dimensions` and the state of the
        /// budgets and outcome limits this instance judges (in spend mode, those of its alert shards).
        public struct SpendStatus: Sendable, Equatable {
            public var series = SpendSeriesSnapshot()
            /// `SpendSeriesTable.version` of `series`: an unchanged table is not copied again.
            public var seriesVersion: UInt64 = 0
            public var budgets: [BudgetGauge] = []
            public var outcomeLimits: [OutcomeLimitGauge] = []
            public init() {}
        }

        /// Configuration loads and SIGHUP reloads.
        public struct ConfigReloadStatus: Sendable, Equatable {
            /// The last load or reload succeeded (false while the last SIGHUP reload was refused).
            public var succeeded = true
            /// Wall clock (epoch ms) of the last reload attempt (or of the start), 0 when none.
            public var wall: Int64 = 0
            /// SIGHUP reload attempts.
            public var count: Int64 = 0
            public init() {}
        }
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// Messages consumed so far, without copying the whole snapshot (for a caller that asks often).
    public var messagesConsumed: Int64 { state.withLock { $0.pipeline.metrics.messages } }

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
