import Foundation
import Testing
import TokenmeterCore
import TrafficGenerator

/// The whole system as processes: `tokenmeter broker`, `tokenmeter produce`, `tokenmeter run`, SIGTERM,
/// restart, and `tokenmeter replay`, against totals the traffic generator computed independently.
@Suite(.serialized) struct PipelineEndToEndTests {
    static let windows: [Int64] = [60_000, 3_600_000, 86_400_000]

    func traffic(seed: UInt64, events: Int) -> TrafficGenerator {
        var c = TrafficConfig(seed: seed, start: RFC3339.parse("2026-11-20T22:30:00Z")!, events: events, spanMillis: 3 * 3_600_000)
        c.badFraction = 0.02
        c.lateFraction = 0.01
        c.duplicateFraction = 0
        return TrafficGenerator(c)
    }

    func expectEqual(_ sums: RollupSums, _ expected: ExpectedTotals, sourceLocation: SourceLocation = #_sourceLocation) {
        let want = expected.byWindow
        #expect(sums.rows.count == want.count, "row keys: got \(sums.rows.count), expected \(want.count)", sourceLocation: sourceLocation)
        var mismatches: [String] = []
        for (k, v) in want where sums.rows[k] != v {
            mismatches.append("\(k): got \(String(describing: sums.rows[k])), expected \(v)")
        }
        for k in sums.rows.keys where want[k] == nil { mismatches.append("\(k): unexpected row") }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatching keys, first: \(mismatches.prefix(3))", sourceLocation: sourceLocation)
    }

    @Test(.timeLimit(.minutes(5)))
    func fiftyThousandEventsThroughRestartExactly() throws {
        let t0 = Date()
        func stage(_ s: String) { print("e2e: \(s) at \(String(format: "%.1f", Date().timeIntervalSince(t0))) s") }
        let dir = try Harness.tempDir("e2e")
        let broker = try Harness.Broker(partitions: 8, topics: ["llm-usage", "llm-usage-dlq"], log: dir + "/broker.log")
        defer { broker.stop() }
        let rollups = dir + "/rollups", state = dir + "/state", configPath = dir + "/tokenmeter.toml"

        // 50,000 events in every shape, 2% bad, 1% late: 40,000 before the restart and 10,000 after.
        var gen = traffic(seed: 7, events: 50_000)
        var expected = ExpectedTotals(prices: Catalogue.referencePrices, windows: Self.windows)
        try gen.write(count: 40_000, toFile: dir + "/phase1.jsonl", into: &expected)
        let phase1 = expected
        try gen.write(count: 10_000, toFile: dir + "/phase2.jsonl", into: &expected)

        stage("// Phase 1: windows")
        // Phase 1: windows idle-close only after an hour, so day windows are still open at SIGTERM.
        try Harness.configText(brokers: broker.bootstrap, group: "e2e", topic: "llm-usage", dlq: "llm-usage-dlq",
                               rollups: rollups, state: state, idleClose: "1h").write(toFile: configPath, atomically: true, encoding: .utf8)
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", dir + "/phase1.jsonl"], log: dir + "/produce1.log") == 0)
        let started = Date()
        var daemon = try Harness.start(["run", "--config", configPath], log: dir + "/run1.log")
        let commits = try Harness.CommitWatcher(brokers: broker.bootstrap, group: "e2e", topic: "llm-usage", partitions: 8)
        let consumed = try Harness.await(seconds: 120) { try commits.total() == 40_000 }
        let elapsed = Date().timeIntervalSince(started)
        #expect(consumed, "the daemon did not commit all 40,000 offsets; see \(dir)/run1.log")
        print("e2e: 40,000 events consumed and committed in \(String(format: "%.1f", elapsed)) s (\(Int(40_000 / elapsed)) events/s, debug build, includes the ~3 s group join)")
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationReason == .exit && daemon.terminationStatus == 0, "SIGTERM must stop cleanly; see \(dir)/run1.log")
        #expect(FileManager.default.fileExists(atPath: state + "/checkpoint.bin"))
        // Day windows were open at SIGTERM: their rows are in the checkpoint, not yet in files.
        let afterStop = try RollupSums(dir: rollups)
        #expect(afterStop.total(window: 86_400_000).requests < phase1.grandTotal.requests)

        stage("// Phase 2: restart")
        // Phase 2: restart (restoring the checkpoint), more events, and a short idle close so everything closes.
        try Harness.configText(brokers: broker.bootstrap, group: "e2e", topic: "llm-usage", dlq: "llm-usage-dlq",
                               rollups: rollups, state: state, idleClose: "2s").write(toFile: configPath, atomically: true, encoding: .utf8)
        daemon = try Harness.start(["run", "--config", configPath], log: dir + "/run2.log")
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", dir + "/phase2.jsonl"], log: dir + "/produce2.log") == 0)
        #expect(try Harness.await(seconds: 120) { try commits.total() == 50_000 }, "see \(dir)/run2.log")
        stage("all 50,000 committed")
        var sums = try RollupSums(dir: rollups)
        let complete = try Harness.await(seconds: 60) {
            sums = try RollupSums(dir: rollups)
            return sums.rows == expected.byWindow
        }
        stage("#expect(complete,")
        #expect(complete, "rollups incomplete; see \(dir)/run2.log")
        expectEqual(sums, expected)
        #expect(sums.lateRows > 0, "the traffic has late events: some rows must be late")
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        // Nothing counted twice after the stop either: the files did not change.
        #expect(try RollupSums(dir: rollups).rows == expected.byWindow)

        stage("// Dead letters:")
        // Dead letters: exactly the bad inputs, each with its reason and source.
        let badCount = expected.deadLetters.values.reduce(0, +)
        let dead = try Harness.readAll(brokers: broker.bootstrap, topic: "llm-usage-dlq", expected: badCount, seconds: 30)
        #expect(dead.count == badCount)
        for d in dead {
            let names = Set(d.headers.map(\.0))
            #expect(names.isSuperset(of: ["tokenmeter-error", "tokenmeter-topic", "tokenmeter-partition", "tokenmeter-offset"]))
        }

        stage("// Replay of the same")
        // Replay of the same events gives the same totals.
        let replayRollups = dir + "/replay-rollups"
        try Harness.configText(brokers: broker.bootstrap, group: "e2e", topic: "llm-usage", dlq: "llm-usage-dlq",
                               rollups: replayRollups, state: dir + "/replay-state", idleClose: "2s")
            .write(toFile: dir + "/replay.toml", atomically: true, encoding: .utf8)
        let all = try String(contentsOfFile: dir + "/phase1.jsonl", encoding: .utf8) + String(contentsOfFile: dir + "/phase2.jsonl", encoding: .utf8)
        try all.write(toFile: dir + "/all.jsonl", atomically: true, encoding: .utf8)
        #expect(try Harness.run(["replay", "--config", dir + "/replay.toml", dir + "/all.jsonl"], log: dir + "/replay.log") == 0)
        stage("expectEqual(try RollupSums(dir")
        expectEqual(try RollupSums(dir: replayRollups), expected)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// On one partition `run` and `replay` see the events in the same order: the files must be the same bytes.
    @Test(.timeLimit(.minutes(3)))
    func replayWritesTheSameFilesAsRun() throws {
        let dir = try Harness.tempDir("replay")
        let broker = try Harness.Broker(partitions: 1, topics: ["single", "single-dlq"], log: dir + "/broker.log")
        defer { broker.stop() }
        var gen = traffic(seed: 11, events: 5_000)
        var expected = ExpectedTotals(prices: Catalogue.referencePrices, windows: Self.windows)
        try gen.write(count: 5_000, toFile: dir + "/events.jsonl", into: &expected)
        try Harness.configText(brokers: broker.bootstrap, group: "single", topic: "single", dlq: "single-dlq",
                               rollups: dir + "/run", state: dir + "/state", idleClose: "2s")
            .write(toFile: dir + "/run.toml", atomically: true, encoding: .utf8)
        try Harness.configText(brokers: broker.bootstrap, group: "single", topic: "single", dlq: "single-dlq",
                               rollups: dir + "/replay", state: dir + "/replay-state", idleClose: "2s")
            .write(toFile: dir + "/replay.toml", atomically: true, encoding: .utf8)
        #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "single", dir + "/events.jsonl"], log: dir + "/produce.log") == 0)
        let daemon = try Harness.start(["run", "--config", dir + "/run.toml"], log: dir + "/run.log")
        let done = try Harness.await(seconds: 90) { try RollupSums(dir: dir + "/run").rows == expected.byWindow }
        #expect(done, "see \(dir)/run.log")
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(try Harness.run(["replay", "--config", dir + "/replay.toml", "--writer", "e2e", dir + "/events.jsonl"], log: dir + "/replay.log") == 0)

        // Same writer name ("e2e-p0") on both sides; window files must match byte for byte. Late files are
        // named after the watermark that flushed them (the wall clock for run's idle close, the end of the
        // file for replay), so they are compared by content.
        func files(_ root: String) throws -> [String: Data] {
            var out: [String: Data] = [:]
            for case let rel as String in FileManager.default.enumerator(atPath: root)! where rel.hasSuffix(".jsonl") {
                out[rel] = try Data(contentsOf: URL(fileURLWithPath: root + "/" + rel))
            }
            return out
        }
        let run = try files(dir + "/run"), replay = try files(dir + "/replay")
        let runFinal = run.filter { !$0.key.contains("-late-") }, replayFinal = replay.filter { !$0.key.contains("-late-") }
        #expect(!runFinal.isEmpty)
        #expect(runFinal == replayFinal)
        #expect(Set(run.filter { $0.key.contains("-late-") }.values) == Set(replay.filter { $0.key.contains("-late-") }.values))
        try? FileManager.default.removeItem(atPath: dir)
    }
}
