import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TokenmeterCore

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

    @Test func csvGolden() throws {
        let (_, text, dir) = try report(.csv) { $0.by = [.workflow]; $0.from = RFC3339.parse("2026-11-29T11:00:00Z") }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let golden = """
        workflow,requests,errors,error_share,input_tokens,cache_read_tokens,cache_write_tokens,output_tokens,reasoning_tokens,cost_usd,share_of_total,cost_per_1k_requests_usd,outcomes,outcome_count,cost_per_outcome_usd,outcome_value_usd,value_per_cost,cache_read_share,reasoning_share,unpriced_requests,rollup_rows\r
        invoice-extraction,20,0,0,200,80,0,40,0,0.2,1,10,,0,,0,,0.4,0,0,1\r
        log-explainer,5,0,0,900,0,0,100,0,0,0,0,,0,,0,,0,0,5,1\r

        """
        #expect(text == golden)
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
        // One line per usage rollup row: the outcome row is not a charge.
        #expect(body.count == r.rows.filter { $0.model != nil }.count)
        #expect(body.count == 6)
        #expect(body.reduce(Money.zero) { $0 + Money.parse(col($1, "BilledCost"))! } == r.main.total.cost)
        let claude = try #require(body.first { col($0, "SkuId") == "claude-sonnet-4-5" })
        #expect(col(claude, "ChargePeriodStart") == "2026-11-29T10:00:00Z" && col(claude, "ChargePeriodEnd") == "2026-11-29T11:00:00Z")
        #expect(col(claude, "BilledCost") == "3.000000001" && col(claude, "ListCost") == "3.000000001")
        #expect(col(claude, "BillingCurrency") == "USD" && col(claude, "ConsumedUnit") == "Tokens" && col(claude, "ConsumedQuantity") == "7000")
        #expect(col(claude, "PricingUnit") == "1M Tokens" && col(claude, "PricingQuantity") == "0.007")
        #expect(col(claude, "ServiceCategory") == "AI and Machine Learning" && col(claude, "ServiceSubcategory") == "Generative AI")
        #expect(col(claude, "ProviderName") == "Anthropic" && col(claude, "ChargeCategory") == "Usage")
        let tags = try #require(try JSONSerialization.jsonObject(with: Data(col(claude, "Tags").utf8)) as? [String: String])
        #expect(tags == ["workflow": "contract-review", "owner": "legal", "environment": "staging"])
        let llama = try #require(body.first { col($0, "SkuId") == "llama-3-70b" })
        #expect(col(llama, "BilledCost") == "0" && col(llama, "x_UnpricedRequests") == "5" && col(llama, "ChargeDescription").contains("unpriced"))
        #expect(col(llama, "ServiceName") == "Amazon Bedrock")
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
        // Well-formed XML (minus the doctype), so it parses as HTML too.
        let body = String(html.drop { $0 != "\n" })
        let parser = XMLParser(data: Data(body.utf8))
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
        // One chart per chart section, with the expected series names.
        for id in ["spend-over-time", "spend-by-owner", "cost-per-outcome", "cache-and-reasoning"] {
            let section = try #require(sectionText(html, id), "missing section \(id)")
            #expect(section.components(separatedBy: "<svg").count - 1 == 1, "\(id) should hold one chart")
        }
        #expect(sectionText(html, "spend-over-time")!.contains(">contract-review</text>"))
        #expect(sectionText(html, "spend-over-time")!.contains(">invoice-extraction</text>"))
        #expect(sectionText(html, "spend-by-owner")!.contains(">finance-ops</text>"))
        #expect(sectionText(html, "cost-per-outcome")!.contains(">invoice-extraction</text>"))
        #expect(sectionText(html, "cache-and-reasoning")!.contains("cache-read share of input"))
        #expect(sectionText(html, "movers")!.contains("<table"))
        #expect(html.contains("2026-11-29T10:00:00Z") && html.contains("generated 2026-12-01T00:00:00Z"))
    }

    func sectionText(_ html: String, _ id: String) -> String? {
        guard let start = html.range(of: "<section id=\"\(id)\"") else { return nil }
        guard let end = html.range(of: "</section>", range: start.upperBound..<html.endIndex) else { return nil }
        return String(html[start.lowerBound..<end.upperBound])
    }
}
