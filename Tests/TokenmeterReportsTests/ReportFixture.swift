import Foundation
import TokenmeterCore
import TokenmeterReports

/// Rollup files written by the tests themselves: two window sizes, late rows, two writers' partial rows
/// for one window, an outcome row with a value, an unpriced row, tags.
struct ReportFixture {
    struct Row {
        var window = "1h"
        var start: String
        var workflow: String
        var owner: String
        var model: String?
        var provider: String?
        var env: String?
        var requests: Int64 = 0, errors: Int64 = 0, input: Int64 = 0, cacheRead: Int64 = 0, cacheWrite: Int64 = 0
        var output: Int64 = 0, reasoning: Int64 = 0
        var cost = "0"
        var unpriced: Int64 = 0
        var outcomes: [String: Int64] = [:]
        var value = "0"
        var late = false

        var millis: Int64 { window == "1h" ? 3_600_000 : 86_400_000 }
        var startMillis: Int64 { RFC3339.parse(start)! }

        var json: String {
            let end = RFC3339.format(startMillis + millis)
            let tags = env.map { "{\"environment\":\"\($0)\"}" } ?? "{}"
            let oc = "{" + outcomes.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
            return "{\"window\":\"\(window)\",\"window_start\":\"\(start)\",\"window_end\":\"\(end)\",\"workflow\":\"\(workflow)\",\"owner\":\"\(owner)\","
                + "\"model\":\(model.map { "\"\($0)\"" } ?? "null"),\"provider\":\(provider.map { "\"\($0)\"" } ?? "null"),\"tags\":\(tags),"
                + "\"requests\":\(requests),\"errors\":\(errors),\"input_tokens\":\(input),\"cache_read_tokens\":\(cacheRead),"
                + "\"cache_write_tokens\":\(cacheWrite),\"output_tokens\":\(output),\"reasoning_tokens\":\(reasoning),\"cost_usd\":\(cost),"
                + "\"unpriced_requests\":\(unpriced),\"outcomes\":\(oc),\"outcome_value_usd\":\(value),\"late\":\(late)}"
        }
    }

    static func inv(_ start: String, _ requests: Int64, _ cost: String, late: Bool = false) -> Row {
        Row(start: start, workflow: "invoice-extraction", owner: "finance-ops", model: "gpt-4o", provider: "openai", env: "prod",
            requests: requests, errors: requests / 50, input: requests * 10, cacheRead: requests * 4, output: requests * 2, cost: cost, late: late)
    }

    /// Hourly rows on 2026-11-29, grouped by (writer, file suffix).
    static let hourly: [(file: String, rows: [Row])] = [
        ("20261129T090000Z-a", [Row(start: "2026-11-29T09:00:00Z", workflow: "contract-review", owner: "legal", model: "claude-sonnet-4-5",
                                    provider: "anthropic", env: "staging", requests: 4, input: 2000, cacheWrite: 500, output: 800, reasoning: 300, cost: "1")]),
        ("20261129T100000Z-a", [
            inv("2026-11-29T10:00:00Z", 100, "1.25"),
            Row(start: "2026-11-29T10:00:00Z", workflow: "contract-review", owner: "legal", model: "claude-sonnet-4-5", provider: "anthropic",
                env: "staging", requests: 10, input: 5000, cacheWrite: 1000, output: 2000, reasoning: 800, cost: "3.000000001"),
            Row(start: "2026-11-29T10:00:00Z", workflow: "invoice-extraction", owner: "finance-ops", model: nil, provider: nil,
                outcomes: ["invoice_processed": 140], value: "350"),
        ]),
        // A second writer's partial rows for the same window and key: readers add them.
        ("20261129T100000Z-b", [inv("2026-11-29T10:00:00Z", 50, "0.625")]),
        ("20261129T110000Z-a", [
            inv("2026-11-29T11:00:00Z", 20, "0.2"),
            Row(start: "2026-11-29T11:00:00Z", workflow: "log-explainer", owner: "platform-eng", model: "llama-3-70b", provider: "bedrock",
                env: "prod", requests: 5, input: 900, output: 100, cost: "0", unpriced: 5),
        ]),
        // Late rows for the 10:00 window, written after it closed.
        ("20261129T100000Z-a-late-20261129T120500Z", [inv("2026-11-29T10:00:00Z", 3, "0.03", late: true)]),
    ]

    static var allHourly: [Row] { hourly.flatMap(\.rows) }

    /// Writes the fixture; with `daily`, also a 1d file that sums the day (as the daemon would).
    static func write(daily: Bool = true, extraOpenHour: Bool = false) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tm-report-\(UUID().uuidString.prefix(8))").path
        for f in hourly { try put(dir, "1h", f.rows, name: f.file) }
        if daily {
            var rows = allHourly.map { r -> Row in var d = r; d.window = "1d"; d.start = "2026-11-29T00:00:00Z"; d.late = false; return d }
            rows.sort { $0.workflow < $1.workflow }
            try put(dir, "1d", rows, name: "20261129T000000Z-a")
        }
        if extraOpenHour {
            // The next day has an hourly file but its daily file is not written yet (the day is still open).
            try put(dir, "1h", [inv("2026-11-30T08:00:00Z", 7, "0.07")], name: "20261130T080000Z-a")
        }
        return dir
    }

    static func put(_ dir: String, _ window: String, _ rows: [Row], name: String) throws {
        let day = rows[0].start.prefix(10)
        let folder = "\(dir)/\(window)/\(day)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try (rows.map(\.json).joined(separator: "\n") + "\n").write(toFile: "\(folder)/\(name).jsonl", atomically: true, encoding: .utf8)
    }

    /// Independent totals of some rows.
    static func totals(_ rows: [Row]) -> (requests: Int64, errors: Int64, input: Int64, output: Int64, cost: Money, unpriced: Int64, outcomes: Int64) {
        var t: (requests: Int64, errors: Int64, input: Int64, output: Int64, cost: Money, unpriced: Int64, outcomes: Int64) = (0, 0, 0, 0, .zero, 0, 0)
        for r in rows {
            t.requests += r.requests; t.errors += r.errors; t.input += r.input; t.output += r.output
            t.cost += Money.parse(r.cost)!; t.unpriced += r.unpriced; t.outcomes += r.outcomes.values.reduce(0, +)
        }
        return t
    }
}
