import Foundation
import Testing
import TokenmeterCore
import TrafficGenerator

/// `tokenmeter report --format focus` over rollups that `tokenmeter replay` wrote from generated traffic
/// (three days, eight owners, prompt-cache reads and writes, reasoning, an unpriced Bedrock Llama, events
/// with their own `cost_usd`, late events), checked line by line and, when installed, by the FinOps
/// Foundation's own validator.
@Suite(.serialized) struct FocusExportTests {
    /// The FOCUS validator's virtual environment (scripts/install-report-tools.sh puts it there in CI).
    static let validatorVenv = ProcessInfo.processInfo.environment["TOKENMETER_FOCUS_VALIDATOR"]
        ?? "/var/cache/tokenmeter-ci/focus-validator"
    static var validator: String { validatorVenv + "/bin/focus-validator" }
    static var validatorInstalled: Bool { FileManager.default.isExecutableFile(atPath: validator) }

    struct Export {
        var dir: String
        var csv: String
        var header: [String]
        var rows: [[String]]
        var expected: ExpectedTotals
        func column(_ name: String) -> Int { header.firstIndex(of: name)! }
    }

    static func export() throws -> Export {
        let dir = try Harness.tempDir("focus")
        var c = TrafficConfig(seed: 18, start: RFC3339.parse("2026-11-29T00:00:00Z")!, events: 8_000, spanMillis: 3 * 86_400_000)
        c.badFraction = 0
        c.lateFraction = 0.02
        c.costOverrideFraction = 0.01
        var gen = TrafficGenerator(c)
        var expected = ExpectedTotals(prices: Catalogue.referencePrices, windows: [])
        try gen.write(count: 8_000, toFile: dir + "/events.jsonl", into: &expected)
        let config = Harness.configText(brokers: "127.0.0.1:9", group: "g", topic: "t", dlq: "t-dlq", rollups: dir + "/rollups",
                                        state: dir + "/state", idleClose: "2s", windows: ["1h", "1d"]) + """

            [focus]
            billing_account_id = "acme-llm"
            billing_account_name = "ACME generative AI"

            [[budget]]
            name = "finance-monthly"
            owner = "finance-ops"
            period = "month"
            amount_usd = 200
            thresholds = [50, 80, 100]
            forecast = true

            [[budget]]
            name = "all-daily"
            period = "day"
            amount_usd = 40
            thresholds = [80, 100]
            """
        try config.write(toFile: dir + "/c.toml", atomically: true, encoding: .utf8)
        #expect(try Harness.run(["replay", "--config", dir + "/c.toml", dir + "/events.jsonl"], log: dir + "/replay.log") == 0)
        let out = dir + "/focus.csv"
        let status = try Harness.run(["report", "--dir", dir + "/rollups", "--config", dir + "/c.toml", "--format", "focus",
                                      "--output", out], log: dir + "/report.log")
        #expect(status == 0, "see \(dir)/report.log")
        let csv = try String(contentsOfFile: out, encoding: .utf8)
        let table = parseCSV(csv)
        return Export(dir: dir, csv: out, header: table[0], rows: Array(table.dropFirst()), expected: expected)
    }

    /// Every line with a unit price: ListUnitPrice (per 1M tokens) x PricingQuantity (millions of tokens) is
    /// ListCost exactly; BilledCost adds up to the generator's own total to the femto-dollar; the hosted
    /// Llama is published by Meta and provided by AWS; unpriced lines have no price and cost 0.
    @Test(.timeLimit(.minutes(3)))
    func unitPriceTimesQuantityIsTheCostAndTheLinesAddUp() throws {
        let e = try Self.export()
        defer { try? FileManager.default.removeItem(atPath: e.dir) }
        #expect(e.rows.count > 1_000)
        let billed = e.column("BilledCost"), list = e.column("ListCost"), unit = e.column("ListUnitPrice")
        let qty = e.column("PricingQuantity"), contracted = e.column("ContractedUnitPrice"), meter = e.column("SkuMeter")
        var total = Money.zero
        var priced = 0, unpriced = 0, recorded = 0
        var meters: Set<String> = []
        for r in e.rows {
            let cost = try #require(Money.parse(r[billed]))
            total += cost
            #expect(r[list] == r[billed] && r[e.column("EffectiveCost")] == r[billed])
            if r[unit].isEmpty {
                if cost == .zero { unpriced += 1 } else { recorded += 1 }
                continue
            }
            priced += 1
            meters.insert(r[meter])
            // nano-dollars per 1M tokens x micro-millions of tokens = femto-dollars: exact integers.
            let price = try #require(FixedDecimal.parse(r[unit], scale: 9))
            let millions = try #require(FixedDecimal.parse(r[qty], scale: 6))
            #expect(Money(femtos: price * millions) == Money.parse(r[list]), "\(r)")
            #expect(r[contracted] == r[unit])
            #expect(r[e.column("PricingUnit")] == "1000000 Tokens")
        }
        #expect(total == e.expected.grandTotal.cost, "sum of BilledCost \(total) vs the generator's \(e.expected.grandTotal.cost)")
        #expect(priced > 1_000 && unpriced > 0 && recorded > 0, "priced \(priced), unpriced \(unpriced), recorded \(recorded)")
        #expect(meters.isSuperset(of: ["Input Tokens", "Cache Read Tokens", "Cache Write Tokens", "Output Tokens", "Reasoning Tokens"]))
        // (Rows whose events named no provider are the decoder's business: only Bedrock's rows are checked.)
        let llama = e.rows.filter { $0[e.column("x_Model")].hasPrefix("meta.llama") && $0[e.column("x_Provider")] == "bedrock" }
        #expect(!llama.isEmpty)
        for r in llama {
            #expect(r[e.column("PublisherName")] == "Meta" && r[e.column("ProviderName")] == "AWS")
            #expect(r[e.column("ServiceName")] == "Amazon Bedrock" && r[unit].isEmpty)
        }
        #expect(Set(e.rows.map { $0[e.column("SubAccountId")] }).count == Catalogue.owners.count)
        #expect(Set(e.rows.map { $0[e.column("BillingAccountId")] }) == ["acme-llm"])
        #expect(e.rows.allSatisfy { $0[e.column("CommitmentDiscountStatus")].isEmpty && $0[e.column("ChargeCategory")] == "Usage" })
        #expect(e.rows.contains { $0[e.column("x_Late")] == "true" })
        // Additive x_ columns: requests add up to the generator's.
        #expect(e.rows.reduce(Int64(0)) { $0 + Int64($1[e.column("x_Requests")])! } == e.expected.grandTotal.requests)
    }

    /// The FinOps Foundation's validator (FOCUS 1.2 rules) on the export, with the applicability criteria
    /// that hold for tokenmeter's data. Rules that no FOCUS file can pass with this validator are named
    /// and checked to fail only in the way the validator's model makes unavoidable.
    @Test(.timeLimit(.minutes(5)),
          .enabled(if: FocusExportTests.validatorInstalled,
                   "focus-validator is not installed (scripts/install-report-tools.sh installs it; CI always has it)"))
    func theFinOpsFoundationsValidatorAcceptsTheExport() throws {
        let e = try Self.export()
        // Removed at the end when every rule passed; kept (with validator.txt) when one failed.
        // The validator reads the ISO 4217 list from focus_validator/rules/currency_codes.csv under its working
        // directory (it cannot download it here); the package ships one.
        let package = try #require(try FileManager.default.contentsOfDirectory(atPath: Self.validatorVenv + "/lib")
            .first { $0.hasPrefix("python3") }).map { Self.validatorVenv + "/lib/" + $0 + "/site-packages/focus_validator" }!
        let work = e.dir + "/validator"
        try FileManager.default.createDirectory(atPath: work + "/focus_validator/rules", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: package + "/rules/currency_codes.csv", toPath: work + "/focus_validator/rules/currency_codes.csv")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.validator)
        p.currentDirectoryURL = URL(fileURLWithPath: work)
        p.arguments = ["--data-file", e.csv, "--validate-version", "1.2", "--block-download", "--rule-set-path", package + "/rules",
                       "--show-violations", "--applicability-criteria",
                       "ACCOUNT_NAMING_SUPPORTED,PUBLIC_PRICE_LIST_SUPPORTED,USAGE_MEASUREMENT_SUPPORTED,UNIT_PRICING_SUPPORTED,"
                       + "SUB_ACCOUNT_SUPPORTED,TAGGING_SUPPORTED"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        try output.write(toFile: e.dir + "/validator.txt", atomically: true, encoding: .utf8)
        let totals = try #require(output.split(separator: "\n").first { $0.hasPrefix("Total: ") }, "no summary: \(output.suffix(2000))")
        let failed = Set(output.split(separator: "\n").filter { $0.hasPrefix("❌ ") }.map { String($0.dropFirst(2).prefix { $0 != ":" }) })
        let passed = Set(output.split(separator: "\n").filter { $0.hasPrefix("✅ ") }.map { String($0.dropFirst(2).prefix { $0 != ":" }) })
        // No rule may fail, except one of a pair that no file with a line can pass, and only while the
        // validator's own rule file makes it so: InvoiceId-C-004-C ("InvoiceId MUST be null") and -C-005-C
        // ("MUST NOT be null") both run on every line, without the condition the spec gives each (not invoiced,
        // invoiced); what the spec asks is their OR, InvoiceId-C-003-C, which must pass. Lines carry the month's
        // chargeback statement id, so -C-005-C passes and -C-004-C fails.
        let contradictory = try Self.unconditionalNullabilityPair(package + "/rules", "InvoiceId-C-004-C", "InvoiceId-C-005-C")
        let allowed: Set<String> = contradictory ? ["InvoiceId-C-004-C"] : []
        #expect(failed.isSubset(of: allowed), "\(totals); failed: \(failed.subtracting(allowed).sorted()); see \(e.dir)/validator.txt")
        #expect(passed.contains("InvoiceId-C-003-C") && passed.contains("InvoiceId-C-005-C"))
        // The ConsumedQuantity rules read CommitmentDiscountStatus: with the column (null) they run, and pass.
        for id in ["ConsumedQuantity-C-000-C", "ConsumedQuantity-C-003-C", "ConsumedQuantity-C-004-C", "ConsumedQuantity-C-005-C",
                   "ConsumedQuantity-C-006-C"] {
            #expect(passed.contains(id), "\(id) did not pass: \(totals)")
        }
        // What the issue saw failing: mandatory columns, account, unit format, quantities, prices.
        for id in ["BillingAccountName-C-000-M", "BillingPeriodStart-C-000-M", "BillingPeriodEnd-C-000-M", "ChargeClass-C-000-M",
                   "BillingAccountId-C-000-M", "PricingUnit-C-000-M", "PricingQuantity-C-000-M", "ListUnitPrice-C-000-C",
                   "PublisherName-C-000-M", "SkuId-C-000-C"] {
            #expect(passed.contains(id), "\(id) did not pass: \(totals)")
        }
        if failed.isSubset(of: allowed) { try? FileManager.default.removeItem(atPath: e.dir) }
    }

    /// Whether the validator's rule file (model-*.json) holds `null` and `notNull` as the two rules'
    /// requirements (CheckValue and CheckNotValue of null on the same column) with no condition on either:
    /// then every line violates one of them.
    static func unconditionalNullabilityPair(_ rules: String, _ null: String, _ notNull: String) throws -> Bool {
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: rules).first { $0.hasPrefix("model-1.2") })
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: rules + "/" + file)))
        let model = try #require((json as? [String: Any])?["ModelRules"] as? [String: Any])
        func criteria(_ id: String) -> (function: String, column: String, valueIsNull: Bool, unconditional: Bool)? {
            guard let rule = model[id] as? [String: Any], let v = rule["ValidationCriteria"] as? [String: Any],
                  let r = v["Requirement"] as? [String: Any], let f = r["CheckFunction"] as? String,
                  let c = r["ColumnName"] as? String else { return nil }
            let condition = v["Condition"] as? [String: Any] ?? [:]
            return (f, c, r["Value"] is NSNull, condition.isEmpty && (rule["ApplicabilityCriteria"] as? [Any] ?? []).isEmpty)
        }
        guard let a = criteria(null), let b = criteria(notNull) else { return false }
        return a.function == "CheckValue" && b.function == "CheckNotValue" && a.column == b.column && a.valueIsNull && b.valueIsNull
            && a.unconditional && b.unconditional
    }
}

/// RFC 4180 fields: quoted fields may hold commas, doubled quotes and line breaks.
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = [], row: [String] = [], field = ""
    var quoted = false, i = text.unicodeScalars.startIndex
    let s = text.unicodeScalars
    while i < s.endIndex {
        let c = s[i]
        if quoted {
            if c == "\"" {
                let n = s.index(after: i)
                if n < s.endIndex && s[n] == "\"" { field.unicodeScalars.append("\""); i = n } else { quoted = false }
            } else { field.unicodeScalars.append(c) }
        } else if c == "\"" {
            quoted = true
        } else if c == "," {
            row.append(field); field = ""
        } else if c == "\r" {
        } else if c == "\n" {
            row.append(field); rows.append(row); row = []; field = ""
        } else { field.unicodeScalars.append(c) }
        i = s.index(after: i)
    }
    if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
    return rows
}
