import Foundation
import Testing
import TokenmeterCore
import TrafficGenerator

/// The DuckDB recipe of docs/rollups.md, run as written (only its folder replaced) by DuckDB's Python
/// package over the rollup files of a `tokenmeter replay`, must give exactly what `tokenmeter report
/// --format json` gives: requests, cost and outcome value per owner, to the last digit. DuckDB's type
/// guessing (`read_json_auto`) reads money as integers or doubles; the recipe's explicit DECIMAL columns
/// are what make it exact, and this keeps the page honest.
///
/// DuckDB comes from PyPI, in a virtual environment outside the repository that `.ci/run` creates
/// (`TOKENMETER_DUCKDB_PYTHON` names another interpreter that has `duckdb`).
@Suite struct DuckDBRecipeTests {
    static let python = ProcessInfo.processInfo.environment["TOKENMETER_DUCKDB_PYTHON"]
        ?? "/var/cache/tokenmeter-ci/venv/bin/python"
    static var duckDBAvailable: Bool {
        guard FileManager.default.isExecutableFile(atPath: python) else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", "import duckdb"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The SQL block after the `<!-- duckdb-recipe` marker of docs/rollups.md.
    static func recipe() throws -> String {
        let page = try String(contentsOf: repository.appendingPathComponent("docs/rollups.md"), encoding: .utf8)
        let lines = page.split(separator: "\n", omittingEmptySubsequences: false)
        let marker = try #require(lines.firstIndex { $0.hasPrefix("<!-- duckdb-recipe") }, "no duckdb-recipe marker in docs/rollups.md")
        let open = try #require(lines[marker...].firstIndex { $0.hasPrefix("```sql") })
        let close = try #require(lines[(open + 1)...].firstIndex { $0.hasPrefix("```") })
        return lines[(open + 1)..<close].joined(separator: "\n")
    }

    @Test(.enabled(if: duckDBAvailable, "DuckDB's Python package is not installed (.ci/run installs it into /var/cache/tokenmeter-ci/venv)"),
          .timeLimit(.minutes(3)))
    func recipeEqualsReportExactly() throws {
        let dir = try Harness.tempDir("duckdb")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Two days with outcomes (values in cents), late rows and unpriced requests: every kind of row.
        var c = TrafficConfig(seed: 77, start: RFC3339.parse("2026-11-20T00:00:00Z")!, events: 8_000, spanMillis: 2 * 86_400_000)
        c.outcomeFraction = 0.2
        c.badFraction = 0.01
        c.lateFraction = 0.01
        var gen = TrafficGenerator(c)
        var expected = ExpectedTotals(prices: Catalogue.referencePrices, windows: [])
        try gen.write(count: 8_000, toFile: dir + "/events.jsonl", into: &expected)
        try Harness.configText(brokers: "127.0.0.1:9", group: "g", topic: "t", dlq: "t-dlq", rollups: dir + "/rollups",
                               state: dir + "/state", idleClose: "2s").write(toFile: dir + "/c.toml", atomically: true, encoding: .utf8)
        #expect(try Harness.run(["replay", "--config", dir + "/c.toml", dir + "/events.jsonl"], log: dir + "/replay.log") == 0,
                "see \(dir)/replay.log")

        // tokenmeter report, daily files, by owner.
        let reportPath = dir + "/report.json"
        #expect(try Harness.run(["report", "--dir", dir + "/rollups", "--window", "1d", "--by", "owner", "--format", "json",
                                 "--output", reportPath], log: dir + "/report.log") == 0, "see \(dir)/report.log")
        let report = try String(contentsOfFile: reportPath, encoding: .utf8)
        var fromReport: [String: Figures] = [:]
        for line in report.split(separator: "\n") where line.contains("\"key\":{\"owner\":") {
            let owner = try #require(Self.field(line, "key\":{\"owner", quoted: true))
            fromReport[owner] = Figures(requests: try #require(Int64(Self.field(line, "requests") ?? "")),
                                        cost: try #require(Money.parse(Self.field(line, "cost_usd") ?? "")),
                                        outcomeValue: try #require(Money.parse(Self.field(line, "outcome_value_usd") ?? "")))
        }

        // The recipe, with the test's folder in place of `rollups/`.
        let sql = try Self.recipe()
        #expect(sql.contains("'rollups/1d/*/*.jsonl'"))
        let rows = try Self.duckDB(sql.replacingOccurrences(of: "'rollups/1d/*/*.jsonl'", with: "'\(dir)/rollups/1d/*/*.jsonl'"))
        var fromDuckDB: [String: Figures] = [:]
        for row in rows {
            fromDuckDB[row[0]] = Figures(requests: try #require(Int64(row[1])), cost: try #require(Money.parse(row[2])),
                                         outcomeValue: try #require(Money.parse(row[3])))
        }

        #expect(fromReport.count == Set(expected.byKey.keys.map(\.owner)).count && !fromReport.isEmpty)
        #expect(fromDuckDB == fromReport)
        // The comparison means something only if the money has cents the type guessing would lose.
        let cents = Money.parse("0.01")!
        #expect(fromReport.values.contains { $0.outcomeValue.femtos % (cents.femtos * 100) != 0 })
        #expect(fromReport.values.contains { $0.cost.femtos % cents.femtos != 0 })
    }

    struct Figures: Equatable {
        var requests: Int64
        var cost: Money
        var outcomeValue: Money
    }

    /// The value of `"name":` in one line of the report's json: a number, or with `quoted` a string.
    static func field(_ line: Substring, _ name: String, quoted: Bool = false) -> String? {
        guard let r = line.range(of: "\"\(name)\":" + (quoted ? "\"" : "")) else { return nil }
        let rest = line[r.upperBound...]
        let end = quoted ? rest.firstIndex(of: "\"") : rest.firstIndex { $0 == "," || $0 == "}" }
        return end.map { String(rest[..<$0]) }
    }

    /// Runs `sql` in DuckDB; every row's values as text (DECIMAL as its exact decimal text).
    static func duckDB(_ sql: String) throws -> [[String]] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", """
            import duckdb, json, sys
            rows = duckdb.sql(sys.stdin.read()).fetchall()
            print(json.dumps([[str(v) for v in row] for row in rows]))
            """]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = errors
        try p.run()
        input.fileHandleForWriting.write(Data(sql.utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "duckdb: \(String(decoding: err, as: UTF8.self))")
        return try #require(try JSONSerialization.jsonObject(with: out) as? [[String]])
    }
}
