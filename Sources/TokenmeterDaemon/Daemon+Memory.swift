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
        let held = Array(restored.values) + Array(localCache.values)
        stateBytes = pipeline.estimatedStateBytes(held: held)
        guard let ceiling = config.state.maxMemory?.bytes else {
            if memoryPaused { resumeAfterMemory(reason: "state.max_memory removed") }
            return
        }
        if !memoryPaused && Int64(stateBytes) > ceiling {
            memoryPaused = true
            lastMemoryReminder = WallClock.monotonicMillis()
            log.error("state memory over state.max_memory; consuming paused while windows are closed by the clock",
                      metadata: ["state_bytes": "\(stateBytes)", "max_memory": "\(config.state.maxMemory!.label)",
                                 "open_rows": "\(pipeline.openRowCount)", "interned_names": "\(pipeline.internedNames)"])
            updateDiskPause()
        } else if memoryPaused && Int64(stateBytes) * 10 < ceiling * 9 {
            resumeAfterMemory(reason: "under 90% of state.max_memory")
        } else if memoryPaused && WallClock.monotonicMillis() - lastMemoryReminder >= 60_000 {
            lastMemoryReminder = WallClock.monotonicMillis()
            log.warning("state memory still over state.max_memory; consuming stays paused (dedup ids within dedup.window and rows of windows not yet ended cannot be released early)",
                        metadata: ["state_bytes": "\(stateBytes)", "max_memory": "\(config.state.maxMemory!.label)",
                                   "open_rows": "\(pipeline.openRowCount)"])
        }
    }

    private func resumeAfterMemory(reason: String) {
        memoryPaused = false
        log.notice("state memory back within bounds", metadata: ["state_bytes": "\(stateBytes)", "why": "\(reason)"])
        updateDiskPause()
    }

    /// While paused for memory: close what the wall clock allows (the partitions are quiet because we paused
    /// them, so a backlog is no reason to wait), write it, checkpoint at the interval (the checkpoint is
    /// where names are released), and look again.
    func relieveMemory() {
        pipeline.closeIdle(wallNow: WallClock.now()) { _, _, _ in false }
        flushFiles()
        if WallClock.monotonicMillis() - lastCheckpoint >= config.state.checkpointInterval.millis {
            checkpoint(reason: "memory")
        }
        checkMemory()
    }
}
