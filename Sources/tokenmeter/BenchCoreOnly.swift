import ArgumentParser
import Foundation
import TokenmeterCore

/// `tokenmeter bench --only core`: the two core rows of the full bench (the pipeline fed from memory on
/// one thread) without the broker, the fill and the Kafka runs, so that work on the decoder and the
/// aggregator can be measured in seconds rather than in the full run's ten minutes.
enum BenchOnly: String, ExpressibleByArgument, CaseIterable {
    case core
    case kafka
}

extension BenchCommand {
    struct CoreReport: Codable {
        var events: Int
        var partitions: Int
        var runs: Int
        var machine: Machine
        var coreCanonical: BenchResult
        var coreProviderShaped: BenchResult

        func table() -> String {
            var out = "tokenmeter bench --only core: \(events) events, \(partitions) partitions, \(runs) runs each; median [min-max]\n"
            out += "machine: \(machine.cores) cores, \(machine.cpu)\n\n"
            let header = ["measurement", "events/s", "MB/s", "CPU s / M events", "peak RSS MB"]
            let rows = [coreCanonical, coreProviderShaped].map { r in
                [r.name, ThroughputReport.spread(r.eventsPerSecond, "%.0f"), ThroughputReport.spread(r.megabytesPerSecond, "%.1f"),
                 ThroughputReport.spread(r.cpuSecondsPerMillionEvents, "%.2f"), String(format: "%.0f", Double(r.peakRSSBytes) / 1_048_576)]
            }
            return out + ThroughputReport.render(header: header, rows: rows) + "\n"
                + [coreCanonical, coreProviderShaped].compactMap(\.checkpointLine).joined()
        }
    }

    /// The core rows only. The partition count is the one the full bench would pick for these events
    /// (events are spread over partitions the same way), so the numbers compare with a full run's.
    func coreOnly(work: String, progress: BenchProgress) throws -> CoreReport {
        let partitions = try checkCapacity(progress: progress)
        let canonical = try coreRuns(shapes: .only(canonical: 1), label: "core canonical", partitions: partitions, work: work, progress: progress)
        let native = try coreRuns(shapes: .only(native: 1), label: "core provider-shaped", partitions: partitions, work: work, progress: progress)
        return CoreReport(events: events, partitions: partitions, runs: runs, machine: .current(),
                          coreCanonical: canonical, coreProviderShaped: native)
    }
}
