import Logging
import TokenmeterCore

/// `state.max_memory`: a ceiling on the state the daemon holds, by the memory model of `Pipeline`
/// (open rows, dedup ids, interned names; docs/memory.md). Over it, consuming pauses (the same pause as a
/// failing disk, so nothing is fetched or committed past what is in memory) and windows are closed by the
/// wall clock as for a quiet input, whatever backlog waits: their rows go to files and leave memory; later
/// events of those windows become late rows, so the totals stay exact. Names no longer used are released
/// at the next checkpoint. Consuming resumes under 90% of the ceiling. What closing windows cannot free
/// (dedup ids within `dedup.window`, the current day's rows) keeps the pause, with a reminder a minute.
extension Daemon {
    /// Called ten times a second from the loop.
    func checkMemory() {
        loop.stateBytes = pipeline.estimatedStateBytes(held: ownership.held)
        let bytes = loop.stateBytes
        let label = config.state.maxMemory?.label ?? "none"
        switch flow.memory(stateBytes: bytes, ceiling: config.state.maxMemory?.bytes, now: clock.monotonicMillis()) {
        case .unchanged: return
        case .over:
            log.error("state memory over state.max_memory; consuming paused while windows are closed by the clock",
                      metadata: ["state_bytes": "\(bytes)", "max_memory": "\(label)",
                                 "open_rows": "\(pipeline.openRowCount)", "interned_names": "\(pipeline.internedNames)"])
        case .stillOver:
            log.warning("state memory still over state.max_memory; consuming stays paused (dedup ids within dedup.window and rows of windows not yet ended cannot be released early)",
                        metadata: ["state_bytes": "\(bytes)", "max_memory": "\(label)", "open_rows": "\(pipeline.openRowCount)"])
            return
        case .recovered(let reason):
            log.notice("state memory back within bounds", metadata: ["state_bytes": "\(bytes)", "why": "\(reason)"])
        }
        applyFlow()
    }

    /// While paused for memory: close what the wall clock allows (the partitions are quiet because we paused
    /// them, so a backlog is no reason to wait), write it, checkpoint at the interval (the checkpoint is
    /// where names are released), and look again.
    func relieveMemory() {
        pipeline.closeIdle(wallNow: clock.now()) { _, _, _ in false }
        flushFiles()
        if clock.monotonicMillis() - loop.lastCheckpoint >= config.state.checkpointInterval.millis {
            checkpoint(reason: "memory")
        }
        // The memory the last checkpoint was encoded in is kept for the next one: not while over the ceiling.
        pipeline.releaseCheckpointMemory()
        checkMemory()
    }
}
