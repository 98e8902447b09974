import Foundation
import Testing
import TokenmeterCore
import TrafficGenerator

/// Interned names are released by `Pipeline.compactNames`: a stream of names each seen once costs memory
/// until the next rebuild, not for the process's life, and a rebuild changes nothing that is written.
@Suite struct NameCompactionTests {
    static func config(dir: String) -> TokenmeterConfig {
        let text = """
            [rollups]
            dir = "\(dir)"
            windows = ["1m", "5m"]
            grace = "30s"
            tags = ["environment", "customer"]
            [[budget]]
            name = "everything-hourly"
            period = "hour"
            amount_usd = 2
            thresholds = [10, 50, 100]
            forecast = true
            [[spike]]
            name = "workflow-spike"
            by = "workflow"
            window = "1m"
            factor = 2.0
            min_usd = 0.01
            \(Catalogue.referencePricesTOML())
            """
        guard case .success(let c) = ConfigLoader.parse(text: text, file: "compaction.toml") else { fatalError("test config") }
        return c
    }

    /// Every file under `dir`, by relative path.
    static func files(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        guard let e = FileManager.default.enumerator(atPath: dir) else { return out }
        for case let rel as String in e where rel.hasSuffix(".jsonl") {
            out[rel] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + rel))
        }
        return out
    }

    /// The same stream (realistic traffic with late events, outcomes, tags and unpriced models, plus a name
    /// seen once every other event) through two pipelines, one of which rebuilds its names every 1,500
    /// events: the same files byte for byte, the same alerts with the same ids, and far fewer names kept.
    @Test func aRebuildChangesNothingWrittenAndReleasesNamesNoLongerUsed() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tm-names-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let plain = Pipeline(config: Self.config(dir: root + "/plain"), instance: "t")
        let compacted = Pipeline(config: Self.config(dir: root + "/compacted"), instance: "t")
        let clock: () -> EpochMillis = { 1_800_000_000_000 }
        plain.alerts.now = clock
        compacted.alerts.now = clock

        let events = 9_000
        var traffic = TrafficConfig(seed: 11, start: RFC3339.parse("2026-11-21T08:00:00Z")!, events: events, spanMillis: 6 * 3_600_000)
        traffic.lateFraction = 0.03
        var gen = TrafficGenerator(traffic)
        var plainAlerts: [Alert] = [], compactedAlerts: [Alert] = []
        var held: [PartitionState] = []
        var rebuilds = 0, largestBefore = 0, largestAfter = 0
        for i in 0..<events {
            var line = gen.next().line
            if i % 2 == 0, let r = line.range(of: #""workflow":""#) {
                line.replaceSubrange(r, with: #""workflow":"once-\#(i)-"#)   // a workflow seen once
            }
            for p in [plain, compacted] {
                _ = Array(line.utf8).withUnsafeBytes {
                    p.process($0, topicIndex: 0, partition: Int32(i % 3), offset: Int64(i / 3), messageTime: nil, wallNow: 0)
                }
            }
            if i % 500 == 499 {
                try plain.writePending()
                try compacted.writePending()
                plainAlerts += plain.alerts.takePending()
                compactedAlerts += compacted.alerts.takePending()
            }
            if i % 1_500 == 1_499 {
                let (before, after) = try #require(compacted.compactNames(held: &held))
                rebuilds += 1
                largestBefore = max(largestBefore, before)
                largestAfter = max(largestAfter, after)
            }
        }
        for p in [plain, compacted] {
            p.closeAll()
            try p.writePending()
        }
        plainAlerts += plain.alerts.takePending()
        compactedAlerts += compacted.alerts.takePending()

        #expect(rebuilds == 6)
        #expect(compacted.metrics.nameCompactions == 6)
        // Thousands of once-seen workflows in total; after each rebuild only those in open rows, in the
        // hourly budget's last two periods and in recent spike windows remain.
        #expect(plain.internedNames > 3_500)
        #expect(largestAfter < largestBefore)
        #expect(compacted.internedNames < plain.internedNames / 2)
        #expect(compacted.internedBytes < plain.internedBytes / 2)

        let a = try Self.files(root + "/plain"), b = try Self.files(root + "/compacted")
        #expect(a.count > 100)
        #expect(a.keys.sorted() == b.keys.sorted())
        #expect(a.filter { b[$0.key] != $0.value }.map(\.key).sorted() == [])
        #expect(!plainAlerts.isEmpty)
        #expect(plainAlerts.map(\.id) == compactedAlerts.map(\.id))
        #expect(plainAlerts.map(\.message) == compactedAlerts.map(\.message))
    }

    /// Partitions the process holds without their being assigned (restored, waiting for Kafka) keep their
    /// rows through a rebuild, under the new ids.
    @Test func heldPartitionStatesComeBackWithTheirRows() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tm-held-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let p = Pipeline(config: Self.config(dir: root), instance: "t")
        let event = #"{"id":"a","timestamp":"2026-11-21T08:00:10Z","workflow":"held-wf","owner":"o","model":"gpt-4o","input_tokens":5,"tags":{"customer":"c1"}}"#
        _ = Array(event.utf8).withUnsafeBytes { p.process($0, topicIndex: 0, partition: 4, offset: 9, messageTime: nil, wallNow: 0) }
        var held = [try #require(p.release(topicIndex: 0, partition: 4, handover: false))]
        for i in 0..<1_000 {
            let e = #"{"id":"n\#(i)","timestamp":"2026-11-21T08:00:10Z","workflow":"w\#(i)","owner":"o","input_tokens":1}"#
            _ = Array(e.utf8).withUnsafeBytes { p.process($0, topicIndex: 0, partition: 0, offset: Int64(i), messageTime: nil, wallNow: 0) }
        }
        _ = p.release(topicIndex: 0, partition: 0, handover: false)
        let (before, after) = try #require(p.compactNames(held: &held))
        #expect(before > 1_000 && after < 20)
        p.assign(held[0], topicIndex: 0)
        p.closeAll()
        try p.writePending()
        let text = try Self.files(root).values.map { String(decoding: $0, as: UTF8.self) }.joined()
        #expect(text.contains(#""workflow":"held-wf","owner":"o","model":"gpt-4o""#))
        #expect(text.contains(#""customer":"c1""#))
        #expect(!text.contains(#""workflow":"w1""#))
    }

    /// A period keeps at most 1,000 workflows' shares; the rest is summed under "(other workflows)", which
    /// an alert's top workflows show like any other share and which survives the state's round trip.
    @Test func aBudgetPeriodKeepsAThousandWorkflowSharesAndSumsTheRest() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tm-shares-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let text = """
            [rollups]
            dir = "\(root)"
            windows = ["1h"]
            [[budget]]
            name = "all"
            period = "day"
            amount_usd = 12
            thresholds = [100]
            """
        guard case .success(let c) = ConfigLoader.parse(text: text, file: "shares.toml") else { fatalError("test config") }
        let p = Pipeline(config: c, instance: "t")
        for i in 0..<1_200 {
            let e = #"{"id":"s\#(i)","timestamp":"2026-11-21T08:00:10Z","workflow":"w\#(i)","owner":"o","model":"m","cost_usd":0.01}"#
            _ = Array(e.utf8).withUnsafeBytes { p.process($0, topicIndex: 0, partition: 0, offset: Int64(i), messageTime: nil, wallNow: 0) }
        }
        let alert = try #require(p.alerts.takePending().first)
        // The rows are written: only the budget's state still names workflows.
        p.closeAll()
        try p.writePending()
        #expect(alert.topWorkflows.first?.name == "(other workflows)")
        #expect(alert.topWorkflows.first?.cost == Money.parse("2.00"))
        var held: [PartitionState] = []
        let (_, after) = try #require(p.compactNames(held: &held))
        #expect(after < 1_100, "the 200 workflows past the cap are not kept by the budget")
        // The sum keeps its own id through the round trip: more spend from new workflows adds to it.
        for i in 1_200..<1_300 {
            let e = #"{"id":"s\#(i)","timestamp":"2026-11-21T08:00:11Z","workflow":"w\#(i)","owner":"o","model":"m","cost_usd":0.01}"#
            _ = Array(e.utf8).withUnsafeBytes { p.process($0, topicIndex: 0, partition: 0, offset: Int64(i), messageTime: nil, wallNow: 0) }
        }
        var w = BinaryWriter()
        p.alerts.encodeState(into: &w, names: p.dimensions.names)
        #expect(String(decoding: w.bytes, as: UTF8.self).components(separatedBy: "(other workflows)").count == 2)
    }
}

/// A spike key idle for more than 64 windows behind the rule's newest window starts over as a new key (no
/// baseline, so no spike), in the live engine as after a restart, whose saved state leaves such keys out.
@Suite struct SpikeIdleKeyTests {
    static func pipeline() -> Pipeline {
        let text = """
            [rollups]
            dir = "/nonexistent/spike-idle"
            windows = ["1h"]
            [[spike]]
            name = "s"
            by = "workflow"
            window = "1m"
            factor = 2.0
            min_usd = 0.01
            """
        guard case .success(let c) = ConfigLoader.parse(text: text, file: "spike.toml") else { fatalError("test config") }
        return Pipeline(config: c, instance: "t")
    }

    static func spend(_ p: Pipeline, _ workflow: String, minute: Int64, _ cost: String, offset: inout Int64) {
        let t = RFC3339.parse("2026-11-21T08:00:00Z")! + minute * 60_000
        let e = #"{"id":"e\#(offset)","timestamp":\#(t),"workflow":"\#(workflow)","owner":"o","model":"m","cost_usd":\#(cost)}"#
        _ = Array(e.utf8).withUnsafeBytes { p.process($0, topicIndex: 0, partition: 0, offset: offset, messageTime: nil, wallNow: 0) }
        offset += 1
    }

    @Test(arguments: [(idleMinutes: Int64(10), spikes: 1), (idleMinutes: Int64(70), spikes: 0)])
    func aKeyBackAfterALongSilenceIsNew(idleMinutes: Int64, spikes: Int) {
        let p = Self.pipeline()
        var offset: Int64 = 0
        for m in 0..<5 { Self.spend(p, "w", minute: Int64(m), "1.00", offset: &offset) }
        // Another workflow keeps the rule's newest window moving while "w" is silent.
        for m in 5..<(5 + idleMinutes) { Self.spend(p, "other", minute: m, "1.00", offset: &offset) }
        Self.spend(p, "w", minute: 5 + idleMinutes, "5.00", offset: &offset)
        let alerts = p.alerts.takePending().filter { $0.scope.first?.value == "w" }
        #expect(alerts.count == spikes)
    }
}
