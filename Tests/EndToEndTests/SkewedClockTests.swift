import Foundation
import Testing
import TokenmeterCore

/// A producer whose clock is a day ahead, with real processes: its event is dead-lettered as
/// `bad_timestamp` (more than `rollups.max_future` ahead of the daemon's clock) and the partition's
/// other events keep closing their windows on time. Before the guard was tightened, one event 23 hours
/// ahead moved the stream time forward and held back (as late rows) every later rollup of its partition
/// until the wall clock reached it.
@Suite(.serialized) struct SkewedClockTests {
    @Test(.timeLimit(.minutes(3)))
    func anEventADayAheadIsDeadLetteredAndHoldsNothingBack() throws {
        let dir = try Harness.tempDir("skew")
        let broker = try Harness.Broker(partitions: 1, topics: ["llm-usage", "llm-usage-dlq"], log: dir + "/broker.log")
        defer { broker.stop() }

        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let start = (now - 3 * 3_600_000) / 60_000 * 60_000
        func event(_ id: String, _ time: EpochMillis) -> String {
            #"{"id":"\#(id)","timestamp":"\#(RFC3339.format(time))","workflow":"w","owner":"o","model":"gpt-4o","input_tokens":100,"output_tokens":10}"#
        }
        let lines = [
            event("e1", start + 10_000),
            event("skewed", now + 23 * 3_600_000),
            event("e2", start + 70_000),
            event("e3", start + 130_000),
            event("e4", now - 30_000),   // moves the stream time to now: the three minutes above close
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/events.jsonl", atomically: true, encoding: .utf8)
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", dir + "/events.jsonl"],
                                log: dir + "/produce.log") == 0)

        let config = dir + "/skew.toml"
        // Windows close only on event time here: the idle close is far away.
        try Harness.configText(brokers: broker.bootstrap, group: "skew", topic: "llm-usage", dlq: "llm-usage-dlq",
                               rollups: dir + "/rollups", state: dir + "/state", idleClose: "10m", windows: ["1m"])
            .write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try Harness.start(["run", "--config", config], log: dir + "/daemon.log")
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }

        // The three closed minutes appear as ordinary (not late) rows.
        var sums = try RollupSums(dir: dir + "/rollups")
        let closed = try Harness.await(seconds: 60) {
            sums = try RollupSums(dir: dir + "/rollups")
            return sums.total(window: 60_000).requests >= 3
        }
        #expect(closed, "the minutes before the skewed event's were not written; see \(dir)")
        #expect(sums.total(window: 60_000).requests == 3)
        #expect(sums.lateRows == 0, "events after the skewed one were counted as late")

        let dead = try Harness.readAll(brokers: broker.bootstrap, topic: "llm-usage-dlq", expected: 1, seconds: 30)
        #expect(dead.count == 1)
        if let d = dead.first {
            #expect(String(decoding: d.value, as: UTF8.self) == lines[1])
            let reason = d.headers.first { $0.0 == "tokenmeter-error" }.map { String(decoding: $0.1, as: UTF8.self) } ?? ""
            #expect(reason.hasPrefix("bad_timestamp:") && reason.contains("rollups.max_future"), "reason: \(reason)")
        }
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        if !closed { return }
        try? FileManager.default.removeItem(atPath: dir)
    }
}
