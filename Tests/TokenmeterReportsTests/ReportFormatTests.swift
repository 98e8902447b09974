import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TokenmeterCore
import TokenmeterReports

@Suite struct ReportFormatTests {
    let now = RFC3339.parse("2026-12-01T00:00:00Z")!

    func report(_ format: ReportFormat, _ edit: (inout ReportQuery) -> Void = { _ in }) throws -> (Report, String, String) {
        let dir = try ReportFixture.write()
        var q = ReportQuery(dir: dir)
        q.from = RFC3339.parse("2026-11-29T10:00:00Z")
        q.to = RFC3339.parse("2026-11-29T12:00:00Z")
        edit(&q)
        let r = try ReportEngine.run(q, extra: format.extraGroupings, keepRows: format == .focus, now: now)
        return (r, format.render(r), dir)
    }

    /// Splits RFC 4180 CSV (quoted fields may hold commas and quotes).
    func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var it = Array(text).makeIterator()
        while let c = it.next() {
            if quoted {
                if c == "\"" { quoted = false } else { field.append(c) }
            } else if c == "\"" {
                if field.last == "\"" || (!field.isEmpty) { field.append("\"") }
                quoted = true
            } else if c == "," { row.append(field); field = "" }
            else if c == "\r\n" || c == "\n" { row.append(field); rows.append(row); row = []; field = "" }
            else { field.append(c) }
        }
        return rows
    }

    @Test func csvParsesBackAndSumsMatch() throws {
        let (r, text, dir) = try report(.csv) { $0.by = [.owner, .model]; $0.comparePrevious = true }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = parseCSV(text)
        let header = rows[0]
        #expect(Array(header.prefix(4)) == ["owner", "model", "requests", "errors"])
        #expect(header.contains("previous_cost_usd") && header.contains("cost_change_usd"))
        let cost = header.firstIndex(of: "cost_usd")!, req = header.firstIndex(of: "requests")!
        let body = rows.dropFirst()
        #expect(body.count == r.main.lines.count)
        #expect(body.reduce(Money.zero) { $0 + Money.parse($1[cost])! } == r.main.total.cost)
        #expect(body.reduce(Int64(0)) { $0 + Int64($1[req])! } == r.main.total.requests)
        #expect(body.allSatisfy { $0.count == header.count })
        // Golden: exact money, empty for undefined ratios, outcomes as name=count.
        let outcomeLine = try #require(body.first { $0[0] == "finance-ops" && $0[1] == "" })
        #expect(outcomeLine[header.firstIndex(of: "outcomes")!] == "invoice_processed=140")
        #expect(outcomeLine[header.firstIndex(of: "error_share")!] == "")
        let legal = try #require(body.first { $0[0] == "legal" })
        #expect(legal[cost] == "3.000000001")
        #expect(legal[header.firstIndex(of: "cost_change_usd")!] == "2.000000001")   // 1 at 09:00 before
        #expect(ReportCSV.field("a,\"b\"") == "\"a,\"\"b\"\"\"")
    }

    @Test func jsonParsesWithFoundation() throws {
        let (r, text, dir) = try report(.json) { $0.by = [.workflow]; $0.comparePrevious = true }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let o = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(o["window"] as? String == "1h")
        #expect(o["from"] as? String == "2026-11-29T10:00:00Z" && o["previous_from"] as? String == "2026-11-29T08:00:00Z")
        let lines = try #require(o["lines"] as? [[String: Any]])
        #expect(lines.count == r.main.lines.count)
        let total = try #require(o["total"] as? [String: Any])
        #expect((total["requests"] as? NSNumber)?.int64Value == r.main.total.requests)
        // Money is an exact number in the text.
        #expect(text.contains("\"cost_usd\":6.105000001") || text.contains("\"cost_usd\":5.105000001"))
        let cr = try #require(lines.first { ($0["key"] as? [String: Any])?["workflow"] as? String == "contract-review" })
        #expect((cr["cost_usd"] as? NSNumber)?.doubleValue == 3.000000001)
        #expect(cr["cost_change_usd"] != nil)
    }

    @Test func markdownAndTable() throws {
        let (_, md, dir) = try report(.markdown) { $0.by = [.owner] }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(md.contains("| owner | requests |"))
        #expect(md.contains("| --- | ---: |"))
        #expect(md.contains("| legal | 10 |"))
        #expect(md.contains("| **total** |"))
        let (r, _, dir2) = try report(.table) { $0.by = [.owner] }
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        let plain = ReportTableText(color: false).render(r)
        #expect(!plain.contains("\u{1B}[") && plain.contains("total") && plain.contains("3.00"))
        #expect(ReportTableText(color: true).render(r).contains("\u{1B}[1m"))
    }

    @Test func focusColumnsAndValues() throws {
        let (r, text, dir) = try report(.focus)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = parseCSV(text)
        let h = rows[0]
        for c in ["ChargePeriodStart", "ChargePeriodEnd", "BilledCost", "EffectiveCost", "ListCost", "BillingCurrency", "ConsumedQuantity",
                  "ConsumedUnit", "PricingUnit", "ServiceCategory", "ServiceSubcategory", "ServiceName", "ProviderName", "SkuId",
                  "ChargeCategory", "Tags"] {
            #expect(h.contains(c), "missing \(c)")
        }
        func col(_ row: [String], _ name: String) -> String { row[h.firstIndex(of: name)!] }
        let body = Array(rows.dropFirst())
        // Without a price table (no --config) each priced usage row is one line of its recorded cost; the
        // unpriced row is one line per token kind it has (input, output); the outcome row is not a charge.
        #expect(r.rows.filter { $0.model != nil }.count == 6)
        #expect(body.count == 7)
        #expect(body.reduce(Money.zero) { $0 + Money.parse(col($1, "BilledCost"))! } == r.main.total.cost)
        let claude = try #require(body.first { col($0, "SkuId") == "anthropic/claude-sonnet-4-5" })
        #expect(col(claude, "ChargePeriodStart") == "2026-11-29T10:00:00Z" && col(claude, "ChargePeriodEnd") == "2026-11-29T11:00:00Z")
        #expect(col(claude, "BilledCost") == "3.000000001" && col(claude, "ListCost") == "3.000000001")
        #expect(col(claude, "BillingCurrency") == "USD" && col(claude, "ConsumedUnit") == "Tokens" && col(claude, "ConsumedQuantity") == "7000.0")
        #expect(col(claude, "PricingUnit") == "1000000 Tokens" && col(claude, "PricingQuantity") == "0.007")
        #expect(col(claude, "ListUnitPrice").isEmpty && col(claude, "ChargeDescription").contains("no price table"))
        #expect(col(claude, "BillingPeriodStart") == "2026-11-01T00:00:00Z" && col(claude, "BillingPeriodEnd") == "2026-12-01T00:00:00Z")
        #expect(col(claude, "SubAccountId") == "legal" && col(claude, "PublisherName") == "Anthropic")
        #expect(col(claude, "ServiceCategory") == "AI and Machine Learning" && col(claude, "ServiceSubcategory") == "Generative AI")
        #expect(col(claude, "ProviderName") == "Anthropic" && col(claude, "ChargeCategory") == "Usage")
        let tags = try #require(try JSONSerialization.jsonObject(with: Data(col(claude, "Tags").utf8)) as? [String: String])
        #expect(tags == ["workflow": "contract-review", "owner": "legal", "environment": "staging"])
        let llama = try #require(body.first { col($0, "SkuId") == "bedrock/llama-3-70b" })
        #expect(col(llama, "BilledCost") == "0.0" && col(llama, "x_UnpricedRequests") == "5" && col(llama, "ChargeDescription").contains("unpriced"))
        #expect(col(llama, "ServiceName") == "Amazon Bedrock" && col(llama, "PublisherName") == "Meta" && col(llama, "ProviderName") == "AWS")
        #expect(body.filter { col($0, "x_Late") == "true" }.count == 1)
    }

    @Test func htmlIsOneSelfContainedFileWithChartsPerSection() throws {
        let (_, html, dir) = try report(.html) { $0.comparePrevious = true }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.lowercased().contains("<script"))
        // No network references except the SVG namespace.
        let stripped = html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        #expect(!stripped.contains("http://") && !stripped.contains("https://"))
        #expect(!html.contains("<link") && !html.contains("<img"))
        // Well-formed XML (minus the doctype), so it parses as HTML too; the parse also collects, per
        // section, its charts and the texts of their legends and bar labels.
        let body = String(html.drop { $0 != "\n" })
        let parser = XMLParser(data: Data(body.utf8))
        let sections = HTMLSections()
        parser.delegate = sections
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
        // One chart per chart section, with the expected series names.
        let chartSections = ["spend-over-time", "spend-by-owner", "spend-by-provider", "spend-by-model", "cost-per-outcome-over-time",
                             "cache-and-reasoning"]
        for id in chartSections {
            #expect(sections.charts[id] == 1, "\(id) should hold one chart, has \(sections.charts[id] ?? 0)")
            #expect(sectionText(html, id)?.components(separatedBy: "<svg").count == 2, "\(id) should hold one <svg")
        }
        // No other charts, except the movers table's small inline change bars (one per row, in its cells).
        #expect(Set(sections.charts.keys).subtracting(chartSections) == ["movers"],
                "charts outside the chart sections: \(sections.charts)")
        // Spend over time: the fixture's workflows with spend in the span or the previous one, costliest first
        // (log-explainer is unpriced, $0, so it has no bar); invoice-extraction had no spend in the previous
        // span, so it grew the most and is named the biggest mover.
        #expect(sections.legend["spend-over-time"] == ["contract-review", "invoice-extraction (biggest mover)"])
        // By owner: one bar label per owner with spend, costliest first, then owners with only unpriced
        // requests; the legend names the two marks.
        #expect(sections.labels["spend-by-owner"]?.filter { !$0.contains("$") } == ["legal", "finance-ops", "platform-eng", "unpriced"])
        #expect(sections.legend["spend-by-owner"] == ["spend in the span", "previous span"])
        // Cost per outcome: the workflows that reported outcomes.
        #expect(sections.legend["cost-per-outcome-over-time"] == ["invoice-extraction"])
        #expect(sectionText(html, "cost-per-outcome")!.contains("invoice_processed"))
        #expect(sectionText(html, "budgets")!.contains("--config"))
        #expect(sections.legend["cache-and-reasoning"] == ["cache-read share of input", "reasoning share of output"])
        #expect(sectionText(html, "movers")!.contains("<table"))
        #expect(html.contains("2026-11-29T10:00:00Z") && html.contains("generated 2026-12-01T00:00:00Z"))
    }

    func sectionText(_ html: String, _ id: String) -> String? {
        guard let start = html.range(of: "<section id=\"\(id)\"") else { return nil }
        guard let end = html.range(of: "</section>", range: start.upperBound..<html.endIndex) else { return nil }
        return String(html[start.lowerBound..<end.upperBound])
    }
}

/// Walks the report's XML: counts `<svg>` elements per `<section id>`, and collects the texts of
/// `<text class="legend">` and `<text class="label">` inside them.
final class HTMLSections: NSObject, XMLParserDelegate {
    var charts: [String: Int] = [:]
    var legend: [String: [String]] = [:]
    var labels: [String: [String]] = [:]
    private var section = ""
    private var textClass: String?
    private var text = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        switch name {
        case "section": section = attributes["id"] ?? ""
        case "svg": charts[section, default: 0] += 1
        case "text": textClass = attributes["class"]; text = ""
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if textClass != nil { text += string }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        switch name {
        case "section": section = ""
        case "text":
            if textClass == "legend" { legend[section, default: []].append(text) }
            if textClass == "label" { labels[section, default: []].append(text) }
            textClass = nil
        default: break
        }
    }
}
