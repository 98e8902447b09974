import Logging
import Synchronization
import Testing
@testable import TokenmeterDaemon

/// The rate limit on repeated log lines: what it holds back is counted and reported once its minute is over.
@Suite("Rate-limited log")
struct RateLimitedLogTests {
    /// Keeps every line logged through it.
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        func logger() -> Logger {
            Logger(label: "test") { _ in Handler(sink: self) }
        }
        struct Handler: LogHandler {
            let sink: Lines
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                     file: String, function: String, line: UInt) {
                sink.lines.withLock { $0.append("\(level) \(message)") }
            }
        }
    }

    @Test func heldBackLinesAreCountedAndReportedOnceTheirMinuteIsOver() {
        let sink = Lines()
        let log = sink.logger()
        let limit = RateLimitedLog(perMinute: 3, what: "rejected messages")
        let start: Int64 = 1_000_000
        // Ten lines in the first second: three pass, seven are held back, nothing is said about them yet.
        let allowed = (0..<10).filter { limit.allow(now: start + Int64($0) * 100, log: log) }.count
        #expect(allowed == 3)
        limit.reportSuppressed(now: start + 59_999, log: log)
        #expect(sink.all.isEmpty)
        // The minute is over: the tick reports the count once.
        limit.reportSuppressed(now: start + 60_000, log: log)
        limit.reportSuppressed(now: start + 61_000, log: log)
        #expect(sink.all == ["warning 7 more rejected messages suppressed"])
        // A new minute allows three again; the next held-back lines are reported by the first line after them.
        let again = (0..<5).filter { limit.allow(now: start + 70_000 + Int64($0), log: log) }.count
        #expect(again == 3)
        #expect(limit.allow(now: start + 200_000, log: log))
        #expect(sink.all == ["warning 7 more rejected messages suppressed", "warning 2 more rejected messages suppressed"])
    }

    @Test func aMinuteWithinTheLimitReportsNothing() {
        let sink = Lines()
        let log = sink.logger()
        let limit = RateLimitedLog(perMinute: 20, what: "rejected messages")
        for i in 0..<20 { #expect(limit.allow(now: Int64(i) * 1_000, log: log)) }
        limit.reportSuppressed(now: 600_000, log: log)
        #expect(sink.all.isEmpty)
    }
}
