import ArgumentParser
import TokenmeterCore
import TrafficGenerator
import TokenmeterDaemon

/// `tokenmeter generate`: the demo's realistic traffic as JSON Lines, for trying `produce`, `replay`,
/// `prices check` and `report` on data that looks like production, and for measuring throughput.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Print realistic usage and outcome events as JSON Lines (every provider shape).")

    @Option(help: "Number of events.")
    var events: Int = 10_000

    @Option(help: "Random seed: the same seed prints the same events.")
    var seed: UInt64 = 1

    @Option(help: "Event time of the first event (RFC 3339); default: 24 hours ago.")
    var start: String?

    @Option(help: "Event-time span the events cover, e.g. 6h.")
    var span: String = "6h"

    @Option(help: "Share of invalid events (they go to the dead-letter topic).")
    var bad: Double = 0.0

    @Option(help: "Share of late events (hours behind).")
    var late: Double = 0.0

    func run() throws {
        guard let spanMs = DurationSpec.parse(span)?.millis, spanMs > 0 else { throw ValidationError("--span: not a duration: \(span)") }
        let startMs: EpochMillis
        if let start {
            guard let t = RFC3339.parse(start, allowDateOnly: true) else { throw ValidationError("--start: not an RFC 3339 time: \(start)") }
            startMs = t
        } else {
            startMs = WallClock.now() - 86_400_000
        }
        var config = TrafficConfig(seed: seed, start: startMs, events: events, spanMillis: spanMs)
        config.badFraction = bad
        config.lateFraction = late
        var generator = TrafficGenerator(config)
        var buffer = ""
        buffer.reserveCapacity(1 << 20)
        for _ in 0..<events {
            buffer += generator.next().line
            buffer += "\n"
            if buffer.utf8.count >= 1 << 20 { writeOut(buffer); buffer.removeAll(keepingCapacity: true) }
        }
        writeOut(buffer)
    }
}
