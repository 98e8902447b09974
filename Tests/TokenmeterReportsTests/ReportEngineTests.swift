import Foundation
import Testing
import TokenmeterCore
import TokenmeterReports

@Suite struct ReportEngineTests {
    let now = RFC3339.parse("2026-12-01T00:00:00Z")!

    func run(_ dir: String, _ edit: (inout ReportQuery) -> Void = { _ in }, extra: [[ReportDimension]] = [], keepRows: Bool = false) throws -> Report {
        var q = ReportQuery(dir: dir)
        edit(&q)
        return try ReportEngine.run(q, extra: extra, keepRows: keepRows, now: now)
    }

    func line(_ r: Report, _ values: String?...) -> ReportLine? {
        r.main.lines.first { $0.values == values }
    }

    @Test func sumsAreExactAndAdditiveOverWritersLateRowsAndWindowSizes() throws {
        let dir = try ReportFixture.write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let want = ReportFixture.totals(ReportFixture.allHourly)
        for window in [nil, "1h", "1d"] as [String?] {
            let r = try run(dir) { $0.window = window; $0.by = [] }
            let t = r.main.total
            #expect(t.requests == want.requests && t.errors == want.errors && t.inputTokens == want.input && t.outputTokens == want.output)
            #expect(t.cost == want.cost, "window \(window ?? "default"): \(t.cost) vs \(want.cost)")
            #expect(t.cost.decimalString(decimals: 15) == "6.105000001")
            #expect(t.unpricedRequests == 5 && t.outcomeCount == 140 && t.outcomeValue == Money.parse("350")!)
        }
        // Default: the whole day is in a 1d file, so 1d is read.
        #expect(try run(dir).window == "1d")
        // invoice-extraction at 10:00 = writer a (100) + writer b (50) + late (3).
        let r = try run(dir) { $0.from = RFC3339.parse("2026-11-29T10:00:00Z"); $0.to = RFC3339.parse("2026-11-29T11:00:00Z") }
        #expect(r.window == "1h")
        let inv = try #require(line(r, "invoice-extraction"))
        #expect(inv.current.requests == 153)
        #expect(inv.current.cost == Money.parse("1.905")!)
        #expect(inv.current.outcomeCount == 140)
        #expect(inv.current.costPerOutcome == Money.parse("1.905")!.divided(by: 140))
        #expect(inv.current.rows == 4)
    }

    @Test func fromToKeepRowsWhoseWindowLiesInside() throws {
        let dir = try ReportFixture.write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(dir) { $0.from = RFC3339.parse("2026-11-29T10:00:00Z"); $0.to = RFC3339.parse("2026-11-29T12:00:00Z"); $0.by = [] }
        let want = ReportFixture.totals(ReportFixture.allHourly.filter { $0.start >= "2026-11-29T10" })
        #expect(r.main.total.requests == want.requests && r.main.total.cost == want.cost)
        // A span inside one day: the 1d window does not lie inside, so 1h is read.
        #expect(r.window == "1h")
        // Dates are midnight UTC.
        let d = try run(dir) { $0.from = ReportQuery.parseTime("2026-11-29"); $0.to = ReportQuery.parseTime("2026-11-30") }
        #expect(d.window == "1d" && d.main.total.cost == ReportFixture.totals(ReportFixture.allHourly).cost)
    }

    @Test func filtersWithGlobs() throws {
        let dir = try ReportFixture.write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let all = ReportFixture.allHourly
        func total(_ edit: (inout ReportQuery) throws -> Void) throws -> Money {
            var q = ReportQuery(dir: dir)
            q.window = "1h"
            try edit(&q)
            return try ReportEngine.run(q, now: now).main.total.cost
        }
        #expect(try total { $0.filter.owners = ReportFilter.globs(["fin*"]) } == ReportFixture.totals(all.filter { $0.owner == "finance-ops" }).cost)
        #expect(try total { $0.filter.models = ReportFilter.globs(["claude-*"]) } == Money.parse("4.000000001")!)
        #expect(try total { $0.filter.workflows = ReportFilter.globs(["*-review,log-?xplainer"]) } == Money.parse("4.000000001")!)
        #expect(try total { $0.filter.tags = [try ReportFilter.tag("environment=st*")] } == Money.parse("4.000000001")!)
        #expect(try total { $0.filter.providers = ReportFilter.globs(["nobody"]) } == .zero)
        // --model leaves outcome rows out (they have no model); --owner keeps them.
        #expect(try run(dir) { $0.filter.models = ReportFilter.globs(["*"]) }.main.total.outcomeCount == 0)
        #expect(try run(dir) { $0.filter.owners = ReportFilter.globs(["finance-ops"]) }.main.total.outcomeCount == 140)
    }

    @Test func groupByAnyDimensions() throws {
        let dir = try ReportFixture.write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let byOwnerModel = try run(dir) { $0.by = [.owner, .model] }
        #expect(byOwnerModel.main.lines.count == 4)   // finance-ops/gpt-4o, finance-ops/null (outcomes), legal, platform-eng
        #expect(line(byOwnerModel, "finance-ops", nil)?.current.outcomeCount == 140)
        #expect(line(byOwnerModel, "legal", "claude-sonnet-4-5")?.current.cost == Money.parse("4.000000001")!)
        let byHour = try run(dir) { $0.by = [.hour] }
        #expect(byHour.window == "1h")
        #expect(byHour.main.lines.map { $0.values[0]! } == ["2026-11-29T09:00:00Z", "2026-11-29T10:00:00Z", "2026-11-29T11:00:00Z"])
        #expect(byHour.main.lines[1].current.cost == Money.parse("4.905000001")!)
        let byDayTag = try run(dir) { $0.by = try! ReportDimension.parseList("day,tag:environment") }
        #expect(line(byDayTag, "2026-11-29", "staging")?.current.requests == 14)
        #expect(line(byDayTag, "2026-11-29", nil)?.current.outcomeCount == 140)
        #expect(throws: ReportError.self) { try ReportDimension.parseList("day,hour") }
        #expect(throws: ReportError.self) { try ReportDimension.parseList("colour") }
        // Rows are sorted by cost, and --top folds the rest into (other) so sums still match.
        let top = try run(dir) { $0.top = 1 }
        #expect(top.main.lines.count == 2 && top.main.lines[0].values == ["contract-review"] && top.main.lines[1].isOther)
        #expect(top.main.lines.reduce(Money.zero) { $0 + $1.current.cost } == top.main.total.cost)
    }

    @Test func modelFamilyDropsTheDateSnapshot() throws {
        #expect(ModelFamily.of("claude-haiku-4-5-20251001") == "claude-haiku-4-5")
        #expect(ModelFamily.of("gpt-4o-mini-2024-07-18") == "gpt-4o-mini")
        #expect(ModelFamily.of("claude-haiku-4-5") == "claude-haiku-4-5")
        #expect(ModelFamily.of("gemini-2.5-pro-preview-05-06") == "gemini-2.5-pro-preview-05-06")   // not a full date
        #expect(ModelFamily.of("gpt-4-0613") == "gpt-4-0613")
        #expect(ModelFamily.of("-20251001") == "-20251001")   // nothing left: kept
        #expect(try ReportDimension.parseList("model_family,provider") == [.modelFamily, .provider])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tm-family-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func row(_ model: String?, _ requests: Int64, _ cost: String) -> ReportFixture.Row {
            ReportFixture.Row(start: "2026-11-29T10:00:00Z", workflow: "w", owner: "o", model: model, provider: "anthropic",
                              requests: requests, cost: cost)
        }
        try ReportFixture.put(dir, "1h", [row("claude-haiku-4-5", 2, "0.5"), row("claude-haiku-4-5-20251001", 3, "0.25"),
                                          row("gpt-4o-mini-2024-07-18", 1, "0.1"), row(nil, 0, "0")], name: "20261129T100000Z-a")
        let r = try run(dir) { $0.by = [.modelFamily] }
        #expect(r.main.lines.map(\.values) == [["claude-haiku-4-5"], ["gpt-4o-mini"], [nil]])
        #expect(line(r, "claude-haiku-4-5")?.current.requests == 5)
        #expect(line(r, "claude-haiku-4-5")?.current.cost == Money.parse("0.75")!)
        #expect(r.main.total.cost == Money.parse("0.85")!)
    }

    @Test func windowChoice() throws {
        let dir = try ReportFixture.write(extraOpenHour: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The next day has an hourly file but no daily file yet: 1d would miss it, so 1h is read.
        let r = try run(dir)
        #expect(r.window == "1h", "\(r.windowReason)")
        #expect(r.main.total.requests == ReportFixture.totals(ReportFixture.allHourly).requests + 7)
        // The closed day alone: 1d covers it.
        let d = try run(dir) { $0.from = ReportQuery.parseTime("2026-11-29"); $0.to = ReportQuery.parseTime("2026-11-30") }
        #expect(d.window == "1d")
        #expect(d.windowReason.contains("largest"))
        // --by hour needs a size that divides an hour.
        #expect(try run(dir) { $0.by = [.hour]; $0.from = ReportQuery.parseTime("2026-11-29"); $0.to = ReportQuery.parseTime("2026-11-30") }.window == "1h")
        #expect(throws: ReportError.self) { try run(dir) { $0.by = [.hour]; $0.window = "1d" } }
        #expect(throws: ReportError.self) { try run(dir) { $0.window = "5m" } }
        // Without a daily folder at all, hourly is the only choice.
        let hourlyOnly = try ReportFixture.write(daily: false)
        defer { try? FileManager.default.removeItem(atPath: hourlyOnly) }
        #expect(try run(hourlyOnly).window == "1h")
    }

    @Test func comparePrevious() throws {
        let dir = try ReportFixture.write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(dir) {
            $0.from = RFC3339.parse("2026-11-29T10:00:00Z"); $0.to = RFC3339.parse("2026-11-29T11:00:00Z"); $0.comparePrevious = true
        }
        #expect(r.previousFrom == RFC3339.parse("2026-11-29T09:00:00Z"))
        let cr = try #require(line(r, "contract-review"))
        #expect(cr.previous?.cost == Money.parse("1")!)
        #expect(cr.costChange == Money.parse("2.000000001")!)
        #expect(abs(cr.costChangeRatio! - 2.000000001) < 1e-12)
        let inv = try #require(line(r, "invoice-extraction"))
        #expect(inv.previous?.cost == .zero && inv.costChangeRatio == nil)
        #expect(r.main.previousTotal?.cost == Money.parse("1")!)
        #expect(r.main.movers.first?.values == ["contract-review"] || r.main.movers.first?.values == ["invoice-extraction"])
        #expect(r.main.movers.map { $0.costChange! }.first == Money.parse("2.000000001")!)
        // A key only in the previous span shows up with zero now.
        let later = try run(dir) {
            $0.from = RFC3339.parse("2026-11-29T11:00:00Z"); $0.to = RFC3339.parse("2026-11-29T12:00:00Z"); $0.comparePrevious = true
        }
        let gone = try #require(later.main.lines.first { $0.values == ["contract-review"] })
        #expect(gone.current.cost == .zero && gone.previous?.cost == Money.parse("3.000000001")!)
        // By hour: the previous span's hours line up with the span's.
        let hourly = try run(dir) {
            $0.by = [.hour]; $0.from = RFC3339.parse("2026-11-29T10:00:00Z"); $0.to = RFC3339.parse("2026-11-29T12:00:00Z"); $0.comparePrevious = true
        }
        #expect(hourly.main.lines.first { $0.values == ["2026-11-29T11:00:00Z"] }?.previous?.cost == Money.parse("1")!)
    }

    @Test func readerMatchesRollupRowsAndReportsBadLines() throws {
        let dir = try ReportFixture.write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = try RollupReader.read(dir: dir, window: "1h")
        #expect(rows.count == ReportFixture.allHourly.count)
        let outcome = try #require(rows.first { $0.model == nil })
        #expect(outcome.outcomes == ["invoice_processed": 140] && outcome.counters.outcomeValue == Money.parse("350")!)
        #expect(rows.contains { $0.late } && rows.contains { $0.tags["environment"] == "staging" })
        try "{\"window\":\"1h\",\"requests\":1.5}\n".write(toFile: dir + "/1h/2026-11-29/20261129T120000Z-bad.jsonl", atomically: true, encoding: .utf8)
        #expect(throws: ReportError.self) { try run(dir) { $0.window = "1h" } }
    }
}
