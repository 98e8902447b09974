import Logging
import TokenmeterCore

/// Interned names are released by rebuilding the name tables from what is still in use (see
/// `Pipeline.compactNames`): the pipeline's (open rows, late buckets, alert state, the partition states
/// this process holds for partitions not yet assigned) and, in spend mode, the alert shards'. Run as a
/// step of the checkpoint, after the closed windows are in files and the spend sums have gone out with the
/// changelog records, when nothing else holds a name id.
extension Daemon {
    func compactNamesIfDue() {
        // Over the memory ceiling, any name no longer used is worth releasing now.
        if pipeline.namesDueForCompaction || (flow.memoryOver && pipeline.internedNames > 0) {
            let restoredKeys = Array(ownership.restored.keys), cacheKeys = Array(ownership.localCache.keys)
            var held = restoredKeys.map { ownership.restored[$0]! } + cacheKeys.map { ownership.localCache[$0]! }
            let t0 = clock.monotonicNanos()
            if let (before, after) = pipeline.compactNames(held: &held) {
                for (i, k) in restoredKeys.enumerated() { ownership.restored[k] = held[i] }
                for (i, k) in cacheKeys.enumerated() { ownership.localCache[k] = held[restoredKeys.count + i] }
                log.info("name table rebuilt from the names in use",
                         metadata: ["names_before": "\(before)", "names_after": "\(after)",
                                    "seconds": "\(Double(clock.monotonicNanos() - t0) / 1e9)"])
            }
        }
        let shards = alerting.shards
        if !shards.byIndex.isEmpty && shards.names.count >= max(2 * shards.namesAfterCompaction, Pipeline.minimumToCompact) {
            let before = shards.names.count
            var fresh = StringTable()
            for shard in shards.byIndex.values.sorted(by: { $0.index < $1.index }) {
                shard.engine.forgetIdleState()
                do {
                    try shard.decodeState(shard.encodeState(names: shards.names), names: &fresh)
                } catch {
                    preconditionFailure("an alert shard could not read its own state: \(error)")
                }
            }
            alerting.shards.names = fresh
            alerting.shards.namesAfterCompaction = fresh.count
            log.info("alert shards' name table rebuilt from the names in use",
                     metadata: ["names_before": "\(before)", "names_after": "\(fresh.count)"])
        }
    }
}
