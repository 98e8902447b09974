import TokenmeterCore

/// How a model spends reasoning ("thinking") tokens.
public enum ReasoningKind: Sendable, Hashable {
    case none
    /// Every call reasons (o3-mini, o4-mini, gemini-2.5-pro).
    case always
    /// A share of calls reason (Claude extended thinking, Gemini Flash thinking budget).
    case sometimes(Double)
}

public struct CatalogueModel: Sendable, Hashable {
    public var name: String
    /// `openai`, `anthropic`, `google`, `bedrock`.
    public var provider: String
    /// The dated name a provider reports in responses (OpenTelemetry `gen_ai.response.model`).
    public var snapshot: String
    public var reasoning: ReasoningKind

    public init(name: String, provider: String, snapshot: String, reasoning: ReasoningKind) {
        self.name = name
        self.provider = provider
        self.snapshot = snapshot
        self.reasoning = reasoning
    }
}

/// One business workflow: who owns it, which models it calls, and how big its calls are.
public struct CatalogueWorkflow: Sendable {
    public var name: String
    public var owner: String
    public var models: [(model: String, weight: Double)]
    /// Relative request rate among workflows.
    public var rate: Double
    /// Median prompt size (ALL input tokens) and its log-space spread.
    public var promptMedian: Double
    public var promptSigma: Double
    /// Median visible output (reasoning excluded).
    public var outputMedian: Double
    public var outputSigma: Double
    /// Share of calls that hit a prompt cache, and the median share of the prompt then read from it.
    public var cacheHitRate: Double
    public var cachedShare: Double
    /// Median reasoning tokens when the model reasons.
    public var reasoningMedian: Double
    public var errorRate: Double
    /// The business outcome this workflow produces, and its unit value in cents (nil: no value).
    public var outcome: String
    public var outcomeValueCents: Int64?

    public init(
        _ name: String, owner: String, models: [(model: String, weight: Double)], rate: Double,
        prompt: Double, output: Double, cacheHit: Double = 0, cachedShare: Double = 0.6, reasoning: Double = 1200,
        promptSigma: Double = 0.5, outputSigma: Double = 0.6, errorRate: Double = 0.01,
        outcome: String, valueCents: Int64? = nil
    ) {
        self.name = name
        self.owner = owner
        self.models = models
        self.rate = rate
        self.promptMedian = prompt
        self.promptSigma = promptSigma
        self.outputMedian = output
        self.outputSigma = outputSigma
        self.cacheHitRate = cacheHit
        self.cachedShare = cachedShare
        self.reasoningMedian = reasoning
        self.errorRate = errorRate
        self.outcome = outcome
        self.outcomeValueCents = valueCents
    }
}

public enum Catalogue {
    public static let owners: [String] = [
        "finance-ops", "customer-success", "legal", "platform-eng", "marketing", "sales-ops", "data-science", "people-ops",
    ]

    public static let customers: [String] = [
        "acme-corp", "globex", "initech", "umbrella", "hooli", "stark-industries", "wayne-enterprises", "soylent",
        "tyrell", "wonka",
    ]

    public static let models: [CatalogueModel] = [
        CatalogueModel(name: "gpt-4o", provider: "openai", snapshot: "gpt-4o-2024-08-06", reasoning: .none),
        CatalogueModel(name: "gpt-4o-mini", provider: "openai", snapshot: "gpt-4o-mini-2024-07-18", reasoning: .none),
        CatalogueModel(name: "gpt-4.1", provider: "openai", snapshot: "gpt-4.1-2025-04-14", reasoning: .none),
        CatalogueModel(name: "gpt-4.1-mini", provider: "openai", snapshot: "gpt-4.1-mini-2025-04-14", reasoning: .none),
        CatalogueModel(name: "o3-mini", provider: "openai", snapshot: "o3-mini-2025-01-31", reasoning: .always),
        CatalogueModel(name: "o4-mini", provider: "openai", snapshot: "o4-mini-2025-04-16", reasoning: .always),
        CatalogueModel(name: "claude-sonnet-4-5", provider: "anthropic", snapshot: "claude-sonnet-4-5-20250929", reasoning: .sometimes(0.25)),
        CatalogueModel(name: "claude-haiku-4-5", provider: "anthropic", snapshot: "claude-haiku-4-5-20251001", reasoning: .none),
        CatalogueModel(name: "claude-opus-4-1", provider: "anthropic", snapshot: "claude-opus-4-1-20250805", reasoning: .sometimes(0.35)),
        CatalogueModel(name: "gemini-2.5-pro", provider: "google", snapshot: "gemini-2.5-pro", reasoning: .always),
        CatalogueModel(name: "gemini-2.5-flash", provider: "google", snapshot: "gemini-2.5-flash", reasoning: .sometimes(0.6)),
        // Deliberately absent from `referencePrices`: exercises the unpriced path.
        CatalogueModel(name: "meta.llama3-3-70b-instruct-v1:0", provider: "bedrock", snapshot: "meta.llama3-3-70b-instruct-v1:0", reasoning: .none),
    ]

    public static func model(named name: String) -> CatalogueModel? { models.first { $0.name == name } }

    /// The provider an event that names none gets from its model name (contract 1b), written out here for
    /// the catalogue's models, independently of the decoder's table: every catalogue model's prefix names
    /// its provider; any other name (a model the catalogue does not know) gets none.
    public static func providerFromModelName(_ name: String) -> String? {
        let prefixes: [(String, String)] = [("gpt-", "openai"), ("o3", "openai"), ("o4", "openai"), ("claude-", "anthropic"),
                                            ("gemini-", "google"), ("meta.", "bedrock")]
        return prefixes.first { name.hasPrefix($0.0) }?.1
    }

    public static let workflows: [CatalogueWorkflow] = [
        // finance-ops
        CatalogueWorkflow("invoice-extraction", owner: "finance-ops", models: [("gpt-4o-mini", 7), ("gpt-4o", 3)], rate: 14,
                        prompt: 3500, output: 600, cacheHit: 0.6, cachedShare: 0.55, outcome: "invoice_processed", valueCents: 250),
        CatalogueWorkflow("expense-categorization", owner: "finance-ops", models: [("gpt-4.1-mini", 6), ("claude-haiku-4-5", 4)], rate: 9,
                        prompt: 900, output: 80, cacheHit: 0.7, cachedShare: 0.7, outcome: "expense_categorized", valueCents: 20),
        CatalogueWorkflow("financial-report-summary", owner: "finance-ops", models: [("claude-sonnet-4-5", 7), ("gpt-4.1", 3)], rate: 1.5,
                        prompt: 28000, output: 1800, cacheHit: 0.3, cachedShare: 0.5, reasoning: 3000, outcome: "report_summarized", valueCents: 4000),
        CatalogueWorkflow("payment-reconciliation", owner: "finance-ops", models: [("o3-mini", 6), ("gpt-4o-mini", 4)], rate: 3,
                        prompt: 5200, output: 400, cacheHit: 0.4, reasoning: 2200, outcome: "payment_reconciled", valueCents: 150),
        // customer-success
        CatalogueWorkflow("support-triage", owner: "customer-success", models: [("gpt-4o-mini", 6), ("claude-haiku-4-5", 4)], rate: 22,
                        prompt: 1400, output: 120, cacheHit: 0.75, cachedShare: 0.65, outcome: "ticket_triaged", valueCents: 40),
        CatalogueWorkflow("support-reply-draft", owner: "customer-success", models: [("claude-sonnet-4-5", 6), ("gpt-4o", 4)], rate: 11,
                        prompt: 6000, output: 450, cacheHit: 0.6, cachedShare: 0.6, reasoning: 800, outcome: "reply_sent", valueCents: 300),
        CatalogueWorkflow("ticket-summarization", owner: "customer-success", models: [("gemini-2.5-flash", 7), ("gpt-4o-mini", 3)], rate: 8,
                        prompt: 4200, output: 250, cacheHit: 0.2, reasoning: 600, outcome: "ticket_summarized"),
        CatalogueWorkflow("churn-risk-scoring", owner: "customer-success", models: [("gpt-4.1", 5), ("gemini-2.5-flash", 5)], rate: 2,
                        prompt: 9000, output: 300, cacheHit: 0.5, reasoning: 900, outcome: "account_scored", valueCents: 500),
        CatalogueWorkflow("kb-article-search", owner: "customer-success", models: [("gemini-2.5-flash", 1)], rate: 12,
                        prompt: 2500, output: 350, cacheHit: 0.3, reasoning: 400, outcome: "answer_served", valueCents: 10),
        // legal
        CatalogueWorkflow("contract-review", owner: "legal", models: [("claude-opus-4-1", 4), ("claude-sonnet-4-5", 6)], rate: 2.5,
                        prompt: 42000, output: 2500, cacheHit: 0.55, cachedShare: 0.8, reasoning: 4000, promptSigma: 0.7,
                        outcome: "contract_reviewed", valueCents: 12000),
        CatalogueWorkflow("nda-redlining", owner: "legal", models: [("claude-sonnet-4-5", 1)], rate: 2,
                        prompt: 12000, output: 1600, cacheHit: 0.6, cachedShare: 0.7, reasoning: 2000, outcome: "nda_redlined", valueCents: 6000),
        CatalogueWorkflow("compliance-check", owner: "legal", models: [("gpt-4.1", 6), ("o3-mini", 4)], rate: 3,
                        prompt: 7000, output: 500, cacheHit: 0.5, reasoning: 3000, outcome: "policy_checked", valueCents: 800),
        CatalogueWorkflow("patent-search", owner: "legal", models: [("gemini-2.5-pro", 1)], rate: 0.8,
                        prompt: 60000, output: 1500, cacheHit: 0.35, cachedShare: 0.7, reasoning: 5000, outcome: "prior_art_report"),
        // platform-eng
        CatalogueWorkflow("code-review-agent", owner: "platform-eng", models: [("claude-sonnet-4-5", 5), ("o4-mini", 3), ("gpt-4.1", 2)], rate: 10,
                        prompt: 18000, output: 900, cacheHit: 0.8, cachedShare: 0.85, reasoning: 2500, promptSigma: 0.8,
                        outcome: "pr_reviewed", valueCents: 1500),
        CatalogueWorkflow("incident-postmortem", owner: "platform-eng", models: [("claude-opus-4-1", 5), ("gemini-2.5-pro", 5)], rate: 0.5,
                        prompt: 35000, output: 3000, cacheHit: 0.2, reasoning: 6000, outcome: "postmortem_drafted", valueCents: 20000),
        CatalogueWorkflow("log-anomaly-explainer", owner: "platform-eng", models: [("gemini-2.5-flash", 6), ("gpt-4o-mini", 3), ("meta.llama3-3-70b-instruct-v1:0", 1)], rate: 6,
                        prompt: 8000, output: 300, cacheHit: 0.3, reasoning: 700, outcome: "anomaly_explained"),
        CatalogueWorkflow("test-generation", owner: "platform-eng", models: [("claude-sonnet-4-5", 6), ("gpt-4.1", 4)], rate: 5,
                        prompt: 9500, output: 2200, cacheHit: 0.7, cachedShare: 0.75, reasoning: 1500, outcome: "tests_generated", valueCents: 900),
        CatalogueWorkflow("sql-assistant", owner: "platform-eng", models: [("gpt-4o", 5), ("o3-mini", 5)], rate: 7,
                        prompt: 3000, output: 250, cacheHit: 0.6, cachedShare: 0.7, reasoning: 1800, outcome: "query_written", valueCents: 200),
        // marketing
        CatalogueWorkflow("ad-copy-generation", owner: "marketing", models: [("gpt-4o", 6), ("claude-haiku-4-5", 4)], rate: 5,
                        prompt: 1200, output: 500, cacheHit: 0.4, outcome: "ad_variant_created", valueCents: 100),
        CatalogueWorkflow("seo-brief", owner: "marketing", models: [("gemini-2.5-flash", 6), ("gpt-4o-mini", 4)], rate: 3,
                        prompt: 5000, output: 1400, cacheHit: 0.2, reasoning: 800, outcome: "brief_written", valueCents: 600),
        CatalogueWorkflow("social-sentiment", owner: "marketing", models: [("gemini-2.5-flash", 5), ("claude-haiku-4-5", 5)], rate: 9,
                        prompt: 700, output: 40, cacheHit: 0.5, cachedShare: 0.6, reasoning: 200, outcome: "post_classified"),
        // sales-ops
        CatalogueWorkflow("lead-enrichment", owner: "sales-ops", models: [("gpt-4o-mini", 5), ("gemini-2.5-flash", 5)], rate: 8,
                        prompt: 2200, output: 300, cacheHit: 0.5, reasoning: 300, outcome: "lead_enriched", valueCents: 75),
        CatalogueWorkflow("call-summary", owner: "sales-ops", models: [("gpt-4.1", 5), ("claude-sonnet-4-5", 5)], rate: 4,
                        prompt: 16000, output: 700, cacheHit: 0.1, reasoning: 1000, outcome: "call_summarized", valueCents: 250),
        CatalogueWorkflow("proposal-drafting", owner: "sales-ops", models: [("claude-opus-4-1", 4), ("gpt-4o", 6)], rate: 1,
                        prompt: 14000, output: 3500, cacheHit: 0.4, cachedShare: 0.6, reasoning: 3000, outcome: "proposal_drafted", valueCents: 25000),
        // data-science
        CatalogueWorkflow("research-agent", owner: "data-science", models: [("o3-mini", 4), ("gemini-2.5-pro", 3), ("claude-opus-4-1", 3)], rate: 2,
                        prompt: 25000, output: 1800, cacheHit: 0.65, cachedShare: 0.8, reasoning: 7000, promptSigma: 0.8,
                        errorRate: 0.03, outcome: "research_report"),
        CatalogueWorkflow("dataset-labeling", owner: "data-science", models: [("gpt-4.1-mini", 5), ("gemini-2.5-flash", 5)], rate: 15,
                        prompt: 600, output: 30, cacheHit: 0.85, cachedShare: 0.75, reasoning: 150, outcome: "item_labeled", valueCents: 2),
        CatalogueWorkflow("eval-grader", owner: "data-science", models: [("gpt-4o", 6), ("claude-haiku-4-5", 4)], rate: 6,
                        prompt: 2800, output: 150, cacheHit: 0.8, cachedShare: 0.8, outcome: "eval_graded"),
        // people-ops
        CatalogueWorkflow("resume-screening", owner: "people-ops", models: [("gpt-4o-mini", 6), ("claude-haiku-4-5", 4)], rate: 4,
                        prompt: 3800, output: 220, cacheHit: 0.6, cachedShare: 0.5, outcome: "resume_screened", valueCents: 150),
        CatalogueWorkflow("policy-qa", owner: "people-ops", models: [("gemini-2.5-flash", 5), ("gpt-4.1-mini", 5)], rate: 3,
                        prompt: 4500, output: 300, cacheHit: 0.7, cachedShare: 0.8, reasoning: 300, outcome: "question_answered", valueCents: 30),
    ]

    /// A list-price table for the catalogue's models (USD per 1M tokens, as published in 2025), with
    /// `*` globs so that dated snapshot names match too. The Bedrock Llama model is left unpriced on purpose.
    public static let referencePrices: [OraclePrice] = [
        OraclePrice("gpt-4o*", input: "2.50", cacheRead: "1.25", output: "10.00"),
        OraclePrice("gpt-4o-mini*", input: "0.15", cacheRead: "0.075", output: "0.60"),
        OraclePrice("gpt-4.1*", input: "2.00", cacheRead: "0.50", output: "8.00"),
        OraclePrice("gpt-4.1-mini*", input: "0.40", cacheRead: "0.10", output: "1.60"),
        OraclePrice("o3-mini*", input: "1.10", cacheRead: "0.55", output: "4.40"),
        OraclePrice("o4-mini*", input: "1.10", cacheRead: "0.275", output: "4.40"),
        OraclePrice("claude-sonnet-4-5*", input: "3", cacheRead: "0.30", cacheWrite: "3.75", output: "15"),
        OraclePrice("claude-haiku-4-5*", input: "1", cacheRead: "0.10", cacheWrite: "1.25", output: "5"),
        OraclePrice("claude-opus-4-1*", input: "15", cacheRead: "1.50", cacheWrite: "18.75", output: "75"),
        OraclePrice("gemini-2.5-pro*", input: "1.25", cacheRead: "0.31", output: "10"),
        OraclePrice("gemini-2.5-flash*", input: "0.30", cacheRead: "0.075", output: "2.50"),
    ]

    /// `referencePrices` as `[[price]]` TOML entries (contract section 5), for configs that go with the oracle.
    public static func referencePricesTOML() -> String {
        var out = ""
        for p in referencePrices {
            out += "[[price]]\nmodel = \(JSONText.quote(p.model))\ninput = \(p.input)\n"
            if let v = p.cacheRead { out += "cache_read = \(v)\n" }
            if let v = p.cacheWrite { out += "cache_write = \(v)\n" }
            out += "output = \(p.output)\n"
            if let v = p.reasoning { out += "reasoning = \(v)\n" }
            out += "\n"
        }
        return out
    }
}
