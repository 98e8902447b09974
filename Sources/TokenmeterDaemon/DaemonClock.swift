#if canImport(Glibc)
import Glibc
#endif
import TokenmeterCore

/// Everything the daemon times (idle close, hand-over deadline, checkpoint interval, disk and memory
/// reminders, retries, the watchdog, readiness grace) asks this clock, never the system directly: tests
/// drive a manual clock and see a 30-second hand-over timeout pass in no time.
///
/// `now` is the wall clock in epoch milliseconds (event-time decisions: idle close, lateness, budget
/// periods); the monotonic readings measure intervals and are immune to the wall clock being set.
public protocol DaemonClock: AnyObject, Sendable {
    func now() -> EpochMillis
    func monotonicMillis() -> Int64
    func monotonicNanos() -> Int64
}

/// The system's clocks (CLOCK_REALTIME, CLOCK_MONOTONIC).
public final class SystemClock: DaemonClock {
    public init() {}
    public func now() -> EpochMillis { WallClock.now() }
    public func monotonicMillis() -> Int64 { WallClock.monotonicMillis() }
    public func monotonicNanos() -> Int64 { WallClock.monotonicNanos() }
}
