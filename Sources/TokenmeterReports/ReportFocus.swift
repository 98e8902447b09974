import TokenmeterCore

/// `--format focus`: a FinOps FOCUS 1.2 cost and usage CSV (what FinOps teams load into their cost tools),
/// one line per price dimension of each usage rollup row of the chosen window in the span (after filters;
/// `--by` and `--top` do not apply). docs/reports.md has the mapping column by column; in short:
/// - Billing account from `[focus]` in the config (or the command line); sub-account = the row's owner;
///   billing period = the calendar month (UTC) of the charge; charge period = the rollup window.
/// - Each rollup row is split into its priced dimensions (`FocusCharge`): input, cache read, cache write,
///   1-hour cache write, output, reasoning, each with its tokens (`ConsumedQuantity`, and in millions as
///   `PricingQuantity` with `PricingUnit` `1000000 Tokens`) and the configured price per 1M tokens
///   (`ListUnitPrice` = `ContractedUnitPrice`), so that unit price x pricing quantity = cost exactly.
///   Costs are list costs: tokenmeter knows no discounts, so all four cost columns are equal.
/// - A row whose cost no price entry reproduces is one line of its recorded cost without unit price; a
///   row of unpriced requests is lines of cost 0 without unit price, and `ChargeDescription` says so.
/// - `CommitmentDiscountStatus` is null on every line: tokenmeter knows no commitment discounts. The column
///   is there because the FOCUS rules for `ConsumedQuantity` (null unless a usage charge, not null for a
///   usage charge whose commitment is not "Unused") are written over it, and cannot be checked without it.
/// - Additive `x_` columns (requests, errors, unpriced requests, outcomes) are on the first line of each
///   rollup row only, so sums over lines are right.
/// - Outcome rows (no model, no cost) are not charges: their counts go to `x_Outcomes` of the first line
///   with the same window, workflow, owner and tags (outcomes of a key with no usage in that window are
///   left out of this export).
public enum ReportFocus {
    public struct Options: Sendable {
        public var account = FocusSettings()
        /// The price table the rows are repriced with (`--config`); nil: every priced row is one line of its
        /// recorded cost.
        public var prices: PriceTable?
        public init(account: FocusSettings = FocusSettings(), prices: PriceTable? = nil) {
            self.account = account; self.prices = prices
        }
        /// The config's `[focus]` account and `[[price]]` table (defaults without a config; no table when it
        /// has no prices).
        public init(_ config: TokenmeterConfig?) {
            account = config?.focus ?? FocusSettings()
            prices = config.flatMap { $0.prices.isEmpty ? nil : PriceTable($0.prices) }
        }
    }

    public static let columns = [
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
        "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
        "CommitmentDiscountStatus", "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName",
        "InvoiceId", "ListCost", "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingCurrencyContractedUnitPrice",
        "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "PricingQuantity", "PricingUnit", "ProviderName",
        "PublisherName", "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId",
        "SubAccountId", "SubAccountName", "Tags",
        "x_Workflow", "x_Owner", "x_Model", "x_Provider", "x_Requests", "x_Errors", "x_UnpricedRequests", "x_Outcomes",
        "x_OutcomeValue", "x_Late", "x_Window",
    ]

    public static func render(_ r: Report, options: Options = Options()) -> String {
        var out = columns.joined(separator: ",") + "\r\n"
        for line in lines(r, options: options) {
            out += line.map(ReportCSV.field).joined(separator: ",") + "\r\n"
        }
        return out
    }

    /// Every line's cells, in `columns` order.
    public static func lines(_ r: Report, options: Options = Options()) -> [[String]] {
        // Only rows of the span itself (with --compare, the previous span's rows are read too).
        let rows = r.rows.filter { $0.windowStart >= r.from }
        var outcomes: [OutcomeKey: (counts: [String: Int64], value: Money)] = [:]
        for row in rows where !isUsage(row) && !row.outcomes.isEmpty {
            let k = OutcomeKey(row)
            var o = outcomes[k] ?? ([:], .zero)
            for (name, n) in row.outcomes { o.counts[name, default: 0] += n }
            o.value += row.counters.outcomeValue
            outcomes[k] = o
        }
        var out: [[String]] = []
        for row in rows where isUsage(row) {
            let charges = FocusCharge.charges(row, prices: options.prices)
            for (i, charge) in charges.enumerated() {
                var o: (counts: [String: Int64], value: Money)? = nil
                if i == 0 { o = outcomes.removeValue(forKey: OutcomeKey(row)) }
                out.append(line(row, charge, first: i == 0, outcomes: o, options: options))
            }
        }
        return out
    }

    /// Usage rows carry a model or requests; outcome rows have neither.
    public static func isUsage(_ row: RollupRow) -> Bool {
        row.model != nil || row.counters.requests != 0
    }

    struct OutcomeKey: Hashable {
        var windowStart: EpochMillis
        var workflow: String
        var owner: String
        var tags: [String: String]
        init(_ r: RollupRow) { windowStart = r.windowStart; workflow = r.workflow; owner = r.owner; tags = r.tags }
    }

    static func line(_ row: RollupRow, _ charge: FocusCharge, first: Bool, outcomes: (counts: [String: Int64], value: Money)?,
                     options: Options) -> [String] {
        let c = row.counters
        let model = row.model ?? "unknown-model"
        let (provider, service) = names(row.provider)
        let publisher = publisherName(model: model, provider: row.provider)
        let month = AlertPeriods.bounds(.month, containing: row.windowStart)
        let skuId = (row.provider ?? "unknown") + "/" + model
        let cost = decimal(charge.cost.femtos, scale: 15)
        var unitPrice = "", category = "", skuPriceId = "", meter = "Tokens", description: String
        var details = "{" + jsonString("x_TokenKind") + ":" + jsonString(charge.dimension?.priceKey ?? "all")
        let tokens = charge.tokens
        switch charge.pricing {
        case .entry(let i):
            let e = options.prices!.entries[i]
            unitPrice = decimal(Int128(charge.unitPrice!.nanos), scale: 9)
            category = "Standard"
            details += "," + jsonString("x_PriceEntry") + ":" + jsonString(priceEntryId(e))
            meter = charge.dimension!.meter
            skuPriceId = skuId + ":" + charge.dimension!.priceKey + ":" + priceEntryId(e)
            description = "\(model) \(meter.lowercased()) for \(row.workflow), at $\(charge.unitPrice!) per 1M tokens"
        case .unpriced:
            meter = charge.dimension!.meter
            details += "," + jsonString("x_Priced") + ":false"
            skuPriceId = skuId + ":" + charge.dimension!.priceKey + ":unpriced"
            description = "\(model) \(meter.lowercased()) for \(row.workflow): no price configured, cost not included "
                + "(\(c.unpricedRequests) unpriced requests)"
        case .recorded(let why):
            skuPriceId = skuId + ":recorded"
            details += "," + jsonString("x_CostAsRecorded") + ":true"
            description = "\(model) tokens for \(row.workflow), cost as recorded: \(why)"
        }
        details += "}"
        var tags = "{" + jsonString("workflow") + ":" + jsonString(row.workflow) + "," + jsonString("owner") + ":" + jsonString(row.owner)
        for (k, v) in row.tags.sorted(by: { $0.key < $1.key }) where k != "workflow" && k != "owner" {
            tags += "," + jsonString(k) + ":" + jsonString(v)
        }
        tags += "}"
        var outcomeText = "", outcomeValue = ""
        if first {
            let o = outcomes ?? ([:], .zero)
            outcomeText = "{" + o.counts.sorted { $0.key < $1.key }.map { jsonString($0.key) + ":" + String($0.value) }.joined(separator: ",") + "}"
            outcomeValue = ReportText.exact(o.value)
        }
        let firstOnly: (Int64) -> String = { first ? String($0) : "0" }
        return [
            cost, options.account.billingAccountId, options.account.billingAccountName, "USD",
            RFC3339.format(month.end), RFC3339.format(month.start),
            "Usage", "", description, "Usage-Based", RFC3339.format(row.windowEnd), RFC3339.format(row.windowStart),
            "", decimal(Int128(tokens), scale: 0), "Tokens", cost, unitPrice, cost, provider,
            invoiceId(options.account, month.start), cost, unitPrice, category, "USD", unitPrice, cost, unitPrice,
            decimal(Int128(tokens), scale: 6), "1000000 Tokens", provider,
            publisher, "AI and Machine Learning", service, "Generative AI", skuId, meter, details, skuPriceId,
            row.owner, row.owner, tags,
            row.workflow, row.owner, row.model ?? "", row.provider ?? "", firstOnly(c.requests), firstOnly(c.errors),
            firstOnly(c.unpricedRequests), outcomeText, outcomeValue, row.late ? "true" : "false", row.window,
        ]
    }

    /// An exact decimal that always has a decimal point (`5024.0`, `0.000036`): FOCUS quantities, prices and
    /// costs are decimals, and a CSV reader types a column of bare integers as integers.
    static func decimal(_ v: Int128, scale: Int) -> String {
        scale == 0 ? String(v) + ".0" : FixedDecimal.format(v, scale: scale, maxDecimals: scale, minDecimals: 1)
    }

    /// The chargeback statement of the billing account for the month: `<account>-<YYYY-MM>`. tokenmeter
    /// issues no invoice; the month's statement is the provisional invoice the charges belong to.
    static func invoiceId(_ a: FocusSettings, _ monthStart: EpochMillis) -> String {
        a.billingAccountId + "-" + String(RFC3339.day(monthStart).prefix(7))
    }

    /// A price entry's identity in `SkuPriceId`: its model pattern and whatever else selects it.
    static func priceEntryId(_ e: PriceEntry) -> String {
        var s = e.model
        if let p = e.provider { s += ";provider=" + p }
        if let t = e.serviceTier { s += ";tier=" + t }
        if let m = e.minInputTokens { s += ";min_input_tokens=" + String(m) }
        if let f = e.effectiveFrom { s += ";from=" + RFC3339.format(f) }
        return s
    }

    /// Provider id -> (ProviderName, ServiceName): who makes the model available and bills for it.
    public static func names(_ provider: String?) -> (String, String) {
        switch provider?.lowercased() {
        case "openai": ("OpenAI", "OpenAI API")
        case "anthropic": ("Anthropic", "Claude API")
        case "google", "gemini": ("Google", "Gemini API")
        case "vertex", "vertex_ai", "gcp.vertex_ai": ("Google Cloud", "Vertex AI")
        case "azure", "azure_openai", "az.ai.openai", "azure.ai.openai": ("Microsoft", "Azure OpenAI")
        case "bedrock", "aws", "aws.bedrock", "aws_bedrock": ("AWS", "Amazon Bedrock")
        case "mistral", "mistral_ai": ("Mistral AI", "Mistral API")
        case "cohere": ("Cohere", "Cohere API")
        case "xai", "x_ai": ("xAI", "xAI API")
        case "deepseek": ("DeepSeek", "DeepSeek API")
        case "groq": ("Groq", "GroqCloud")
        case "together", "together_ai": ("Together AI", "Together API")
        case "openrouter": ("OpenRouter", "OpenRouter")
        case nil: ("Unknown", "Unknown")
        default: (provider!, provider!)
        }
    }

    /// Who made the model (`PublisherName`), from its name: a hosting provider's model ids carry the maker
    /// (`meta.llama3-3-70b-instruct-v1:0` on Bedrock is Meta's), and known families name theirs (`claude-*`
    /// is Anthropic's wherever it runs). Otherwise the provider is taken to be the publisher.
    public static func publisherName(model: String, provider: String?) -> String {
        var m = Substring(model.lowercased())
        // Bedrock cross-region inference profiles: `us.anthropic.claude-...`, `eu.meta.llama...`.
        for region in ["us.", "eu.", "apac.", "us-gov.", "global."] where m.hasPrefix(region) {
            m = m.dropFirst(region.count)
            break
        }
        if let slash = m.lastIndex(of: "/") { m = m[m.index(after: slash)...] }  // `meta-llama/Llama-3-70b`
        let vendors: [(String, String)] = [
            ("meta", "Meta"), ("anthropic", "Anthropic"), ("amazon", "Amazon"), ("mistral", "Mistral AI"),
            ("cohere", "Cohere"), ("ai21", "AI21 Labs"), ("deepseek", "DeepSeek"), ("openai", "OpenAI"),
            ("qwen", "Alibaba Cloud"), ("writer", "Writer"), ("stability", "Stability AI"), ("google", "Google"),
        ]
        if let dot = m.firstIndex(of: "."), let v = vendors.first(where: { $0.0 == m[..<dot] }) { return v.1 }
        let families: [(String, String)] = [
            ("gpt-", "OpenAI"), ("o1", "OpenAI"), ("o3", "OpenAI"), ("o4", "OpenAI"), ("chatgpt", "OpenAI"),
            ("text-embedding", "OpenAI"), ("claude", "Anthropic"), ("gemini", "Google"), ("gemma", "Google"),
            ("llama", "Meta"), ("meta-llama", "Meta"), ("mistral", "Mistral AI"), ("mixtral", "Mistral AI"),
            ("codestral", "Mistral AI"), ("magistral", "Mistral AI"), ("ministral", "Mistral AI"), ("pixtral", "Mistral AI"),
            ("command", "Cohere"), ("grok", "xAI"), ("deepseek", "DeepSeek"), ("qwen", "Alibaba Cloud"),
            ("titan", "Amazon"), ("nova", "Amazon"), ("phi-", "Microsoft"),
        ]
        if let f = families.first(where: { m.hasPrefix($0.0) }) { return f.1 }
        return names(provider).0
    }
}
