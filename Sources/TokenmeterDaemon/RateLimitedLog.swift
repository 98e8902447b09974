/// Allows at most `perMinute` log lines a minute, so bad input cannot flood the journal.
final class RateLimitedLog {
    let perMinute: Int
    var windowStart: Int64 = 0
    var count = 0
    var suppressed = 0
    init(perMinute: Int) { self.perMinute = perMinute }
    func allow(now: Int64) -> Bool {
        if now - windowStart >= 60_000 { windowStart = now; count = 0; suppressed = 0 }
        count += 1
        if count > perMinute { suppressed += 1; return false }
        return true
    }
}
