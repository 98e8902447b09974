/// When consuming must pause, and when it may resume: while closed windows cannot reach the rollup folder,
/// while the state folder (checkpoint, alert outbox, spill file) cannot be written (no checkpoint, so no
/// commit), and while the state is over `state.max_memory`. In each case what exists only in memory must
/// stop growing; polling goes on (group membership, delivery reports), nothing new is fetched.
///
/// A value that decides; the loop acts on what it returns (pauses or resumes the consumer, logs). Times
/// are monotonic milliseconds from the daemon's clock.
struct FlowControl: Equatable {
    private(set) var rollupFailing = false
    private(set) var stateFailing = false
    private(set) var memoryOver = false
    private(set) var rollupFailures: Int64 = 0
    private(set) var stateFailures: Int64 = 0
    /// Whether the loop paused the assigned partitions (what the consumer was last told).
    private(set) var paused = false
    /// The consumer's rebalance count when it was paused: a rebalance meanwhile assigns partitions that
    /// are not paused yet.
    var pausedAtRebalance = 0
    /// While a folder keeps failing, and while memory stays over: one reminder a minute, not one per retry.
    private var lastDiskReminder: Int64 = 0
    private var lastMemoryReminder: Int64 = 0

    static let reminderIntervalMs: Int64 = 60_000

    enum Change: Equatable { case none, pause, resume }

    var diskFailing: Bool { rollupFailing || stateFailing }
    var wantsPause: Bool { rollupFailing || stateFailing || memoryOver }

    /// What the consumer must do now that the troubles may have changed.
    mutating func settle(now: Int64, rebalanceCount: Int) -> Change {
        guard wantsPause != paused else { return .none }
        paused = wantsPause
        if paused {
            lastDiskReminder = now
            pausedAtRebalance = rebalanceCount
            return .pause
        }
        return .resume
    }

    /// A rollup write failed; true for the first failure of a run of them (the one to log).
    mutating func rollupWriteFailed() -> Bool {
        rollupFailures += 1
        defer { rollupFailing = true }
        return !rollupFailing
    }

    /// A rollup write succeeded; true when the folder had been failing (the recovery to log).
    mutating func rollupWriteSucceeded() -> Bool {
        defer { rollupFailing = false }
        return rollupFailing
    }

    mutating func stateWriteFailed() -> Bool {
        stateFailures += 1
        defer { stateFailing = true }
        return !stateFailing
    }

    mutating func stateWriteSucceeded() -> Bool {
        defer { stateFailing = false }
        return stateFailing
    }

    /// True once a minute while a folder keeps failing.
    mutating func diskReminderDue(now: Int64) -> Bool {
        guard diskFailing, now - lastDiskReminder >= Self.reminderIntervalMs else { return false }
        lastDiskReminder = now
        return true
    }

    enum MemoryVerdict: Equatable {
        /// Nothing to do (within the ceiling, or still over it with the last reminder under a minute ago).
        case unchanged
        /// Just went over the ceiling: pause.
        case over
        /// Still over, a minute since the last line.
        case stillOver
        /// Back under 90% of the ceiling (or the ceiling removed): resume.
        case recovered(reason: String)
    }

    /// The state's memory against `state.max_memory` (nil: no ceiling). Resuming waits for 90% of the
    /// ceiling, so that one closed window does not flip the pause on and off.
    mutating func memory(stateBytes: Int, ceiling: Int64?, now: Int64) -> MemoryVerdict {
        guard let ceiling else {
            if memoryOver { memoryOver = false; return .recovered(reason: "state.max_memory removed") }
            return .unchanged
        }
        let bytes = Int64(stateBytes)
        if !memoryOver {
            guard bytes > ceiling else { return .unchanged }
            memoryOver = true
            lastMemoryReminder = now
            return .over
        }
        if bytes * 10 < ceiling * 9 {
            memoryOver = false
            return .recovered(reason: "under 90% of state.max_memory")
        }
        guard now - lastMemoryReminder >= Self.reminderIntervalMs else { return .unchanged }
        lastMemoryReminder = now
        return .stillOver
    }
}
