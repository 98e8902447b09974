import Foundation
import TokenmeterCore
import TrafficGenerator

/// `tokenmeter bench --cardinality`: N distinct (workflow, owner, model) keys open in one window of one
/// partition, through the pipeline; memory per key, and the checkpoint's encode and restore times.
struct CardinalityBench {
    let keys: Int
    let dir: String
    let progress: BenchProgress

    struct Report: Codable {
        var keys: Int
        var openRows: Int
        var rssBeforeBytes: Int64
        var rssAfterBytes: Int64
        var bytesPerKey: Double
        var peakRSSBytes: Int64
        var ingestSeconds: Double
        var checkpointBytes: Int
        var encodeSeconds: Double
        var restoreSeconds: Double
        var restoredRows: Int
        var machine: BenchCommand.Machine

        func table() -> String {
            let rows: [[String]] = [
                ["distinct keys open in one window", "\(openRows)"],
                ["RSS before / after", String(format: "%.0f MB / %.0f MB", Double(rssBeforeBytes) / 1_048_576, Double(rssAfterBytes) / 1_048_576)],
                ["bytes per key (RSS delta / keys)", String(format: "%.0f", bytesPerKey)],
                ["peak RSS", String(format: "%.0f MB", Double(peakRSSBytes) / 1_048_576)],
                ["ingest (Pipeline.process)", String(format: "%.2f s (%.0f keys/s)", ingestSeconds, Double(keys) / ingestSeconds)],
                ["checkpoint size", String(format: "%.1f MB", Double(checkpointBytes) / 1e6)],
                ["checkpoint encode", String(format: "%.3f s", encodeSeconds)],
                ["checkpoint restore (decode)", String(format: "%.3f s (%d rows)", restoreSeconds, restoredRows)],
            ]
            return "tokenmeter bench --cardinality: \(keys) keys; machine: \(machine.cores) cores, \(machine.cpu)\n\n"
                + BenchCommand.ThroughputReport.render(header: ["measurement", "value"], rows: rows)
        }
    }

    static let models: [(String, String)] = Catalogue.models.map { ($0.name, $0.provider) }

    func configText() -> String {
        """
        [kafka]
        brokers = "127.0.0.1:9"
        group_id = "bench-cardinality"
        topics = ["bench"]

        [rollups]
        dir = "\(dir)/rollups"
        windows = ["1d"]
        grace = "30s"
        idle_close = "2m"
        late_horizon = "7d"
        instance = "bench"
        max_keys_per_window = \(keys + 1000)

        [state]
        dir = "\(dir)/state"

        [dedup]
        window = "0s"    # off: its per-id memory would be counted as per-key memory

        \(Catalogue.referencePricesTOML())
        """
    }

    func run() throws -> Report {
        let config = try BenchTraffic.parse(configText())
        let day = floorDiv(Int64(Date().timeIntervalSince1970 * 1000), 86_400_000) * 86_400_000 - 2 * 86_400_000
        let stamp = RFC3339.format(day + 3_600_000)
        let wallNow = Int64(Date().timeIntervalSince1970 * 1000)
        let models = Self.models
        let perWorkflow = 20 * models.count

        // Warm up the allocator and the pipeline's code paths with a separate pipeline first.
        do {
            let warm = Pipeline(config: config, instance: "bench")
            for i in 0..<1000 {
                var line = Self.event(i, stamp: stamp, perWorkflow: perWorkflow, models: models)
                _ = line.withUTF8 { warm.process(UnsafeRawBufferPointer($0), topicIndex: 0, partition: 0, offset: Int64(i), messageTime: nil, wallNow: wallNow) }
            }
        }

        let pipeline = Pipeline(config: config, instance: "bench")
        let before = Usage.currentRSSBytes()
        let t0 = monotonicSeconds()
        for i in 0..<keys {
            var line = Self.event(i, stamp: stamp, perWorkflow: perWorkflow, models: models)
            let r = line.withUTF8 { pipeline.process(UnsafeRawBufferPointer($0), topicIndex: 0, partition: 0, offset: Int64(i), messageTime: nil, wallNow: wallNow) }
            if r != .counted { throw BenchError("cardinality event \(i) was not counted: \(r)") }
            if i % 20_000 == 0 { progress.update("  cardinality  \(i)/\(keys) keys") }
        }
        let ingest = monotonicSeconds() - t0
        progress.end()
        let after = Usage.currentRSSBytes()
        let rows = pipeline.openRowCount

        progress.update("  cardinality  encoding the checkpoint")
        let e0 = monotonicSeconds()
        let bytes = pipeline.checkpointBytes()
        let encode = monotonicSeconds() - e0

        progress.update("  cardinality  restoring the checkpoint")
        let fresh = Pipeline(config: config, instance: "bench")
        let r0 = monotonicSeconds()
        let restored = try fresh.decodeCheckpoint(bytes, restoreAlerts: true)
        let restore = monotonicSeconds() - r0
        progress.end()
        let restoredRows = restored.partitions.reduce(0) { $0 + $1.windows.openRowCount }

        return Report(keys: keys, openRows: rows, rssBeforeBytes: before, rssAfterBytes: after,
                      bytesPerKey: Double(after - before) / Double(max(rows, 1)), peakRSSBytes: Usage.now().maxRSSBytes,
                      ingestSeconds: ingest, checkpointBytes: bytes.count, encodeSeconds: encode, restoreSeconds: restore,
                      restoredRows: restoredRows, machine: .current())
    }

    /// Key i: workflow i / (20 x models), owner (i / models) % 20, model i % models: all distinct.
    static func event(_ i: Int, stamp: String, perWorkflow: Int, models: [(String, String)]) -> String {
        let (model, provider) = models[i % models.count]
        return #"{"id":"k-\#(i)","timestamp":"\#(stamp)","type":"usage","workflow":"wf-\#(i / perWorkflow)","owner":"team-\#((i / models.count) % 20)","model":"\#(model)","provider":"\#(provider)","input_tokens":1200,"cache_read_tokens":300,"output_tokens":250,"reasoning_tokens":0}"#
    }
}
