import Foundation
import Testing
import TokenmeterCore

/// `tokenmeter prices import` and `prices check` as a user runs them, and `config/prices.toml` through
/// `check-config`.
@Suite struct PricesCommandTests {
    static var repoRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    static let litellm = #"""
    {
      "sample_spec": {"input_cost_per_token": 0.0, "litellm_provider": "one of https://docs.litellm.ai/docs/providers", "mode": "chat"},
      "gpt-5": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-07,
                "input_cost_per_token_priority": 2.5e-06, "output_cost_per_token_priority": 2e-05,
                "litellm_provider": "openai", "mode": "chat"},
      "claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                "cache_creation_input_token_cost": 3.75e-06, "cache_creation_input_token_cost_above_1hr": 6e-06,
                "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
                "litellm_provider": "anthropic", "mode": "chat"},
      "text-embedding-3-small": {"input_cost_per_token": 2e-08, "output_cost_per_token": 0.0, "litellm_provider": "openai", "mode": "embedding"}
    }
    """#

    @Test func importPrintsTOMLThatLoads() throws {
        let dir = try Harness.tempDir("pricesimport")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = dir + "/model_prices_and_context_window.json"
        try Self.litellm.write(toFile: src, atomically: true, encoding: .utf8)
        let r = try runTokenmeter(["prices", "import", "--from", "litellm", "--effective-from", "2025-10-01", src])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("# source: \(src)"))
        #expect(r.stdout.contains("# imported: "))
        #expect(r.stdout.contains("# entries: 4"))
        #expect(!r.stdout.contains("text-embedding"))
        let config = try ConfigLoader.parse(text: r.stdout, file: "imported.toml").get()
        #expect(config.prices.count == 4)
        #expect(config.prices.allSatisfy { $0.effectiveFrom == RFC3339.parse("2025-10-01", allowDateOnly: true) })
        let priority = try #require(config.prices.first { $0.serviceTier == "priority" })
        #expect(priority.model == "gpt-5" && priority.provider == "openai" && priority.input.description == "2.5")
        let long = try #require(config.prices.first { $0.minInputTokens != nil })
        #expect(long.minInputTokens == 200_001 && long.input.description == "6" && long.cacheWrite1h?.description == "6")

        // The output is a config: check-config takes it as is.
        let file = dir + "/imported.toml"
        try r.stdout.write(toFile: file, atomically: true, encoding: .utf8)
        let c = try runTokenmeter(["check-config", "--config", file])
        #expect(c.status == 0, "\(c.stderr)")

        // Filters.
        let only = try runTokenmeter(["prices", "import", "--from", "litellm", "--provider", "anthropic", src])
        #expect(only.status == 0)
        #expect(try ConfigLoader.parse(text: only.stdout, file: "x").get().prices.map(\.model) == ["claude-sonnet-4-5", "claude-sonnet-4-5"])
        let glob = try runTokenmeter(["prices", "import", "--from", "litellm", "--model", "gpt-*", src])
        #expect(try ConfigLoader.parse(text: glob.stdout, file: "x").get().prices.map(\.model) == ["gpt-5", "gpt-5"])

        // Errors: a bad date, a missing file, a file that is not JSON.
        #expect(try runTokenmeter(["prices", "import", "--from", "litellm", "--effective-from", "soon", src]).status == 64)
        #expect(try runTokenmeter(["prices", "import", "--from", "litellm", dir + "/missing.json"]).status == 66)
        try "not json".write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        let bad = try runTokenmeter(["prices", "import", "--from", "litellm", dir + "/bad.json"])
        #expect(bad.status == 65 && bad.stderr.contains("invalid JSON"))
    }

    @Test func checkNamesUnpricedModelsAndStrictFails() throws {
        let dir = try Harness.tempDir("pricescheck")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = dir + "/prices.toml"
        try """
        [[price]]
        model = "gpt-4o*"
        input = 2.50
        cache_read = 1.25
        output = 10.00

        [[price]]
        model = "gpt-4o-mini"
        input = 0.15
        output = 0.60

        [[price]]
        model = "gpt-4o-mini"
        service_tier = "priority"
        input = 0.30
        output = 1.20
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let events = dir + "/events.jsonl"
        try """
        {"id":"1","timestamp":"2026-11-20T12:00:00Z","workflow":"w","owner":"o","model":"gpt-4o-mini","provider":"openai","input_tokens":10,"output_tokens":5}
        {"id":"2","timestamp":"2026-11-20T12:00:00Z","workflow":"w","owner":"o","model":"gpt-4o-mini","provider":"openai","service_tier":"priority","input_tokens":10,"output_tokens":5}
        {"id":"3","timestamp":"2026-11-20T12:00:00Z","workflow":"w","owner":"o","model":"gpt-4o-2024-08-06","provider":"openai","input_tokens":10,"output_tokens":5}
        {"id":"4","timestamp":"2026-11-20T12:00:00Z","workflow":"w","owner":"o","model":"mystery-model-9","provider":"acme","input_tokens":10,"output_tokens":5}
        {"id":"5","timestamp":"2026-11-20T12:00:00Z","workflow":"w","owner":"o","model":"mystery-model-9","provider":"acme","input_tokens":10,"output_tokens":5}
        not json

        """.write(toFile: events, atomically: true, encoding: .utf8)

        let r = try runTokenmeter(["prices", "check", "--config", config, events])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("6 events"))
        #expect(r.stdout.contains("1 rejected"))
        let lines = r.stdout.split(separator: "\n").map(String.init)
        // The table: each (model, provider, tier) with its entry's FILE:LINE.
        #expect(lines.contains { $0.hasPrefix("gpt-4o-mini ") && $0.contains("openai") && $0.contains("\(config):7 (gpt-4o-mini)") })
        #expect(lines.contains { $0.hasPrefix("gpt-4o-mini ") && $0.contains("priority") && $0.contains("\(config):12 (gpt-4o-mini)") })
        #expect(lines.contains { $0.hasPrefix("gpt-4o-2024-08-06 ") && $0.contains("\(config):1 (gpt-4o*)") })
        #expect(lines.contains { $0.hasPrefix("mystery-model-9 ") && $0.contains("UNPRICED") })
        // The why: the precedence chain.
        #expect(r.stdout.contains("an exact model name beats a glob"))
        #expect(r.stdout.contains("an entry with a matching service_tier beats one without"))
        // The unpriced list names the model.
        let unpricedSection = try #require(r.stdout.range(of: "Unpriced models"))
        #expect(r.stdout[unpricedSection.upperBound...].contains("mystery-model-9 provider acme: 2 requests"))

        let strict = try runTokenmeter(["prices", "check", "--strict", "--config", config, events])
        #expect(strict.status == 1)

        let json = try runTokenmeter(["prices", "check", "--json", "--config", config, events])
        #expect(json.status == 0)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((o["events"] as? Int) == 6 && (o["rejected"] as? Int) == 1)
        let unpriced = try #require(o["unpriced"] as? [[String: Any]])
        #expect(unpriced.count == 1 && unpriced[0]["model"] as? String == "mystery-model-9" && unpriced[0]["requests"] as? Int == 2)
        let models = try #require(o["models"] as? [[String: Any]])
        #expect(models.count == 4)
        let mini = try #require(models.first { $0["model"] as? String == "gpt-4o-mini" && $0["service_tier"] is NSNull })
        let res = try #require((mini["resolutions"] as? [[String: Any]])?.first)
        #expect(res["origin"] as? String == "\(config):7")
        #expect((res["explain"] as? [String])?.last?.hasPrefix("result: \(config):7") == true)

        // Every model priced: --strict passes.
        try """
        [[price]]
        model = "*"
        input = 1
        output = 1
        """.write(toFile: dir + "/all.toml", atomically: true, encoding: .utf8)
        let all = try runTokenmeter(["prices", "check", "--strict", "--config", dir + "/all.toml", events])
        #expect(all.status == 0 && all.stdout.contains("Every model in the sample has a price."))

        // A bad config: 78, like check-config.
        try "[[price]]\nmodel = 1\n".write(toFile: dir + "/bad.toml", atomically: true, encoding: .utf8)
        #expect(try runTokenmeter(["prices", "check", "--config", dir + "/bad.toml", events]).status == 78)
    }

    @Test func checkOnTheRealPayloads() throws {
        let r = try runTokenmeter(["prices", "check", "--config", sharedTestdataPath("real-payloads/prices.toml"),
                                   sharedTestdataPath("real-payloads/events.jsonl")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("84 events"))
        let unpriced = try #require(r.stdout.range(of: "Unpriced models"))
        let tail = r.stdout[unpriced.upperBound...]
        #expect(tail.contains("claude-fable-5"))
        #expect(tail.contains("(no model"))
    }

    @Test func defaultPriceListPassesCheckConfig() throws {
        let r = try runTokenmeter(["check-config", "--config", Self.repoRoot + "/config/prices.toml"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(": ok ("))
    }
}
