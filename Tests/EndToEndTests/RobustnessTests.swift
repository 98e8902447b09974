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

        /// `lateMaxMillis`: how far behind the stream late events may be (the generator's default is 72 h).
        /// `produce: false` leaves `events.jsonl` for the test to produce (see `produce(_:)`).
        init(_ name: String, events: Int, partitions: Int, seed: UInt64, duplicates: Double = 0, lateMaxMillis: Int64? = nil,
             extraTopics: [String] = [], produce: Bool = true) throws {
            dir = try Harness.tempDir(name)
            self.events = events
            self.partitions = partitions
            broker = try Harness.Broker(partitions: partitions, topics: ["llm-usage", "llm-usage-dlq"] + extraTopics, log: dir + "/broker.log")
            var c = TrafficConfig(seed: seed, start: RFC3339.parse("2026-11-21T08:00:00Z")!, events: events, spanMillis: 2 * 3_600_000)
            // Smaller shapes keep 200,000 events under the mock broker's ~5 MiB per partition.
            c.shapes = ShapeMix.only(canonical: 0.6, native: 0.3, otel: 0.1)
            c.badFraction = 0.01
            c.lateFraction = 0.01
            c.duplicateFraction = duplicates
            if let lateMaxMillis { c.lateMaxMillis = lateMaxMillis }
            var gen = TrafficGenerator(c)
            var totals = ExpectedTotals(prices: Catalogue.referencePrices, windows: RobustnessTests.windows)
            try gen.write(count: events, toFile: dir + "/events.jsonl", into: &totals)
            expected = totals
            if produce { try self.produce(dir + "/events.jsonl") }
        }

        func produce(_ file: String) throws {
            // Keyed by id, as a producer's retries would be: a duplicate lands on its original's partition.
            let status = try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", "llm-usage", "--key-field", "id", file],
                                         log: file + ".produce.log")
            #expect(status == 0)
        }

        /// Splits `events.jsonl` in two files at `line`; returns their paths and line counts.
        func split(at line: Int) throws -> [(path: String, lines: Int)] {
            let lines = try String(contentsOfFile: dir + "/events.jsonl", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            let all = lines.last == "" ? lines.dropLast() : lines[...]
            let parts = [all.prefix(line), all.dropFirst(line)]
            return try parts.enumerated().map { i, part in
                let path = dir + "/events-\(i + 1).jsonl"
                try (part.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
                return (path, part.count)
            }
        }

        /// A daemon's config. `name` tells apart configs of one instance name (a reference run next to the
        /// run under test): its file, and its state folder unless `state` is given.
        func config(instance: String = "e2e", idleClose: String = "2s", name: String? = nil, group: String = "robust",
                    rollups: String = "rollups", state: String? = nil, dlq: String = "llm-usage-dlq",
                    alertsTopic: String = "llm-alerts", rules: String = "") throws -> String {
            let path = dir + "/\(name ?? instance).toml"
            try (Harness.configText(brokers: broker.bootstrap, group: group, topic: "llm-usage", dlq: dlq,
                                    rollups: dir + "/" + rollups, state: state ?? (dir + "/state-\(name ?? instance)"),
                                    idleClose: idleClose, instance: instance, alertsTopic: alertsTopic) + rules)
                .write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func commits() throws -> Harness.CommitWatcher {
            try Harness.CommitWatcher(brokers: broker.bootstrap, group: "robust", topic: "llm-usage", partitions: partitions)
        }

        /// Waits until the rollup files (of `rollups`, under the scenario's folder) hold exactly the expected totals.
        func awaitExactTotals(seconds: Double, rollups: String = "rollups") throws -> RollupSums {
            var sums = try RollupSums(dir: dir + "/" + rollups)
            _ = try Harness.await(seconds: seconds) {
                sums = try RollupSums(dir: dir + "/" + rollups)
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

    /// Three kill -9 at random points while 200,000 events are consumed, each followed by a restart. At the
    /// end: exact totals; the alerts on the topic, de-duplicated by `alert_id`, are those of an uninterrupted
    /// run; and the rollup files have the same names and rows as that run's.
    ///
    /// The uninterrupted reference is a second daemon consuming the same topic at the same time, in its own
    /// group (so it gets every partition), with its own state, rollup folder, alerts topic and dead-letter
    /// topic, and the same instance name (so its file names are comparable). Not `tokenmeter replay`:
    /// replay reads one file as one partition, so its writers, windows and late rows are those of a single
    /// stream, not of 16 partitions; only a daemon on the same partitions is the same computation.
    ///
    /// About 4.5 minutes alone in a debug build on 2 cores (the reference daemon shares them); 5.5 minutes
    /// with a fuzzer running beside it, hence the 8-minute limit.
    @Test(.timeLimit(.minutes(8)))
    func killNineAtRandomPointsLosesNothingAndCountsNothingTwice() throws {
        // Late events at most 24 h behind the stream (2026-11-21 08:00-10:00): every event time is on
        // 2026-11-20 or 2026-11-21, which makes the budget and unpriced-model alerts order-independent
        // (see CrashReference).
        let s = try Scenario("kill9", events: 200_000, partitions: 16, seed: 21, duplicates: 0.01, lateMaxMillis: 24 * 3_600_000,
                             extraTopics: ["llm-alerts", "llm-alerts-ref", "llm-usage-dlq-ref"])
        defer { s.broker.stop() }
        let reference = CrashReference(s.expected)
        let wantAlerts = reference.expectedAlerts(s.expected)
        let config = try s.config(rules: reference.toml)
        let refConfig = try s.config(name: "ref", group: "robust-ref", rollups: "rollups-ref", dlq: "llm-usage-dlq-ref",
                                     alertsTopic: "llm-alerts-ref", rules: reference.toml)
        #expect(try Harness.run(["check-config", "--config", config], log: s.dir + "/check-config.log") == 0, "see \(s.dir)/check-config.log")
        let uninterrupted = try Harness.start(["run", "--config", refConfig], log: s.dir + "/ref.log")
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
        var exact = s.expectExact(sums)
        #expect(s.expected.duplicates > 0, "the input has duplicates, and they were counted once")
        let refSums = try s.awaitExactTotals(seconds: 120, rollups: "rollups-ref")
        exact = s.expectExact(refSums) && exact

        // Alerts: every crossing is in the outbox before the checkpoint that records it, and leaves it once
        // delivered; wait for both outboxes to drain, then read both topics.
        #expect(Harness.await(seconds: 60) {
            CrashReference.outboxCount(s.dir + "/state-e2e") == 0 && CrashReference.outboxCount(s.dir + "/state-ref") == 0
        }, "alerts still in an outbox; see \(s.dir)")
        let killedAlerts = try CrashReference.readAlerts(brokers: s.broker.bootstrap, topic: "llm-alerts", expected: wantAlerts.count, seconds: 60)
        let refAlerts = try CrashReference.readAlerts(brokers: s.broker.bootstrap, topic: "llm-alerts-ref", expected: wantAlerts.count, seconds: 60)
        #expect(wantAlerts.count >= 15, "the rules cross a good number of thresholds: \(wantAlerts.count)")
        #expect(Set(wantAlerts.map(\.periodStart)).count >= 3, "alerts in more than one period of each kind")
        #expect(Set(refAlerts.map(\.id)).count == refAlerts.count, "the uninterrupted run published each alert once")
        let alertsEqual = CrashReference.expectSameAlerts(killedAlerts, reference: refAlerts, want: wantAlerts)

        // Rollup files: the same names with the same rows as the uninterrupted run's.
        let killedFiles = try CrashReference.rollupFiles(s.dir + "/rollups")
        let refFiles = try CrashReference.rollupFiles(s.dir + "/rollups-ref")
        let onlyKilled = Set(killedFiles.keys).subtracting(refFiles.keys), onlyRef = Set(refFiles.keys).subtracting(killedFiles.keys)
        let differing = killedFiles.keys.filter { refFiles[$0] != nil && refFiles[$0] != killedFiles[$0] }
        #expect(onlyKilled.isEmpty && onlyRef.isEmpty && differing.isEmpty,
                "files only in the killed run: \(onlyKilled.count) (\(onlyKilled.sorted().prefix(3))); only in the reference: \(onlyRef.count) (\(onlyRef.sorted().prefix(3))); different rows: \(differing.count) (\(differing.sorted().prefix(3)))")
        #expect(killedFiles.count > 1000)
        let filesEqual = onlyKilled.isEmpty && onlyRef.isEmpty && differing.isEmpty

        for p in [daemon, uninterrupted] {
            p.terminate()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
        }
        s.cleanUp(if: exact && alertsEqual && filesEqual)
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

    // MARK: Disk full (a real tmpfs that runs out of space)

    /// /metrics of a daemon, as name{labels} -> value (empty when it does not answer).
    static func metrics(_ address: String) -> [String: Double] {
        SystemdTests.get("http://\(address)/metrics").map { SystemdTests.samples($0.body) } ?? [:]
    }

    /// Fills `disk` while the daemon consumes and checks that it stops: the `failing` gauge turns 1 on
    /// /metrics, the `failures` counter goes on counting retries while the committed offsets and the
    /// consumed messages stand still, and the log says so once. Then frees the disk and expects exact totals.
    ///
    /// The input comes in two halves: the first is consumed and committed before the disk fills, the second
    /// is produced onto the full disk (with everything up front, the daemon could be done before the disk
    /// is full). The rollup folder fails only once windows close, which the second half makes happen.
    func fillDiskWhileConsuming(_ s: Scenario, _ disk: Tmpfs, failing: String, failures: String, logLine: String) throws {
        let halves = try s.split(at: s.events / 2)
        try s.produce(halves[0].path)
        let commits = try s.commits()
        let log = s.dir + "/run.log"
        let daemon = try Harness.start(["run", "--config", try s.config()], log: log)
        #expect(Harness.await(seconds: 20) { SystemdTests.httpAddress(log: log) != nil }, "no http address in \(log)")
        let addr = SystemdTests.httpAddress(log: log) ?? "127.0.0.1:1"
        #expect(try Harness.await(seconds: 60) { try commits.total() == Int64(halves[0].lines) }, "first half not consumed; see \(log)")
        #expect(Self.metrics(addr)["tokenmeter_\(failing)"] == 0)

        disk.fill()
        try s.produce(halves[1].path)
        var m: [String: Double] = [:]
        #expect(Harness.await(seconds: 30) {
            m = Self.metrics(addr)
            return m["tokenmeter_\(failing)"] == 1 && (m["tokenmeter_\(failures)"] ?? 0) >= 1
        }, "the failure does not show on /metrics: \(m.filter { $0.key.contains("fail") }); see \(log)")
        #expect(disk.freeBytes < 64 << 10, "the disk is full: \(disk.freeBytes) bytes free")
        let stuck = try commits.total()
        let consumed = m["tokenmeter_messages_consumed_total"] ?? -1
        let failed = m["tokenmeter_\(failures)"] ?? 0
        #expect(stuck < Int64(s.events), "the disk filled before the end of the input")
        // Three more failed attempts: retried, and meanwhile nothing is committed or consumed.
        #expect(Harness.await(seconds: 30) {
            m = Self.metrics(addr)
            return (m["tokenmeter_\(failures)"] ?? 0) >= failed + 3
        }, "no retries counted; see \(log)")
        #expect(m["tokenmeter_\(failing)"] == 1)
        #expect(try commits.total() == stuck, "no commit past what is durable")
        #expect(m["tokenmeter_messages_consumed_total"] == consumed, "consuming is paused")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.components(separatedBy: logLine).count - 1 == 1, "the failure is logged once, not per retry; see \(log)")
        #expect(text.contains("No space left on device"), "the log names the reason; see \(log)")

        disk.free()
        let sums = try s.awaitExactTotals(seconds: 120)
        let exact = s.expectExact(sums)
        #expect(try Harness.await(seconds: 30) { try commits.total() == Int64(s.events) }, "everything committed once the disk has room")
        m = Self.metrics(addr)
        #expect(m["tokenmeter_\(failing)"] == 0, "the gauge clears; see \(log)")
        let after = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(after.contains("writable again"), "the recovery is logged; see \(log)")
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        disk.unmount()
        s.cleanUp(if: exact)
    }

    /// The state folder (checkpoint and alert outbox) on a tmpfs that fills up mid-run: no checkpoint can be
    /// written, so no offset may be committed, and consuming pauses until there is room again.
    @Test(.timeLimit(.minutes(4)), .enabled(if: Tmpfs.available, "mounting a tmpfs needs root"))
    func fullStateDirectoryPausesAndCommitsNothingUntilSpaceReturns() throws {
        let s = try Scenario("statefull", events: 30_000, partitions: 4, seed: 25, produce: false)
        defer { s.broker.stop() }
        let disk = try Tmpfs(at: s.dir + "/state-e2e", bytes: 16 << 20)
        defer { disk.unmount() }
        try fillDiskWhileConsuming(s, disk, failing: "state_write_failing", failures: "state_write_failures_total",
                                   logLine: "cannot write to the state directory")
    }

    /// The rollup folder on a tmpfs that fills up mid-run: closed windows wait in memory, nothing is
    /// committed past them, consuming pauses until there is room again.
    @Test(.timeLimit(.minutes(4)), .enabled(if: Tmpfs.available, "mounting a tmpfs needs root"))
    func fullRollupDirectoryPausesAndCommitsNothingUntilSpaceReturns() throws {
        let s = try Scenario("rollupfull", events: 30_000, partitions: 4, seed: 26, produce: false)
        defer { s.broker.stop() }
        let disk = try Tmpfs(at: s.dir + "/rollups", bytes: 64 << 20)
        defer { disk.unmount() }
        try fillDiskWhileConsuming(s, disk, failing: "rollup_write_failing", failures: "rollup_write_failures_total",
                                   logLine: "cannot write rollup file")
    }
}
