import Foundation
import Testing
import TokenmeterCore
import TrafficGenerator

/// Nothing lost, nothing counted twice: kill -9, rebalances between instances, a broker outage, an
/// unwritable rollup directory. Each scenario checks the rollup totals per (window, start, workflow,
/// owner, model) against the generator's independent totals, exactly.
@Suite(.serialized) struct RobustnessTests {
    static let windows: [Int64] = [60_000, 3_600_000, 86_400_000]

    struct Scenario {
        let dir: String
        let broker: Harness.Broker
        let expected: ExpectedTotals
        let events: Int
        let partitions: Int

        init(_ name: String, events: Int, partitions: Int, seed: UInt64, duplicates: Double = 0) throws {
            dir = try Harness.tempDir(name)
            self.events = events
            self.partitions = partitions
            broker = try Harness.Broker(partitions: partitions, topics: ["llm-usage", "llm-usage-dlq"], log: dir + "/broker.log")
            var c = TrafficConfig(seed: seed, start: RFC3339.parse("2026-11-21T08:00:00Z")!, events: events, spanMillis: 2 * 3_600_000)
            // Smaller shapes keep 200,000 events under the mock broker's ~5 MiB per partition.
            c.shapes = ShapeMix.only(canonical: 0.6, native: 0.3, otel: 0.1)
            c.badFraction = 0.01
            c.lateFraction = 0.01
            c.duplicateFraction = duplicates
            var gen = TrafficGenerator(c)
            var totals = ExpectedTotals(prices: Catalogue.referencePrices, windows: RobustnessTests.windows)
            try gen.write(count: events, toFile: dir + "/events.jsonl", into: &totals)
            expected = totals
            // Keyed by id, as a producer's retries would be: a duplicate lands on its original's partition.
            let status = try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", "--key-field", "id",
                                          dir + "/events.jsonl"], log: dir + "/produce.log")
            #expect(status == 0)
        }

        func config(instance: String = "e2e", idleClose: String = "2s") throws -> String {
            let path = dir + "/\(instance).toml"
            try Harness.configText(brokers: broker.bootstrap, group: "robust", topic: "llm-usage", dlq: "llm-usage-dlq",
                                   rollups: dir + "/rollups", state: dir + "/state-\(instance)", idleClose: idleClose,
                                   instance: instance)
                .write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func commits() throws -> Harness.CommitWatcher {
            try Harness.CommitWatcher(brokers: broker.bootstrap, group: "robust", topic: "llm-usage", partitions: partitions)
        }

        /// Waits until the rollup files hold exactly the expected totals.
        func awaitExactTotals(seconds: Double) throws -> RollupSums {
            var sums = try RollupSums(dir: dir + "/rollups")
            _ = try Harness.await(seconds: seconds) {
                sums = try RollupSums(dir: dir + "/rollups")
                return sums.rows == expected.byWindow
            }
            return sums
        }

        /// Records an issue unless the sums are exact; returns whether they were (keep the logs when not).
        @discardableResult
        func expectExact(_ sums: RollupSums, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
            let want = expected.byWindow
            let wrong = want.filter { sums.rows[$0.key] != $0.value }
            let extra = sums.rows.keys.filter { want[$0] == nil }
            #expect(wrong.isEmpty && extra.isEmpty,
                    "\(wrong.count) keys differ, \(extra.count) unexpected; first: \(wrong.first.map { "\($0.key): got \(String(describing: sums.rows[$0.key])), want \($0.value)" } ?? "-"); logs in \(dir)",
                    sourceLocation: sourceLocation)
            return wrong.isEmpty && extra.isEmpty
        }

        func cleanUp(if ok: Bool) {
            if ok { try? FileManager.default.removeItem(atPath: dir) }
        }
    }

    @Test(.timeLimit(.minutes(6)))
    func killNineAtRandomPointsLosesNothingAndCountsNothingTwice() throws {
        let s = try Scenario("kill9", events: 200_000, partitions: 16, seed: 21, duplicates: 0.01)
        defer { s.broker.stop() }
        let config = try s.config()
        let commits = try s.commits()
        var rng = SplitMix64(seed: 99)
        var run = 0
        var daemon = try Harness.start(["run", "--config", config], log: s.dir + "/run\(run).log")
        // Three kills at random points while it consumes; each restart resumes from its checkpoint.
        var fraction = 0.0
        for _ in 0..<3 {
            fraction += 0.1 + rng.uniform() * 0.2
            let target = Int64(Double(s.events) * fraction)
            #expect(try Harness.await(seconds: 120) { try commits.total() >= target }, "no progress; see \(s.dir)/run\(run).log")
            Harness.kill9(daemon)
            #expect(daemon.terminationReason == .uncaughtSignal)
            run += 1
            daemon = try Harness.start(["run", "--config", config], log: s.dir + "/run\(run).log")
        }
        let sums = try s.awaitExactTotals(seconds: 180)
        let exact = s.expectExact(sums)
        #expect(s.expected.duplicates > 0, "the input has duplicates, and they were counted once")
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        s.cleanUp(if: exact)
    }

    @Test(.timeLimit(.minutes(6)))
    func threeInstancesJoiningAndLeavingKeepTotalsExact() throws {
        // No duplicates here: dedup memory does not yet travel with a partition to another instance (the
        // scale-out work keeps it in a changelog), so a duplicate straddling a handover would count twice.
        let s = try Scenario("rebalance", events: 100_000, partitions: 8, seed: 22, duplicates: 0)
        defer { s.broker.stop() }
        let commits = try s.commits()
        func reach(_ f: Double) throws -> Bool {
            try Harness.await(seconds: 120) { try commits.total() >= Int64(Double(s.events) * f) }
        }
        var a = try Harness.start(["run", "--config", try s.config(instance: "a")], log: s.dir + "/a1.log")
        #expect(try reach(0.15))
        let b = try Harness.start(["run", "--config", try s.config(instance: "b")], log: s.dir + "/b.log")
        #expect(try reach(0.35))
        let c = try Harness.start(["run", "--config", try s.config(instance: "c")], log: s.dir + "/c.log")
        #expect(try reach(0.55))
        a.terminate()
        a.waitUntilExit()
        #expect(a.terminationStatus == 0)
        #expect(try reach(0.75))
        // `a` comes back: its checkpointed windows of partitions others have moved on with become partial rows.
        a = try Harness.start(["run", "--config", try s.config(instance: "a")], log: s.dir + "/a2.log")
        let sums = try s.awaitExactTotals(seconds: 180)
        let exact = s.expectExact(sums)
        let writers = Set(try FileManager.default.subpathsOfDirectory(atPath: s.dir + "/rollups")
            .compactMap { $0.split(separator: "/").last }.compactMap { name -> String? in
                let parts = name.split(separator: "-")
                return parts.count > 1 ? String(parts[1]) : nil
            })
        #expect(writers.isSuperset(of: ["a", "b", "c"]), "all three instances wrote rows: \(writers)")
        for p in [a, b, c] { p.terminate(); p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        s.cleanUp(if: exact)
    }

    @Test(.timeLimit(.minutes(5)))
    func brokerOutageLongerThanTheSessionPausesAndResumes() throws {
        let s = try Scenario("outage", events: 60_000, partitions: 8, seed: 23)
        defer { s.broker.stop() }
        let commits = try s.commits()
        let daemon = try Harness.start(["run", "--config", try s.config()], log: s.dir + "/run.log")
        #expect(try Harness.await(seconds: 120) { try commits.total() >= 15_000 })
        s.broker.send("down")
        // 30 s down: five times the 6 s session timeout, so the group forgets the daemon.
        Thread.sleep(forTimeInterval: 30)
        #expect(daemon.isRunning, "the daemon must ride out an outage")
        s.broker.send("up")
        let sums = try s.awaitExactTotals(seconds: 180)
        let exact = s.expectExact(sums)
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        let log = try String(contentsOfFile: s.dir + "/run.log", encoding: .utf8)
        #expect(log.split(separator: "\n").count < 400, "the outage must not flood the log")
        s.cleanUp(if: exact)
    }

    @Test(.timeLimit(.minutes(4)))
    func unwritableRollupDirectoryStopsCommitsUntilFixed() throws {
        let s = try Scenario("disk", events: 30_000, partitions: 4, seed: 24)
        defer { s.broker.stop() }
        // A file where the rollup folder should be: every rollup write fails until it is removed.
        try Data("in the way".utf8).write(to: URL(fileURLWithPath: s.dir + "/rollups"))
        let commits = try s.commits()
        let daemon = try Harness.start(["run", "--config", try s.config()], log: s.dir + "/run.log")
        #expect(try Harness.await(seconds: 60) {
            (try? String(contentsOfFile: s.dir + "/run.log", encoding: .utf8))?.contains("cannot write rollup file") ?? false
        })
        let stuck = try commits.total()
        #expect(stuck < Int64(s.events))
        Thread.sleep(forTimeInterval: 3)   // several checkpoint intervals: none may commit past the unwritten rows
        #expect(try commits.total() == stuck)
        try FileManager.default.removeItem(atPath: s.dir + "/rollups")
        let sums = try s.awaitExactTotals(seconds: 120)
        let exact = s.expectExact(sums)
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        s.cleanUp(if: exact)
    }
}
