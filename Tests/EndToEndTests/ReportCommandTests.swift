import Foundation
import Testing
import TokenmeterCore
import TrafficGenerator

/// `tokenmeter replay` writes rollups from generated traffic; `tokenmeter report` (the real binary) reads
/// them back; the totals must equal what the generator computed independently.
@Suite struct ReportCommandTests {
    @Test(.timeLimit(.minutes(3)))
    func reportTotalsEqualTheGeneratorsTotals() throws {
        let dir = try Harness.tempDir("report")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = TrafficConfig(seed: 21, start: RFC3339.parse("2026-11-20T00:00:00Z")!, events: 6_000, spanMillis: 2 * 86_400_000)
        c.badFraction = 0.01
        c.lateFraction = 0.01
        c.duplicateFraction = 0
        var gen = TrafficGenerator(c)
        var expected = ExpectedTotals(prices: Catalogue.referencePrices, windows: [])
        try gen.write(count: 6_000, toFile: dir + "/events.jsonl", into: &expected)
        try Harness.configText(brokers: "127.0.0.1:9", group: "g", topic: "t", dlq: "t-dlq", rollups: dir + "/rollups",
                               state: dir + "/state", idleClose: "2s").write(toFile: dir + "/c.toml", atomically: true, encoding: .utf8)
        #expect(try Harness.run(["replay", "--config", dir + "/c.toml", dir + "/events.jsonl"], log: dir + "/replay.log") == 0)

        func report(_ args: [String]) throws -> String {
            let out = dir + "/out-\(UUID().uuidString.prefix(6))"
            let status = try Harness.run(["report", "--dir", dir + "/rollups", "--output", out] + args, log: dir + "/report.log")
            #expect(status == 0, "see \(dir)/report.log")
            return try String(contentsOfFile: out, encoding: .utf8)
        }
        let want = expected.grandTotal
        for window in ["1m", "1h", "1d"] {
            let csv = try report(["--window", window, "--by", "owner", "--format", "csv"])
            let rows = csv.split(separator: "\r\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            let h = rows[0]
            let body = rows.dropFirst()
            func sum(_ name: String) -> Int64 { body.reduce(0) { $0 + Int64($1[h.firstIndex(of: name)!])! } }
            let cost = body.reduce(Money.zero) { $0 + Money.parse($1[h.firstIndex(of: "cost_usd")!])! }
            #expect(sum("requests") == want.requests, "\(window)")
            #expect(sum("input_tokens") == want.inputTokens && sum("output_tokens") == want.outputTokens, "\(window)")
            #expect(sum("unpriced_requests") == want.unpricedRequests && sum("outcome_count") == want.outcomes.values.reduce(0, +))
            #expect(cost == want.cost, "\(window): \(cost) vs \(want.cost)")
            for owner in Set(expected.byKey.keys.map(\.owner)) {
                let row = try #require(body.first { $0[0] == owner })
                #expect(Money.parse(row[h.firstIndex(of: "cost_usd")!]) == expected.total { $0.owner == owner }.cost)
            }
        }
        // Default window, json: the same totals; html is written and its path printed.
        let json = try report(["--format", "json"])
        let total = try #require((try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["total"] as? [String: Any])
        #expect((total["requests"] as? NSNumber)?.int64Value == want.requests)
        let html = try report(["--format", "html", "--compare", "previous", "--by", "workflow"])
        #expect(html.contains("<svg") && !html.contains("<script"))
    }
}
