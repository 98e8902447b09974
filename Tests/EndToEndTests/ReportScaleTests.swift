import Foundation
import Testing
import TokenmeterCore
import TokenmeterReports

/// The scale check of issue 7: `tokenmeter report --by owner` over 1,000,000 rollup rows (4,000 hourly files
/// of 250 rows, about 5.5 months of hourly files), timed and printed. The time is a benchmark, not an
/// assertion; the totals are asserted (they must equal what was written). Runs the report engine in process
/// (the code behind `tokenmeter report`), in whatever configuration the tests were built (debug by default).
@Suite struct ReportScaleTests {
    static let files = 4_000
    static let rowsPerFile = 250

    @Test(.timeLimit(.minutes(10)))
    func reportOverAMillionRows() throws {
        let dir = try Harness.tempDir("report-scale")
        defer { try? FileManager.default.removeItem(atPath: dir) }

        // The 250 keys of every file, preformatted after the window fields; the owners' totals of one file.
        struct Totals { var requests: Int64 = 0, input: Int64 = 0, output: Int64 = 0, cost = Money.zero }
        var suffixes: [[UInt8]] = []
        var perFile: [String: Totals] = [:]
        for i in 0..<Self.rowsPerFile {
            let workflow = "wf-\(i % 25)", owner = "team-\(i % 25 % 8)", model = "model-\(i / 25)"
            let requests = Int64(1 + i % 7), input = Int64(1 + i % 7) * 130, output = Int64(1 + i % 7) * 20
            let cost = "0.\(String(1_000_000 + i * 3_701).dropFirst())"   // 0.000000 … 0.922549, exact decimals
            suffixes.append(Array(("\"workflow\":\"\(workflow)\",\"owner\":\"\(owner)\",\"model\":\"\(model)\",\"provider\":\"openai\","
                + "\"tags\":{\"environment\":\"prod\"},\"requests\":\(requests),\"errors\":0,\"input_tokens\":\(input),"
                + "\"cache_read_tokens\":\(input / 2),\"cache_write_tokens\":0,\"output_tokens\":\(output),\"reasoning_tokens\":0,"
                + "\"cost_usd\":\(cost),\"unpriced_requests\":0,\"outcomes\":{},\"outcome_value_usd\":0,\"late\":false}\n").utf8))
            perFile[owner, default: Totals()].requests += requests
            perFile[owner, default: Totals()].input += input
            perFile[owner, default: Totals()].output += output
            perFile[owner, default: Totals()].cost += try #require(Money.parse(cost))
        }

        // Write: one buffer per file, hourly windows from 2026-01-01.
        let clock = ContinuousClock()
        let writeStarted = clock.now
        let first = RFC3339.parse("2026-01-01T00:00:00Z")!
        var bytes = 0
        var buffer: [UInt8] = []
        buffer.reserveCapacity(Self.rowsPerFile * 360)
        for h in 0..<Self.files {
            let start = first + Int64(h) * 3_600_000
            let startText = RFC3339.format(start), endText = RFC3339.format(start + 3_600_000)
            let folder = "\(dir)/1h/\(startText.prefix(10))"
            if h % 24 == 0 { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            let compact = startText.filter { $0 != "-" && $0 != ":" }
            let prefix = Array("{\"window\":\"1h\",\"window_start\":\"\(startText)\",\"window_end\":\"\(endText)\",".utf8)
            buffer.removeAll(keepingCapacity: true)
            for s in suffixes { buffer.append(contentsOf: prefix); buffer.append(contentsOf: s) }
            bytes += buffer.count
            try Data(buffer).write(to: URL(fileURLWithPath: "\(folder)/\(compact)-scale-p0.jsonl"))
        }
        let writeSecs = seconds(clock.now - writeStarted)

        // Report.
        var q = ReportQuery(dir: dir)
        q.by = [.owner]
        let started = clock.now
        let report = try ReportEngine.run(q, now: first)
        let secs = seconds(clock.now - started)
        let rows = Self.files * Self.rowsPerFile
        print("report scale: \(rows) rows in \(String(format: "%.2f", secs)) s (\(Int(Double(rows) / secs)) rows/s); "
              + "\(Self.files) files, \(bytes / 1_000_000) MB, written in \(String(format: "%.2f", writeSecs)) s")

        #expect(report.window == "1h")
        #expect(report.filesRead == Self.files)
        #expect(report.rowsRead == rows && report.rowsUsed == rows)
        let n = Int64(Self.files)
        var want = Totals()
        for t in perFile.values { want.requests += t.requests; want.input += t.input; want.output += t.output }
        #expect(report.main.total.requests == want.requests * n)
        #expect(report.main.total.inputTokens == want.input * n && report.main.total.outputTokens == want.output * n)
        #expect(report.main.lines.count == perFile.count)
        var wantCost = Money.zero
        for (owner, t) in perFile {
            var cost = Money.zero
            for _ in 0..<Self.files { cost += t.cost }
            wantCost += cost
            let line = try #require(report.main.lines.first { $0.values == [owner] }, "no line for \(owner)")
            #expect(line.current.requests == t.requests * n, "\(owner)")
            #expect(line.current.cost == cost, "\(owner): \(line.current.cost) vs \(cost)")
        }
        #expect(report.main.total.cost == wantCost)
    }

    func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
