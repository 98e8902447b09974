import Testing
@testable import TokenmeterCore

/// A de-duplication set rebuilt from what was saved of it decides every later event exactly as the set
/// that kept running: saved in runs (`unsaved`, then `markSaved`, as checkpoints do), with the runs that
/// have wholly left the set dropped (as expired segments and chunks are), and put back in arrival order.
@Suite struct DedupPersistenceTests {
    /// Events with fresh ids and times that mostly advance but sometimes go back by more than the window
    /// (late events, which outlive their window in the set behind later arrivals), and one in five an exact
    /// repeat (same id, same time: a retry) of one of the last 300 events.
    struct Traffic {
        var state: UInt64
        var now: EpochMillis = 1_000_000
        var nextId: UInt64 = 1
        var recent: [(UInt64, EpochMillis)] = []
        mutating func random() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func next() -> (UInt64, EpochMillis) {
            let r = random()
            if r % 5 == 0, !recent.isEmpty { return recent[Int(random() % UInt64(recent.count))] }
            now += Int64(r % 50)
            let late = r % 7 == 0 ? Int64(random() % 3_000) : 0
            let e = (nextId &* 0x9E37_79B9_7F4A_7C15, now - late)
            nextId += 1
            recent.append(e)
            if recent.count > 300 { recent.removeFirst() }
            return e
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func aRestoredSetDecidesExactlyAsTheOriginal(seed: UInt64) {
        let window: Int64 = 1_000
        var live = DedupSet(window: window)
        var traffic = Traffic(state: seed)
        var streamTime: EpochMillis = .min
        var runs: [(from: Int, ids: [(UInt64, EpochMillis)])] = []
        func feed(_ set: inout DedupSet, _ e: (UInt64, EpochMillis), _ st: inout EpochMillis) -> Bool {
            let fresh = set.insert(e.0, time: e.1, streamTime: st)
            st = max(st, e.1)
            return fresh
        }
        // 20,000 events, saved every 97, runs that left the set dropped as they would be from disk.
        for i in 1...20_000 {
            _ = feed(&live, traffic.next(), &streamTime)
            if i % 97 == 0 {
                runs.append((live.unsavedFrom, Array(live.unsaved)))
                live.markSaved()
                runs.removeAll { $0.from + $0.ids.count <= live.expiredThrough }
            }
        }
        runs.append((live.unsavedFrom, Array(live.unsaved)))
        live.markSaved()
        var restored = DedupSet(window: window)
        for run in runs { restored.restore(run.ids, from: run.from) }
        #expect(restored.recordedThrough == live.recordedThrough)

        // The next 5,000 events: the same decision, one by one.
        var restoredStream = streamTime
        var differ = 0, repeats = 0
        for _ in 0..<5_000 {
            let e = traffic.next()
            let a = feed(&live, e, &streamTime)
            let b = feed(&restored, e, &restoredStream)
            if a != b { differ += 1 }
            if !a { repeats += 1 }
        }
        #expect(repeats > 100, "the traffic repeats ids")
        #expect(differ == 0, "\(differ) of 5,000 decisions differ after the restore")
    }
}
