import Logging

/// Allows at most `perMinute` log lines a minute, so bad input cannot flood the journal. The lines it holds
/// back are counted, and once their minute is over one line says how many ("80 more rejected messages
/// suppressed"), so a quiet log is never read as "nothing else happened".
final class RateLimitedLog {
    let perMinute: Int
    /// What each held-back line was about, in the plural ("rejected messages").
    let what: String
    private(set) var windowStart: Int64 = 0
    private(set) var count = 0
    private(set) var suppressed = 0

    init(perMinute: Int, what: String) {
        self.perMinute = perMinute
        self.what = what
    }

    /// Whether this line may be logged now (`now`: monotonic milliseconds). Reports the previous minute's
    /// held-back lines first.
    func allow(now: Int64, log: Logger) -> Bool {
        reportSuppressed(now: now, log: log)
        if now - windowStart >= 60_000 { windowStart = now; count = 0 }
        count += 1
        if count > perMinute { suppressed += 1; return false }
        return true
    }

    /// Logs how many lines were held back, once their minute is over; called by `allow` and by the consume
    /// loop's once-a-second tick (so the count comes even when the flood has stopped).
    func reportSuppressed(now: Int64, log: Logger) {
        guard suppressed > 0, now - windowStart >= 60_000 else { return }
        log.warning("\(suppressed) more \(what) suppressed", metadata: ["limit_per_minute": "\(perMinute)"])
        suppressed = 0
    }
}
