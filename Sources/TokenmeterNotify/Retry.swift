import TokenmeterCore
#if canImport(Glibc)
import Glibc
#endif

/// Time for the delivery workers: the wall clock in production, a manual clock in tests (its `sleep`
/// moves time forward at once and records the wait, so a test sees the backoff without waiting it).
public protocol NotifyClock: Sendable {
    func nowMillis() -> EpochMillis
    func sleep(millis: Int64)
}

public struct SystemNotifyClock: NotifyClock {
    public init() {}
    public func nowMillis() -> EpochMillis {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
    public func sleep(millis: Int64) {
        guard millis > 0 else { return }
        var ts = timespec(tv_sec: Int(millis / 1000), tv_nsec: Int(millis % 1000) * 1_000_000)
        var left = timespec()
        while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
    }
}

/// When to try again, and when to stop.
///
/// - Retried: no answer (connection refused, DNS, TLS, timeout), HTTP 408, 425, 429 and every 5xx.
/// - Given up at once: every other 4xx (the request itself is wrong: a bad URL, a revoked token, a payload
///   the sink refuses), since sending it again cannot help; it goes to the dead letters with the answer.
/// - Backoff: attempt n (from 1) waits a random time between half and all of
///   min(maxBackoff, initialBackoff x 2^(n-1)) ("equal jitter": never a thundering herd, never zero).
/// - `Retry-After` (seconds or an HTTP date) on a 429 or 503 replaces the backoff when it asks for longer,
///   capped at `maxRetryAfter` so a sink cannot park a worker for a day.
/// - Stop after `maxAttempts`, or when the next wait would end later than `giveUpAfter` from the first try.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int = 8
    public var initialBackoffMillis: Int64 = 1_000
    public var maxBackoffMillis: Int64 = 60_000
    public var maxRetryAfterMillis: Int64 = 600_000
    public var giveUpAfterMillis: Int64 = 3_600_000

    public init() {}

    public enum Verdict: Sendable, Equatable {
        case delivered
        case retry(reason: String, retryAfterMillis: Int64?)
        case reject(reason: String)
    }

    public static func judge(_ result: Result<HTTPResponse, TransportError>, now: EpochMillis) -> Verdict {
        switch result {
        case .failure(let e):
            return .retry(reason: e.timedOut ? "timed out: \(e.reason)" : e.reason, retryAfterMillis: nil)
        case .success(let r):
            switch r.status {
            case 200..<300: return .delivered
            case 408, 425, 429, 500..<600:
                let after = r.retryAfter.flatMap { parseRetryAfter($0, now: now) }
                return .retry(reason: "HTTP \(r.status)", retryAfterMillis: after)
            default:
                return .reject(reason: "HTTP \(r.status)" + (r.bodyPrefix.isEmpty ? "" : ": " + String(r.bodyPrefix.prefix(200))))
            }
        }
    }

    /// The wait before attempt `attempt + 1`, `random` in 0..<1.
    public func backoff(afterAttempt attempt: Int, random: Double) -> Int64 {
        let shift = min(max(attempt - 1, 0), 30)
        let full = min(maxBackoffMillis, initialBackoffMillis.multipliedReportingOverflow(by: 1 << shift).overflow
                       ? maxBackoffMillis : initialBackoffMillis << shift)
        let half = full / 2
        return half + Int64(Double(full - half) * min(max(random, 0), 1))
    }

    /// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`, as milliseconds from `now`.
    public static func parseRetryAfter(_ text: String, now: EpochMillis) -> Int64? {
        let t = text.trimmingSpace()
        if let s = Int64(t), s >= 0, s < 10_000_000 { return s * 1000 }
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
        let parts = t.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT" else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let day = Int(parts[1]), let mi = months.firstIndex(of: String(parts[2])), let year = Int(parts[3]) else { return nil }
        let iso = String(format4(year)) + "-" + two(mi + 1) + "-" + two(day) + "T" + parts[4] + "Z"
        guard let at = RFC3339.parse(iso) else { return nil }
        return max(0, at - now)
    }

    private static func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    private static func format4(_ v: Int) -> String { String(repeating: "0", count: max(0, 4 - String(v).count)) + String(v) }
}
