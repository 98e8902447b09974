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

    // `.unconditional`: `--events -5` is the value -5 (refused below as not positive), not a missing value
    // followed by an unknown option `-5`.
    @Option(parsing: .unconditional, help: "Number of events.")
    var events: Int = 10_000

    @Option(help: "Random seed: the same seed prints the same events.")
    var seed: UInt64 = 1

    @Option(help: "Event time of the first event (RFC 3339); default: 24 hours ago.")
    var start: String?

    @Option(help: "Event-time span the events cover, e.g. 6h.")
    var span: String = "6h"

    @Option(parsing: .unconditional, help: "Share of invalid events, 0 to 1 (they go to the dead-letter topic).")
    var bad: Double = 0.0

    @Option(parsing: .unconditional, help: "Share of late events, 0 to 1 (hours behind).")
    var late: Double = 0.0

    /// Mistakes are found here, not in `run`, so that they are printed with this command's usage.
    func validate() throws {
        guard events > 0 else { throw ValidationError("--events must be positive, got \(events)") }
        guard (0...1).contains(bad) else { throw ValidationError("--bad must be a share from 0 to 1, got \(bad)") }
        guard (0...1).contains(late) else { throw ValidationError("--late must be a share from 0 to 1, got \(late)") }
        guard let spanMs = DurationSpec.parse(span)?.millis, spanMs > 0 else { throw ValidationError("--span: not a duration: \(span)") }
        if let start, RFC3339.parse(start, allowDateOnly: true) == nil {
            throw ValidationError("--start: not an RFC 3339 time: \(start)")
        }
    }

    func run() throws {
        let spanMs = DurationSpec.parse(span)!.millis
        let startMs = start.flatMap { RFC3339.parse($0, allowDateOnly: true) } ?? WallClock.now() - 86_400_000
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
