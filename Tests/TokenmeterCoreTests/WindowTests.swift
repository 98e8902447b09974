import Testing
@testable import TokenmeterCore

/// Event-time windows driven by explicit times: the "manual clock" is the event and wall times we pass.
@Suite struct WindowTests {
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    let t0 = RFC3339.parse("2026-11-29T10:00:00Z")!
    let key = SeriesKey(workflow: 1, owner: 2, model: 3, provider: SeriesKey.none, tags: 0)

    func windows(grace: Int64 = 30_000, horizon: Int64 = 7 * 86_400_000) -> PartitionWindows {
        PartitionWindows(sizes: [Self.minute, Self.hour], grace: grace, lateHorizon: horizon)
    }

    func add(_ w: inout PartitionWindows, at t: EpochMillis, tokens: Int64 = 10) -> PartitionWindows.AddResult {
        w.add(key: key, time: t) { $0.addUsage(TokenCounts(input: tokens), cost: Money(nanos: 1), isError: false) }
    }

    @Test func windowStaysOpenUntilStreamTimePassesEndPlusGrace() {
        var w = windows()
        #expect(add(&w, at: t0 + 5_000) == .onTime)
        #expect(w.closeDue().isEmpty)
        // 10:01:29.999 is before end (10:01) + grace (30 s): still open.
        #expect(add(&w, at: t0 + Self.minute + 29_999) == .onTime)
        #expect(w.closeDue().isEmpty)
        #expect(add(&w, at: t0 + Self.minute + 30_000) == .onTime)
        let closed = w.closeDue()
        #expect(closed.count == 1)
        #expect(closed[0].sizeIndex == 0 && closed[0].start == t0 && closed[0].kind == .final)
        #expect(closed[0].rows[key]?.input == 10)
        #expect(closed[0].rows[key]?.requests == 1)
    }

    @Test func outOfOrderWithinGraceCountsInItsOwnWindow() {
        var w = windows()
        _ = add(&w, at: t0 + Self.minute + 10_000)
        _ = w.closeDue()
        // 20 s behind stream time, inside the 30 s grace: on time, in the 10:00 window.
        #expect(add(&w, at: t0 + 50_000, tokens: 7) == .onTime)
        _ = add(&w, at: t0 + 2 * Self.minute + 30_000)
        let closed = w.closeDue().filter { $0.sizeIndex == 0 }
        #expect(closed.map(\.start) == [t0, t0 + Self.minute])
        #expect(closed[0].rows[key]?.input == 7)
    }

    @Test func lateEventBecomesLateRowsFlushedAtNextClose() {
        var w = windows()
        _ = add(&w, at: t0 + 5_000)
        _ = add(&w, at: t0 + 2 * Self.minute)
        let first = w.closeDue()
        #expect(first.map(\.start) == [t0])
        // The 10:00 minute window has closed; the hour window has not.
        #expect(add(&w, at: t0 + 6_000, tokens: 3) == .late)
        #expect(w.late.count == 1)
        // The 10:02 window closes (the watermark reaches 10:03): the late rows leave with it.
        _ = add(&w, at: t0 + 3 * Self.minute + 30_000)
        let closed = w.closeDue()
        #expect(closed.filter { !$0.isLate }.map(\.start) == [t0 + 2 * Self.minute])
        let late = closed.filter(\.isLate)
        #expect(late.count == 1)
        #expect(late.first?.start == t0 && late.first?.sizeIndex == 0)
        #expect(late.first?.rows[key]?.input == 3)
        if case .late(let stamp)? = late.first?.kind { #expect(stamp == t0 + 3 * Self.minute) } else { Issue.record("not late") }
        // The hour window got the late event on time.
        _ = add(&w, at: t0 + Self.hour + Self.minute)
        let hours = w.closeDue().filter { $0.sizeIndex == 1 && !$0.isLate }
        #expect(hours.count == 1)
        let hourInput: Int64 = hours.first?.rows[key]?.input ?? -1
        #expect(hourInput == 10 + 10 + 3 + 10)
    }

    @Test func lateRowsWaitForTheNextCloseNotTheNextAdvance() {
        var w = windows()
        _ = add(&w, at: t0 + 5_000)
        _ = add(&w, at: t0 + 2 * Self.minute)
        #expect(w.closeDue().map(\.start) == [t0])
        #expect(add(&w, at: t0 + 6_000, tokens: 3) == .late)
        // The watermark moves (10:01:45) but no window ends before it: the late bucket stays.
        _ = add(&w, at: t0 + 2 * Self.minute + 15_000)
        #expect(w.closeDue().isEmpty)
        #expect(add(&w, at: t0 + 7_000, tokens: 4) == .late)
        #expect(w.late.count == 1)
        // The 10:02 window closes: both late events leave in one late file.
        _ = add(&w, at: t0 + 3 * Self.minute + 30_000)
        let late = w.closeDue().filter(\.isLate)
        #expect(late.count == 1)
        #expect(late.first?.rows[key]?.input == 7)
        #expect(w.late.isEmpty)
    }

    @Test func lateRowsLeaveAtOnceWhenNoWindowIsOpen() {
        var w = windows()
        _ = add(&w, at: t0 + 5_000)
        #expect(w.advanceIdle(wallNow: t0 + 2 * Self.hour).count == 2)
        #expect(add(&w, at: t0 + 6_000, tokens: 3) == .late)
        // Nothing is open to close later: the next advance carries the late rows.
        let closed = w.advanceIdle(wallNow: t0 + 2 * Self.hour + 1_000)
        #expect(closed.filter(\.isLate).count == 2)
        #expect(w.isEmpty)
    }

    @Test func eventsBeyondLateHorizonAreRefused() {
        var w = windows(horizon: Self.hour)
        _ = add(&w, at: t0 + 2 * Self.hour)
        #expect(w.isTooLate(t0 + Self.hour - 1))
        #expect(add(&w, at: t0 + Self.hour - 1) == .tooLate)
        #expect(!w.isTooLate(t0 + Self.hour))
    }

    @Test func idleCloseUsesWallClockAndMakesLaterEventsLate() {
        var w = windows()
        _ = add(&w, at: t0 + 5_000)
        #expect(w.closeDue().isEmpty)
        // Wall clock long past: both windows close although no later event came.
        let closed = w.advanceIdle(wallNow: t0 + 2 * Self.hour)
        #expect(Set(closed.map(\.sizeIndex)) == [0, 1])
        #expect(w.isEmpty)
        // An event for the closed windows is late now: never a second "final" file for the same window.
        #expect(add(&w, at: t0 + 6_000) == .late)
        #expect(w.open.allSatisfy { $0.isEmpty })
    }

    @Test func severalSizesCloseIndependently() {
        var w = windows(grace: 0)
        var closed: [ClosedWindow] = []
        // One event a minute for 61 minutes, closing as the pipeline does after every event.
        for m in 0...60 {
            _ = add(&w, at: t0 + Int64(m) * Self.minute, tokens: 1)
            closed += w.closeDue()
        }
        let minutes = closed.filter { $0.sizeIndex == 0 }
        #expect(minutes.count == 60)
        #expect(minutes.allSatisfy { $0.rows[key]?.input == 1 })
        let hours = closed.filter { $0.sizeIndex == 1 }
        #expect(hours.count == 1)
        #expect(hours.first?.rows[key]?.input == 60)
        // The 11:00 minute and hour windows are still open with the 61st event.
        #expect(w.open[0].map(\.start) == [t0 + Self.hour])
        #expect(w.open[1].map(\.start) == [t0 + Self.hour])
    }

    @Test func partialHandOverTakesEverythingOpen() {
        var w = windows()
        _ = add(&w, at: t0 + 5_000)
        _ = add(&w, at: t0 + 2 * Self.minute)
        _ = w.closeDue()
        _ = add(&w, at: t0 + 1_000)
        let parts = w.takeAllPartial(offset: 42)
        #expect(w.isEmpty)
        #expect(parts.contains { $0.kind == .partial(offset: 42) })
        #expect(parts.contains { $0.kind == .latePartial(offset: 42) })
        let total = parts.filter { $0.sizeIndex == 1 }.reduce(Int64(0)) { $0 + ($1.rows[key]?.input ?? 0) }
        #expect(total == 30)
    }

    @Test func keysBeyondTheCapGoToTheOverflowRowWithoutLosingSpend() {
        let overflow = SeriesKey(workflow: 99, owner: 99, model: 99, provider: SeriesKey.none, tags: 0)
        var w = PartitionWindows(sizes: [Self.hour], grace: 0, lateHorizon: 86_400_000, maxKeys: 3, overflowKey: overflow)
        for k in 0..<10 {
            let key = SeriesKey(workflow: UInt32(k), owner: 1, model: 1, provider: SeriesKey.none, tags: 0)
            _ = w.add(key: key, time: t0 + Int64(k)) { $0.addUsage(TokenCounts(input: 5), cost: Money(nanos: 7), isError: false) }
        }
        // An existing key keeps counting in its own row.
        let first = SeriesKey(workflow: 0, owner: 1, model: 1, provider: SeriesKey.none, tags: 0)
        _ = w.add(key: first, time: t0 + 20) { $0.addUsage(TokenCounts(input: 5), cost: Money(nanos: 7), isError: false) }
        let rows = w.open[0][0].rows
        #expect(rows.count == 4)
        #expect(rows[overflow]?.requests == 7)
        #expect(rows[first]?.requests == 2)
        #expect(rows.values.reduce(Int64(0)) { $0 + $1.input } == 55)
        #expect(rows.values.reduce(Money.zero) { $0 + $1.cost } == Money(nanos: 77))
        #expect(w.overflowed == 7)
    }
}
