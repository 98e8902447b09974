import Foundation
import Testing
import TokenmeterCore

/// A stream of workflow names each seen once (a hostile or buggy producer), with real processes: the
/// daemon rebuilds its name table at a checkpoint once it has doubled, so the names in memory follow the
/// open rows, not everything ever seen; the totals stay exact.
@Suite(.serialized) struct MemoryBoundTests {
    /// `n` usage events 100 ms apart from 2026-11-21T08:00Z, each from a new workflow `<prefix>-<i>`, with
    /// `input(i)` input tokens and 5 output tokens, produced keyed by id.
    static func produceNewWorkflows(_ n: Int, prefix: String, dir: String, broker: Harness.Broker,
                                    input: (Int) -> Int) throws {
        let start = RFC3339.parse("2026-11-21T08:00:00Z")!
        var text = ""
        text.reserveCapacity(n * 160)
        for i in 0..<n {
            text += #"{"id":"\#(prefix)\#(i)","timestamp":\#(start + Int64(i) * 100),"workflow":"\#(prefix)-\#(i)","owner":"o","model":"gpt-4o","input_tokens":\#(input(i)),"output_tokens":5}"#
            text += "\n"
        }
        try text.write(toFile: dir + "/events.jsonl", atomically: true, encoding: .utf8)
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", "--key-field", "id",
                                 dir + "/events.jsonl"], log: dir + "/produce.log") == 0)
    }

    @Test(.timeLimit(.minutes(4)))
    func namesSeenOnceAreReleasedAndTotalsStayExact() throws {
        let dir = try Harness.tempDir("names")
        let broker = try Harness.Broker(partitions: 4, topics: ["llm-usage", "llm-usage-dlq"], log: dir + "/broker.log")
        defer { broker.stop() }

        // 64,000 events 100 ms apart (about 107 minutes of event time), each from a new workflow: past the
        // 50,000 names at which a rebuild is first considered, while only the last minutes' rows are open.
        let n = 64_000
        try Self.produceNewWorkflows(n, prefix: "once", dir: dir, broker: broker) { 100 + $0 % 7 }

        let config = dir + "/names.toml"
        try Harness.configText(brokers: broker.bootstrap, group: "names", topic: "llm-usage", dlq: "llm-usage-dlq",
                               rollups: dir + "/rollups", state: dir + "/state", idleClose: "2s", windows: ["1m"])
            .write(toFile: config, atomically: true, encoding: .utf8)
        let log = dir + "/daemon.log"
        let daemon = try Harness.start(["run", "--config", config], log: log)
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }
        #expect(Harness.await(seconds: 20) { SystemdTests.httpAddress(log: log) != nil }, "no http address in \(log)")
        let address = SystemdTests.httpAddress(log: log) ?? "127.0.0.1:1"

        var sums = try RollupSums(dir: dir + "/rollups")
        let done = try Harness.await(seconds: 120) {
            sums = try RollupSums(dir: dir + "/rollups")
            return sums.total(window: 60_000).requests >= Int64(n)
        }
        #expect(done, "not every event reached a rollup file; see \(dir)")
        let total = sums.total(window: 60_000)
        #expect(total.requests == Int64(n))
        var input: Int64 = 0
        for i in 0..<n { input += Int64(100 + i % 7) }
        #expect(total.inputTokens == input)
        #expect(total.outputTokens == Int64(n) * 5)

        var metrics: [String: Double] = [:]
        let rebuilt = Harness.await(seconds: 30) {
            metrics = RobustnessTests.metrics(address)
            return (metrics["tokenmeter_name_table_rebuilds_total"] ?? 0) >= 1
        }
        #expect(rebuilt, "no rebuild of the name table; see \(log)")
        #expect((metrics["tokenmeter_interned_names"] ?? .infinity) < 40_000, "names kept: \(metrics["tokenmeter_interned_names"] ?? -1)")
        #expect((metrics["tokenmeter_interned_bytes"] ?? 0) > 0)
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        if done && rebuilt { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// `state.max_memory` with real processes: 30,000 events of new workflows in one hour, more rows than the
    /// ceiling holds. Consuming pauses, the hour is closed by the clock (its rows go to a file), consuming
    /// resumes, the rest of the hour comes as late rows; the totals are exact and nothing is dead-lettered.
    @Test(.timeLimit(.minutes(4)))
    func aMemoryCeilingPausesConsumingAndTheTotalsStayExact() throws {
        let dir = try Harness.tempDir("ceiling")
        let broker = try Harness.Broker(partitions: 2, topics: ["llm-usage", "llm-usage-dlq"], log: dir + "/broker.log")
        defer { broker.stop() }
        let n = 30_000
        try Self.produceNewWorkflows(n, prefix: "flood", dir: dir, broker: broker) { _ in 50 }
        let config = dir + "/ceiling.toml"
        try Harness.configText(brokers: broker.bootstrap, group: "ceiling", topic: "llm-usage", dlq: "llm-usage-dlq",
                               rollups: dir + "/rollups", state: dir + "/state", idleClose: "2s", windows: ["1h"])
            .replacingOccurrences(of: "checkpoint_interval = \"500ms\"", with: "checkpoint_interval = \"500ms\"\nmax_memory = \"4MiB\"")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let log = dir + "/daemon.log"
        let daemon = try Harness.start(["run", "--config", config], log: log)
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }

        var sums = try RollupSums(dir: dir + "/rollups")
        let done = try Harness.await(seconds: 150) {
            sums = try RollupSums(dir: dir + "/rollups")
            return sums.total(window: 3_600_000).requests >= Int64(n)
        }
        #expect(done, "not every event reached a rollup file; see \(dir)")
        #expect(sums.total(window: 3_600_000).requests == Int64(n))
        #expect(sums.total(window: 3_600_000).inputTokens == Int64(n) * 50)
        #expect(sums.lateRows > 0, "the rest of the hour after the pause comes as late rows")
        let logText = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(logText.contains("state memory over state.max_memory; consuming paused"))
        #expect(logText.contains("state memory back within bounds"))
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        if done { try? FileManager.default.removeItem(atPath: dir) }
    }
}
