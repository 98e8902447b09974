/// `--format focus`: a FinOps FOCUS 1.2-style cost and usage CSV, one line per usage rollup row of the
/// chosen window in the span (after filters; `--by` and `--top` do not apply: FOCUS rows are the raw rows).
///
/// Mapping (also in docs/reports-guide.md):
/// - `ChargePeriodStart`/`ChargePeriodEnd`: the row's `window_start`/`window_end`.
/// - `BilledCost` = `EffectiveCost` = `ListCost` = `ContractedCost` = `cost_usd`, exact: tokenmeter prices
///   at the configured (list) prices and knows no discounts or commitments. `BillingCurrency` = `USD`.
/// - `ConsumedQuantity` = input + output tokens, `ConsumedUnit` = `Tokens`; `PricingQuantity` = the same in
///   millions, `PricingUnit` = `1M Tokens` (prices are per million tokens).
/// - `ServiceCategory` = `AI and Machine Learning`, `ServiceSubcategory` = `Generative AI`,
///   `ProviderName`/`PublisherName`/`ServiceName` from `provider` (`openai` -> `OpenAI` / `OpenAI API`),
///   `SkuId` = `model`, `ChargeCategory` = `Usage`, `ChargeFrequency` = `Usage-Based`.
/// - `Tags`: a JSON object with `workflow`, `owner` and the row's tags (tag keys as configured).
/// - Unpriced requests (no price, no `cost_usd`): their tokens are in `ConsumedQuantity`, their cost is not
///   in `BilledCost` (tokenmeter never invents a cost); `x_UnpricedRequests` counts them and
///   `ChargeDescription` says so. A row with only unpriced requests has cost 0.
/// - Outcome rows (model null, no tokens, no cost) are not charges and are left out; use the other formats
///   for outcomes.
/// - Extra columns use FOCUS's `x_` prefix: requests, errors, token kinds, unpriced requests, late, window.
public enum ReportFocus {
    public static let columns = [
        "BillingAccountId", "ChargePeriodStart", "ChargePeriodEnd", "BilledCost", "EffectiveCost", "ListCost", "ContractedCost",
        "BillingCurrency", "ConsumedQuantity", "ConsumedUnit", "PricingQuantity", "PricingUnit", "ServiceCategory",
        "ServiceSubcategory", "ServiceName", "ProviderName", "PublisherName", "InvoiceIssuerName", "SkuId", "ChargeCategory",
        "ChargeFrequency", "ChargeDescription", "Tags",
        "x_Workflow", "x_Owner", "x_Requests", "x_Errors", "x_InputTokens", "x_CacheReadTokens", "x_CacheWriteTokens",
        "x_OutputTokens", "x_ReasoningTokens", "x_UnpricedRequests", "x_Late", "x_Window",
    ]

    public static func render(_ r: Report) -> String {
        var out = columns.joined(separator: ",") + "\r\n"
        for row in r.rows where isUsage(row) {
            out += line(row).map(ReportCSV.field).joined(separator: ",") + "\r\n"
        }
        return out
    }

    /// Usage rows carry a model or requests; outcome rows have neither.
    public static func isUsage(_ row: RollupRow) -> Bool {
        row.model != nil || row.counters.requests != 0
    }

    public static func line(_ row: RollupRow) -> [String] {
        let c = row.counters
        let cost = ReportText.exact(c.cost)
        let tokens = c.input + c.output
        let (provider, service) = names(row.provider)
        var tags = "{" + jsonString("workflow") + ":" + jsonString(row.workflow) + "," + jsonString("owner") + ":" + jsonString(row.owner)
        for (k, v) in row.tags.sorted(by: { $0.key < $1.key }) where k != "workflow" && k != "owner" {
            tags += "," + jsonString(k) + ":" + jsonString(v)
        }
        tags += "}"
        var description = "\(row.model ?? "unknown model") tokens for \(row.workflow)"
        if c.unpricedRequests > 0 {
            description += "; \(c.unpricedRequests) of \(c.requests) requests unpriced (no price: cost not included)"
        }
        return [
            "", RFC3339.format(row.windowStart), RFC3339.format(row.windowEnd), cost, cost, cost, cost,
            "USD", String(tokens), "Tokens", FixedDecimal.format(Int128(tokens), scale: 6, maxDecimals: 6), "1M Tokens",
            "AI and Machine Learning", "Generative AI", service, provider, provider, provider, row.model ?? "", "Usage",
            "Usage-Based", description, tags,
            row.workflow, row.owner, String(c.requests), String(c.errors), String(c.input), String(c.cacheRead),
            String(c.cacheWrite), String(c.output), String(c.reasoning), String(c.unpricedRequests), row.late ? "true" : "false",
            row.window,
        ]
    }

    /// Provider id -> (ProviderName, ServiceName).
    public static func names(_ provider: String?) -> (String, String) {
        switch provider?.lowercased() {
        case "openai": ("OpenAI", "OpenAI API")
        case "anthropic": ("Anthropic", "Claude API")
        case "google", "gemini", "vertex", "vertex_ai": ("Google Cloud", "Vertex AI")
        case "azure", "azure_openai", "az.ai.openai": ("Microsoft", "Azure OpenAI")
        case "bedrock", "aws", "aws.bedrock", "aws_bedrock": ("AWS", "Amazon Bedrock")
        case "mistral": ("Mistral AI", "Mistral API")
        case "cohere": ("Cohere", "Cohere API")
        case nil: ("Unknown", "Unknown")
        default: (provider!, provider!)
        }
    }
}
