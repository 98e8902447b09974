import Testing
@testable import TokenmeterCore
@testable import TokenmeterPriceTools

/// `tokenmeter prices import --from litellm` on a small fixture in LiteLLM's format (field names as in
/// LiteLLM's model_prices_and_context_window.json).
@Suite struct LiteLLMImportTests {
    static let fixture = #"""
    {
      "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                      "litellm_provider": "one of https://docs.litellm.ai/docs/providers", "mode": "one of: chat, embedding"},
      "gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07, "cache_read_input_token_cost": 7.5e-08,
                      "input_cost_per_token_batches": 7.5e-08, "output_cost_per_token_batches": 3e-07,
                      "input_cost_per_audio_token": 1e-05, "litellm_provider": "openai", "mode": "chat",
                      "supports_vision": true, "max_input_tokens": 128000},
      "gpt-5": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-07,
                "input_cost_per_token_priority": 2.5e-06, "output_cost_per_token_priority": 2e-05,
                "cache_read_input_token_cost_priority": 2.5e-07,
                "input_cost_per_token_flex": 6.25e-07, "output_cost_per_token_flex": 5e-06,
                "litellm_provider": "openai", "mode": "responses"},
      "claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06,
                "cache_creation_input_token_cost_above_1hr": 6e-06,
                "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
                "cache_read_input_token_cost_above_200k_tokens": 6e-07,
                "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
                "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-05,
                "litellm_provider": "anthropic", "mode": "chat"},
      "gemini/gemini-2.5-pro": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
                "cache_read_input_token_cost": 1.25e-07, "output_cost_per_reasoning_token": 1e-05,
                "input_cost_per_token_above_200k_tokens": 2.5e-06, "output_cost_per_token_above_200k_tokens": 1.5e-05,
                "litellm_provider": "gemini", "mode": "chat"},
      "gemini-2.5-pro": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
                "cache_read_input_token_cost": 1.25e-07, "output_cost_per_reasoning_token": 1e-05,
                "input_cost_per_token_above_200k_tokens": 2.5e-06, "output_cost_per_token_above_200k_tokens": 1.5e-05,
                "litellm_provider": "vertex_ai-language-models", "mode": "chat"},
      "azure/gpt-4o": {"input_cost_per_token": 0.0000025, "output_cost_per_token": 0.00001, "litellm_provider": "azure", "mode": "chat"},
      "bedrock/anthropic.claude-3-haiku-20240307-v1:0": {"input_cost_per_token": 2.5e-07, "output_cost_per_token": 1.25e-06,
                "litellm_provider": "bedrock", "mode": "chat"},
      "mistral/mistral-large-latest": {"input_cost_per_token": 2e-06, "output_cost_per_token": 6e-06,
                "litellm_provider": "mistral", "mode": "chat"},
      "text-embedding-3-small": {"input_cost_per_token": 2e-08, "output_cost_per_token": 0.0,
                "litellm_provider": "openai", "mode": "embedding"},
      "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation", "output_cost_per_image": 0.04},
      "too-precise": {"input_cost_per_token": 1.2345678901234567e-07, "output_cost_per_token": 1e-06,
                "litellm_provider": "openai", "mode": "chat"},
      "per-second-only": {"input_cost_per_second": 0.0001, "litellm_provider": "sagemaker", "mode": "chat"}
    }
    """#

    static func read(_ options: LiteLLMImport.Options = .init()) throws -> LiteLLMImport.Result {
        try LiteLLMImport.read(json: Array(fixture.utf8), options: options)
    }

    static func usd(_ s: String) -> PricePerMillion { PricePerMillion.parse(s)! }

    static func find(_ r: LiteLLMImport.Result, _ model: String, tier: String? = nil, minInput: Int64? = nil)
        -> LiteLLMImport.Entry? {
        r.entries.first { $0.model == model && $0.serviceTier == tier && $0.minInputTokens == minInput }
    }

    @Test func exactConversionFromTheJSONText() throws {
        let r = try Self.read()
        let mini = try #require(Self.find(r, "gpt-4o-mini"))
        #expect(mini.input.nanos == 150_000_000)          // 1.5e-07 per token = 0.15 per 1M
        #expect(mini.input.description == "0.15")
        #expect(mini.cacheRead?.description == "0.075")
        #expect(mini.output.description == "0.6")
        let sonnet = try #require(Self.find(r, "claude-sonnet-4-5"))
        #expect(sonnet.input.nanos == 3_000_000_000)      // 3e-06 -> 3
        #expect(sonnet.input.description == "3")
        #expect(sonnet.output == Self.usd("15"))
        // Plain decimal notation is read the same way.
        let azure = try #require(Self.find(r, "gpt-4o"))
        #expect(azure.input == Self.usd("2.5") && azure.output == Self.usd("10"))
        // Where binary floating point is not exact, the import still is.
        let r2 = try LiteLLMImport.read(json: Array(#"{"m": {"input_cost_per_token": 2.9e-06, "output_cost_per_token": 1.1e-06, "mode": "chat"}}"#.utf8))
        #expect(2.9e-06 * 1e6 != 2.9 || 1.1e-06 * 1e6 != 1.1)
        #expect(r2.entries.first?.input.description == "2.9" && r2.entries.first?.output.description == "1.1")
    }

    @Test func longContextTiersBecomeMinInputTokensEntries() throws {
        let r = try Self.read()
        let base = try #require(Self.find(r, "claude-sonnet-4-5"))
        #expect(base.minInputTokens == nil)
        let long = try #require(Self.find(r, "claude-sonnet-4-5", minInput: 200_001))
        #expect(long.input == Self.usd("6"))
        #expect(long.output == Self.usd("22.5"))
        #expect(long.cacheRead == Self.usd("0.6"))
        #expect(long.cacheWrite == Self.usd("7.5"))
        #expect(long.cacheWrite1h == Self.usd("12"))
        #expect(long.provider == "anthropic")
        // Gemini: reasoning = output at short context follows the long-context output rate; cache_read is
        // inherited (LiteLLM has no long-context cache price for it).
        let gLong = try #require(Self.find(r, "gemini-2.5-pro", minInput: 200_001))
        #expect(gLong.input == Self.usd("2.5") && gLong.output == Self.usd("15"))
        #expect(gLong.reasoning == nil)
        #expect(gLong.cacheRead == Self.usd("0.125"))
        #expect(PriceRates(PriceEntry(model: "m", input: gLong.input, cacheRead: gLong.cacheRead, output: gLong.output,
                                      reasoning: gLong.reasoning)).reasoning == Self.usd("15").nanos)
    }

    @Test func serviceTierEntries() throws {
        let r = try Self.read()
        let priority = try #require(Self.find(r, "gpt-5", tier: "priority"))
        #expect(priority.input == Self.usd("2.5") && priority.output == Self.usd("20") && priority.cacheRead == Self.usd("0.25"))
        let flex = try #require(Self.find(r, "gpt-5", tier: "flex"))
        #expect(flex.input == Self.usd("0.625") && flex.output == Self.usd("5"))
        #expect(flex.cacheRead == Self.usd("0.125"))       // inherited from the standard entry
        let batch = try #require(Self.find(r, "gpt-4o-mini", tier: "batch"))   // LiteLLM's `_batches`
        #expect(batch.input == Self.usd("0.075") && batch.output == Self.usd("0.3"))
        #expect(r.entries.filter { $0.model == "gpt-5" }.count == 3)
    }

    @Test func oneHourCacheWrites() throws {
        let r = try Self.read()
        let sonnet = try #require(Self.find(r, "claude-sonnet-4-5"))
        #expect(sonnet.cacheWrite == Self.usd("3.75"))
        #expect(sonnet.cacheWrite1h == Self.usd("6"))
    }

    @Test func modesSampleSpecAndSkips() throws {
        let r = try Self.read()
        #expect(r.models == 12)                     // sample_spec is not a model
        #expect(r.skippedModes == ["embedding": 1, "image_generation": 1])
        #expect(!r.entries.contains { $0.model == "text-embedding-3-small" || $0.model == "dall-e-3" || $0.model == "sample_spec" })
        #expect(r.skipped.map(\.key) == ["per-second-only", "too-precise"])
        #expect(r.skipped[1].reason.contains("not rounded"))
        #expect(r.unreadPriceFields["input_cost_per_audio_token"] == 1)
        #expect(r.unreadPriceFields["input_cost_per_second"] == 1)
    }

    @Test func providersAndModelNames() throws {
        #expect(LiteLLMImport.contractProvider("openai") == "openai")
        #expect(LiteLLMImport.contractProvider("text-completion-openai") == "openai")
        #expect(LiteLLMImport.contractProvider("anthropic") == "anthropic")
        #expect(LiteLLMImport.contractProvider("gemini") == "google")
        #expect(LiteLLMImport.contractProvider("vertex_ai-language-models") == "google")
        #expect(LiteLLMImport.contractProvider("vertex_ai-anthropic_models") == "google")
        #expect(LiteLLMImport.contractProvider("bedrock_converse") == "bedrock")
        #expect(LiteLLMImport.contractProvider("azure_ai") == "azure")
        #expect(LiteLLMImport.contractProvider("mistral") == "mistral")
        let r = try Self.read()
        #expect(Self.find(r, "gpt-4o")?.provider == "azure")                       // "azure/" routing prefix dropped
        #expect(Self.find(r, "anthropic.claude-3-haiku-20240307-v1:0")?.provider == "bedrock")
        #expect(Self.find(r, "mistral-large-latest")?.provider == "mistral")
        // gemini/gemini-2.5-pro and gemini-2.5-pro are the same entry: imported once, the unprefixed key wins.
        let g = r.entries.filter { $0.model == "gemini-2.5-pro" && $0.minInputTokens == nil }
        #expect(g.count == 1)
        #expect(g.first?.sourceKey == "gemini-2.5-pro")
        #expect(g.first?.alsoListedAs == ["gemini/gemini-2.5-pro"])
    }

    @Test func filters() throws {
        let google = try Self.read(.init(provider: "google"))
        #expect(Set(google.entries.map(\.model)) == ["gemini-2.5-pro"])
        let raw = try Self.read(.init(provider: "azure"))
        #expect(raw.entries.map(\.model) == ["gpt-4o"])
        let claude = try Self.read(.init(model: "claude-*"))
        #expect(claude.entries.count == 2 && claude.entries.allSatisfy { $0.model == "claude-sonnet-4-5" })
        #expect(claude.filteredOut > 0)
    }

    @Test func fieldNames() {
        func f(_ s: String) -> String? {
            LiteLLMImport.parseField(s).map { "\($0.0.tomlKey)/\($0.1.threshold)/\($0.1.tier ?? "-")" }
        }
        #expect(f("input_cost_per_token") == "input/0/-")
        #expect(f("cache_creation_input_token_cost_above_1hr") == "cache_write_1h/0/-")
        #expect(f("cache_creation_input_token_cost_above_1hr_above_200k_tokens") == "cache_write_1h/200000/-")
        #expect(f("cache_creation_input_token_cost_above_200k_tokens") == "cache_write/200000/-")
        #expect(f("input_cost_per_token_above_272k_tokens_priority") == "input/272000/priority")
        #expect(f("output_cost_per_token_batches") == "output/0/batch")
        #expect(f("output_cost_per_reasoning_token") == "reasoning/0/-")
        #expect(f("input_cost_per_token_above_128_tokens") == "input/128/-")
        #expect(f("input_cost_per_token_cache_hit") == nil)
        #expect(f("input_cost_per_audio_token") == nil)
        #expect(f("input_cost_per_token_above_k_tokens") == nil)
        #expect(f("output_cost_per_token_turbo") == nil)
    }

    /// The printed TOML loads with the real loader, gives the same prices, and the long-context entry
    /// starts above 200,000 input tokens, as LiteLLM and the providers bill.
    @Test func renderedTOMLLoadsAndPricesAsImported() throws {
        let options = LiteLLMImport.Options(effectiveFrom: "2025-10-01")
        let r = try Self.read(options)
        let text = LiteLLMImport.render(r, source: "fixture.json", importedAt: 0, options: options)
        #expect(text.hasPrefix("# [[price]] entries imported from LiteLLM"))
        #expect(text.contains("# source: fixture.json"))
        #expect(text.contains("# imported: 1970-01-01T00:00:00Z"))
        #expect(text.contains("# entries: \(r.entries.count)"))
        let config = try ConfigLoader.parse(text: text, file: "imported.toml").get()
        #expect(config.prices.count == r.entries.count)
        let from = RFC3339.parse("2025-10-01", allowDateOnly: true)
        for (e, p) in zip(r.entries, config.prices) {
            #expect(p.model == e.model && p.provider == e.provider && p.serviceTier == e.serviceTier
                    && p.minInputTokens == e.minInputTokens && p.input == e.input && p.output == e.output
                    && p.cacheRead == e.cacheRead && p.cacheWrite == e.cacheWrite && p.cacheWrite1h == e.cacheWrite1h
                    && p.reasoning == e.reasoning && p.effectiveFrom == from)
        }
        // Sorted: by model, then provider, tier, min_input_tokens.
        for (a, b) in zip(config.prices, config.prices.dropFirst()) {
            #expect((a.model, a.provider ?? "", a.serviceTier ?? "", a.minInputTokens ?? 0)
                    < (b.model, b.provider ?? "", b.serviceTier ?? "", b.minInputTokens ?? 0))
        }
        // Each entry has its provenance comment just above it.
        #expect(text.contains("# litellm \"gpt-5\" (litellm_provider openai): input_cost_per_token_priority"))

        let table = PriceTable(config.prices)
        let t = RFC3339.parse("2026-01-01T00:00:00Z")!
        let c = table.candidates(model: "claude-sonnet-4-5", provider: "anthropic")
        #expect(table.select(c, at: t, inputTokens: 200_000, serviceTier: nil)?.input == Self.usd("3"))
        #expect(table.select(c, at: t, inputTokens: 200_001, serviceTier: nil)?.input == Self.usd("6"))
        // Before effective_from: nothing applies.
        #expect(table.select(c, at: RFC3339.parse("2025-09-30T23:59:59Z")!, inputTokens: 1, serviceTier: nil) == nil)
        let g5 = table.candidates(model: "gpt-5", provider: "openai")
        #expect(table.select(g5, at: t, inputTokens: 10, serviceTier: "priority")?.input == Self.usd("2.5"))
        #expect(table.select(g5, at: t, inputTokens: 10, serviceTier: "flex")?.input == Self.usd("0.625"))
        #expect(table.select(g5, at: t, inputTokens: 10, serviceTier: nil)?.input == Self.usd("1.25"))
        // 1000 input (100 cached) + 50 output at priority: 900 x 2.5 + 100 x 0.25 + 50 x 20 per 1M.
        let cost = table.cost(of: TokenCounts(input: 1000, cacheRead: 100, output: 50), candidates: g5, at: t,
                              tier: table.tierKey("priority"))
        #expect(cost == Money.parse("0.003275"))
    }

    @Test func strangeNamesAreQuotedOrSkipped() throws {
        let json = #"{"we\"ird\\name": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "litellm_provider": "x", "mode": "chat"},"#
            + #""glob*name": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "mode": "chat"}}"#
        let r = try LiteLLMImport.read(json: Array(json.utf8))
        #expect(r.entries.map(\.model) == ["we\"ird\\name"])
        #expect(r.skipped.map(\.key) == ["glob*name"])
        let config = try ConfigLoader.parse(text: LiteLLMImport.render(r, source: "s\nx", importedAt: nil), file: "t.toml").get()
        #expect(config.prices.map(\.model) == ["we\"ird\\name"])
    }

    @Test func invalidJSONIsAnError() {
        #expect(throws: LiteLLMImport.ImportError.self) { try LiteLLMImport.read(json: Array("{\"a\": ".utf8)) }
        #expect(throws: LiteLLMImport.ImportError.self) { try LiteLLMImport.read(json: Array("[1, 2]".utf8)) }
    }
}
