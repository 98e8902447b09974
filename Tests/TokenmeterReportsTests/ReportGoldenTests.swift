import Foundation
import Testing
import TokenmeterCore
import TokenmeterReports

/// Golden-file tests: each text format over `ReportFixture`, compared byte for byte with a file in
/// `Golden/` (see `GoldenFile` for how to regenerate them). The generation time is fixed, so the outputs
/// are fully determined by the fixture and the query.
@Suite struct ReportGoldenTests {
    let now = RFC3339.parse("2026-12-01T00:00:00Z")!

    func render(_ format: ReportFormat, _ edit: (inout ReportQuery) -> Void) throws -> String {
        let dir = try ReportFixture.write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var q = ReportQuery(dir: dir)
        q.from = RFC3339.parse("2026-11-29T10:00:00Z")
        q.to = RFC3339.parse("2026-11-29T12:00:00Z")
        edit(&q)
        let r = try ReportEngine.run(q, extra: format.extraGroupings, keepRows: format == .focus, now: now)
        return format.render(r)
    }

    /// `--by workflow --from 2026-11-29T11:00:00Z`: exact money, empty cells for undefined ratios.
    @Test func csv() throws {
        try GoldenFile.check(try render(.csv) { $0.by = [.workflow]; $0.from = RFC3339.parse("2026-11-29T11:00:00Z") }, "report.csv")
    }

    /// `--by workflow --compare previous`: keys as objects, exact money numbers, previous figures.
    @Test func json() throws {
        try GoldenFile.check(try render(.json) { $0.by = [.workflow]; $0.comparePrevious = true }, "report.json")
    }

    /// `--by owner,model --compare previous`.
    @Test func markdown() throws {
        try GoldenFile.check(try render(.markdown) { $0.by = [.owner, .model]; $0.comparePrevious = true }, "report.md")
    }

    /// One FOCUS line per usage rollup row of the span (late rows and both writers' partial rows included).
    @Test func focus() throws {
        try GoldenFile.check(try render(.focus) { _ in }, "report.focus.csv")
    }
}
