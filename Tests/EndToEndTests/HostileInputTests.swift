import Foundation
import Testing
import TokenmeterCore
import TokenmeterReports
import TrafficGenerator

/// Hostile input through the whole pipeline (decode, dedup, price, windows, files), not only the decoder:
/// two million mutated messages. Nothing may crash or hang, every rejection carries a reason, every message
/// is accounted for, and the files written afterwards are consistent across window sizes.
@Suite struct HostileInputTests {
    @Test(.timeLimit(.minutes(4)))
    func twoMillionMutatedMessagesThroughThePipeline() throws {
        let dir = try Harness.tempDir("hostile")
        var config = TokenmeterConfig()
        config.rollups.dir = dir + "/rollups"
        config.rollups.windows = [DurationSpec(millis: 3_600_000, label: "1h"), DurationSpec(millis: 86_400_000, label: "1d")]
        config.rollups.tags = ["environment", "customer"]
        config.rollups.maxKeysPerWindow = 5_000
        config.prices = Catalogue.referencePrices.map {
            PriceEntry(model: $0.model, input: $0.input, cacheRead: $0.cacheRead, cacheWrite: $0.cacheWrite, output: $0.output,
                       reasoning: $0.reasoning)
        }
        let pipeline = Pipeline(config: config, instance: "hostile")

        // Seeds: realistic events of every shape, bad ones included.
        // Seeds from yesterday: a mutated timestamp then lands in the past, within the late horizon, or more
        // than a day ahead (refused), as real traffic's would.
        let yesterday = (Int64(Date().timeIntervalSince1970 * 1000) / 86_400_000 - 1) * 86_400_000
        var c = TrafficConfig(seed: 5, start: yesterday, events: 500, spanMillis: 3_600_000)
        c.badFraction = 0.05
        var gen = TrafficGenerator(c)
        let seeds = (0..<500).map { _ in Array(gen.next().line.utf8) }
        let interesting: [UInt8] = Array("{}[]\",:\\-0123456789eE.tfnu ".utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xE2, 0xED, 0xF0, 0xFF]
        var rng = SplitMix64(seed: 0xBAD_1DEA)
        let n = 2_000_000
        var counted = 0, late = 0, duplicate = 0, rejected = 0
        var reasons: [RejectReason.Code: Int] = [:]
        var emptyReasons = 0
        let started = Date()
        let wallNow = Int64(started.timeIntervalSince1970 * 1000)
        for i in 0..<n {
            var b = seeds[i % seeds.count]
            let edits = Int(rng.next() % 4)   // 0 edits: the event as generated (duplicates of earlier ids)
            for _ in 0..<edits {
                let pos = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
                let byte = rng.next() % 2 == 0 ? interesting[Int(rng.next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: rng.next())
                switch rng.next() % 3 {
                case 0 where !b.isEmpty: b[pos] = byte
                case 1: b.insert(byte, at: pos)
                default: if !b.isEmpty { b.remove(at: pos) }
                }
            }
            let result = b.withUnsafeBytes {
                pipeline.process($0, topicIndex: 0, partition: Int32(i % 4), offset: Int64(i / 4),
                                 messageTime: nil, wallNow: wallNow)
            }
            switch result {
            case .counted: counted += 1
            case .late: late += 1
            case .duplicate: duplicate += 1
            case .rejected(let r):
                rejected += 1
                reasons[r.code, default: 0] += 1
                if r.detail.isEmpty { emptyReasons += 1 }
            }
            if pipeline.pending.count > 256 { try pipeline.writePending() }
        }
        let seconds = Date().timeIntervalSince(started)
        pipeline.closeAll()
        try pipeline.writePending()
        print("hostile: \(n) mutated messages in \(String(format: "%.1f", seconds)) s: \(counted) counted, \(late) late, \(duplicate) duplicates, \(rejected) rejected \(reasons.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " "))")

        #expect(counted + late + duplicate + rejected == n)
        #expect(pipeline.metrics.messages == Int64(n))
        #expect(emptyReasons == 0, "every rejection has a reason")
        // 500 seeds reused: most intact or harmlessly mutated copies repeat an id already counted (duplicates);
        // the rest of the accepted ones are counted on time or late.
        #expect(counted + late > 10_000 && rejected > 100_000 && duplicate > 100_000)
        #expect(reasons[.tooLate, default: 0] < n / 100, "a mutated timestamp must not poison the partition's stream time")
        // The files are well-formed and the two window sizes hold the same totals.
        let hours = try RollupReader.read(dir: config.rollups.dir, window: "1h")
        let days = try RollupReader.read(dir: config.rollups.dir, window: "1d")
        let sum = { (rows: [RollupRow]) -> (Int64, Money, Int64) in
            rows.reduce((Int64(0), Money.zero, Int64(0))) { ($0.0 + $1.counters.requests, $0.1 + $1.counters.cost, $0.2 + $1.counters.input) }
        }
        let h = sum(hours), d = sum(days)
        #expect(h.0 == d.0 && h.2 == d.2)
        #expect(h.0 >= pipeline.metrics.usageEvents, "every counted usage event has at least one request in the rollups")
        #expect(h.1 == d.1 || (h.1 - d.1).femtos.magnitude <= UInt128(hours.count + days.count) * 500_000, "costs agree up to the 9-decimal rounding of each printed row")
        try? FileManager.default.removeItem(atPath: dir)
    }
}
