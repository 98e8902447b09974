import Foundation
import Testing
@testable import TokenmeterCore
import TokenmeterTOML

/// `config/tokenmeter.toml` in this repository.
private let examplePath: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3) // Tests/TokenmeterCoreTests/ConfigLoaderTests.swift
    return parts.joined(separator: "/") + "/config/tokenmeter.toml"
}()

/// `config/prices.toml`, which the example includes.
private let pricesPath: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/") + "/config/prices.toml"
}()

/// The diagnostics of `text` as printed lines, or [] when it loads.
private func problems(_ text: String) -> [String] {
    switch ConfigLoader.parse(text: text, file: "t.toml") {
    case .success: return []
    case .failure(let e): return e.diagnostics.map(\.description)
    }
}

private func load(_ text: String) throws -> TokenmeterConfig {
    try ConfigLoader.parse(text: text, file: "t.toml").get()
}

private func nanos(_ p: PricePerMillion?) -> Int64? { p?.nanos }

@Suite("Config loader")
struct ConfigLoaderTests {
    @Test func providerPrefixesExtendTheBuiltInTable() throws {
        let c = try load("""
        [provider_prefixes]
        "llama-" = "meta"
        "us.anthropic." = "aws"
        """)
        #expect(c.providerPrefixes == [KeyValue("llama-", "meta"), KeyValue("us.anthropic.", "aws")])
        let table = ProviderPrefixes(extra: c.providerPrefixes)
        #expect(table.provider(forModel: "llama-3.3-70b") == "meta")
        #expect(table.provider(forModel: "us.anthropic.claude-sonnet-4-6") == "aws")
        #expect(table.provider(forModel: "anthropic.claude-3-haiku") == "bedrock")
        let long = String(repeating: "p", count: 257)
        #expect(problems("[provider_prefixes]\n\"llama-\" = 3") == [
            "t.toml:2:12: error: `provider_prefixes.\"llama-\"` must be a provider name (a string), not an integer",
        ])
        #expect(problems("[provider_prefixes]\n\"x-\" = \"\(long)\"") == [
            "t.toml:2:8: error: `provider_prefixes.\"x-\"` must be a provider name of 1 to 256 bytes",
        ])
        #expect(problems("[provider_prefixes]\n\"\" = \"meta\"") == [
            "t.toml:2:1: error: a provider prefix must be 1 to 256 bytes, not 0",
        ])
        #expect(problems("provider_prefixes = 3") == [
            "t.toml:1:21: error: `provider_prefixes` must be a table (`[provider_prefixes]`) of model-name prefix to provider, not an integer",
        ])
    }

    @Test func exampleConfigLoadsWithExpectedValues() throws {
        let result = ConfigLoader.load(path: examplePath)
        if case .failure(let e) = result { Issue.record("example config: \(e)") }
        let c = try result.get()
        #expect(c.kafka.brokers == "127.0.0.1:9092")
        #expect(c.kafka.groupId == "tokenmeter")
        #expect(c.kafka.topics == ["llm-usage"])
        #expect(c.kafka.alertsTopic == "llm-alerts")
        #expect(c.kafka.deadLetterTopic == "llm-usage-dlq")
        #expect(c.kafka.properties.first == KeyValue("security.protocol", "SASL_SSL"))
        #expect(c.kafka.properties.contains(KeyValue("fetch.wait.max.ms", "100")))
        #expect(c.kafka.secretFiles == [KeyValue("sasl.password", "/run/credentials/tokenmeter.service/kafka-password")])
        #expect(c.rollups.dir == "/var/lib/tokenmeter/rollups")
        #expect(c.rollups.windows.map(\.label) == ["1m", "1h", "1d"])
        #expect(c.rollups.windows.map(\.millis) == [60_000, 3_600_000, 86_400_000])
        #expect(c.rollups.grace.millis == 30_000)
        #expect(c.rollups.idleClose.millis == 120_000)
        #expect(c.rollups.lateHorizon.millis == 7 * 86_400_000)
        #expect(c.rollups.tags == ["environment"])
        #expect(c.rollups.instance == "tokenmeter-1")
        #expect(c.state.dir == "/var/lib/tokenmeter/state")
        #expect(c.state.checkpointInterval.millis == 5_000)
        #expect(c.dedup.window.millis == 3_600_000)
        #expect(c.http.listen == "127.0.0.1:9464")

        // Its own twelve entries, then those of config/prices.toml, which it includes.
        let included = try ConfigLoader.load(path: pricesPath).get().prices
        #expect(included.count > 50)
        #expect(c.prices.count == 12 + included.count)
        #expect(Array(c.prices[12...]) == included)
        #expect(c.prices[12...].allSatisfy { $0.origin.hasPrefix(pricesPath + ":") })
        let gpt4o = c.prices[0]
        #expect(gpt4o.model == "gpt-4o*")
        #expect(gpt4o.provider == "openai")
        #expect(gpt4o.input.nanos == 2_500_000_000)
        #expect(nanos(gpt4o.cacheRead) == 1_250_000_000)
        #expect(gpt4o.output.nanos == 10_000_000_000)
        #expect(gpt4o.effectiveFrom == RFC3339.parse("2024-10-01T00:00:00Z"))
        let firstPriceLine = try #require(try String(contentsOfFile: examplePath, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).firstIndex(of: "[[price]]")) + 1
        #expect(gpt4o.origin.hasSuffix("config/tokenmeter.toml:\(firstPriceLine)"))
        let batch = c.prices[1]
        #expect(batch.serviceTier == "batch")
        #expect(batch.effectiveFrom == gpt4o.effectiveFrom) // TOML date == string date
        #expect(c.prices[4].effectiveFrom == RFC3339.parse("2025-06-10T00:00:00Z"))
        let sonnet = c.prices[6]
        #expect(nanos(sonnet.cacheWrite) == 3_750_000_000)
        #expect(nanos(sonnet.cacheWrite1h) == 6_000_000_000)
        #expect(c.prices[7].minInputTokens == 200_001)
        #expect(nanos(c.prices[11].reasoning) == 3_500_000_000)

        #expect(c.budgets.count == 2)
        #expect(c.budgets[0] == BudgetRule(name: "finance-monthly", owner: "finance-ops", period: .month,
                                           amount: Money(dollars: 5000), thresholds: [50, 80, 100], forecast: true))
        #expect(c.budgets[1] == BudgetRule(name: "invoice-daily", workflow: "invoice-*", period: .day,
                                           amount: Money(dollars: 250), thresholds: [80, 100, 150], forecast: false))
        #expect(c.spikes == [SpikeRule(name: "workflow-spike", by: .workflow, window: DurationSpec(millis: 300_000, label: "5m"),
                                       factorMilli: 3000, min: Money(dollars: 1))])
        #expect(c.outcomeLimits == [OutcomeLimitRule(name: "invoice-unit-cost", workflow: "invoice-extraction",
                                                     owner: "finance-ops", outcome: "invoice_processed",
                                                     maxCost: Money.parse("0.05")!, period: .day)])
        #expect(ConfigLoader.summary(c) == "\(12 + included.count) prices, 2 budgets, 1 spikes, 1 outcome limits; windows 1m,1h,1d")
    }

    /// The example documents every key: each one appears at least once.
    @Test func scaleOutTopicsParseAndAreChecked() throws {
        let base = "[kafka]\ntopics = [\"llm-usage\"]\n"
        let c = try load(base + "changelog_topic = \"tm-changelog\"\nspend_topic = \"tm-spend\"\n")
        #expect(c.kafka.changelogTopic == "tm-changelog" && c.kafka.spendTopic == "tm-spend")
        #expect(c.state.checkpointInterval.millis == 1_000, "spend deltas leave with each checkpoint: 1s unless set")
        let none = try load(base)
        #expect(none.kafka.changelogTopic == nil && none.kafka.spendTopic == nil)
        #expect(none.state.checkpointInterval.millis == 5_000)
        let set = try load(base + "changelog_topic = \"a\"\nspend_topic = \"b\"\n[state]\ncheckpoint_interval = \"3s\"\n")
        #expect(set.state.checkpointInterval.millis == 3_000)
        #expect(problems(base + "spend_topic = \"tm-spend\"\n")
            == ["t.toml:3:15: error: `kafka.spend_topic` needs `kafka.changelog_topic`: alert shards keep their state in the changelog"])
        let reused = problems(base + "changelog_topic = \"llm-usage\"\n")
        #expect(reused.count == 1 && reused[0].hasPrefix("t.toml:3:19: error: `kafka.changelog_topic` \"llm-usage\" must be a topic of its own"))
        let same = problems(base + "changelog_topic = \"x\"\nspend_topic = \"x\"\n")
        #expect(same.count == 1 && same[0].contains("`kafka.spend_topic` \"x\" must be a topic of its own (it is already used by `kafka.changelog_topic`)"))
    }

    @Test func metricsDimensionsAndSeriesCap() throws {
        #expect(try load("").metrics == MetricsSettings())
        let c = try load("""
        [metrics]
        dimensions = ["owner", "model_family", "tag:cost-center"]
        max_series = 50
        [rollups]
        tags = ["cost-center"]
        """)
        #expect(c.metrics.dimensions == [.owner, .modelFamily, .tag("cost-center")])
        #expect(c.metrics.dimensions.map(\.labelName) == ["owner", "model_family", "tag_cost_center"])
        #expect(c.metrics.maxSeries == 50)
        #expect(problems("[metrics]\ndimensions = [\"team\"]") == [
            "t.toml:2:15: error: `metrics.dimensions`: unknown dimension \"team\" (use owner, workflow, model, provider, model_family or tag:NAME with NAME one of rollups.tags)",
        ])
        #expect(problems("[metrics]\ndimensions = [\"tag:team\"]") == [
            "t.toml:2:15: error: `metrics.dimensions`: \"tag:team\" is not in `rollups.tags` (none configured)",
        ])
        #expect(problems("[metrics]\nmax_series = 0") == [
            "t.toml:2:14: error: `metrics.max_series` must be between 1 and 100000: each series is scraped on every scrape",
        ])
    }

    /// The example shows every key of the key table: set, or commented out (`# max_memory = ...`) for a key
    /// that is off by default.
    @Test func exampleConfigCoversEveryKey() throws {
        let bytes = try ConfigLoader.readFile(examplePath).get()
        let text = try #require(String(validating: bytes, as: UTF8.self))
        let root = try TOMLParser.parse(text)
        let lines = text.split(separator: "\n").map { $0.trimmingPrefix(while: \.isWhitespace) }
        #expect(root["include"] != nil, "the example shows `include`")
        for section in ConfigKeys.sections {
            var value: TOMLValue? = nil
            for (i, part) in section.name.split(separator: ".").enumerated() {
                value = i == 0 ? root[String(part)] : value?.table?[String(part)]
            }
            let tables = value?.array?.compactMap(\.table) ?? [value?.table].compactMap { $0 }
            switch section.shape {
            case .map:
                #expect(tables.first?.isEmpty == false || lines.contains { $0.hasPrefix("# \(section.header)") },
                        "\(section.header) is not in the example")
            case .table, .arrayOfTables:
                let present = Set(tables.flatMap(\.keys))
                for key in section.keys {
                    #expect(present.contains(key.name) || lines.contains { $0.hasPrefix("# \(key.name) = ") },
                            "\(key.path) is not in the example")
                }
            }
        }
    }

    @Test func focusBillingAccountIsReadAndChecked() throws {
        let c = try load("[focus]\nbilling_account_id = \"acme\"\nbilling_account_name = \"ACME AI\"\n")
        #expect(c.focus.billingAccountId == "acme" && c.focus.billingAccountName == "ACME AI")
        #expect(try load("").focus == FocusSettings())
        let bad = problems("[focus]\nbilling_account_id = \"a\\u0007b\"\nbilling_account_name = \"\"\nbilling_acount = 1\n")
        #expect(bad.count == 3, "\(bad)")
        #expect(bad.contains { $0.hasPrefix("t.toml:2:") && $0.contains("`focus.billing_account_id` contains a control character") })
        #expect(bad.contains { $0.hasPrefix("t.toml:3:") && $0.contains("`focus.billing_account_name` must not be empty") })
        #expect(bad.contains { $0.hasPrefix("t.toml:4:") && $0.contains("billing_acount") })
        let long = problems("[focus]\nbilling_account_id = \"\(String(repeating: "x", count: 300))\"\n")
        #expect(long.count == 1 && long[0].contains("longer than 256 bytes"))
    }

    @Test func pricesMayBeInlineTablesAndDatesMayHaveOffsets() throws {
        let c = try load("""
        price = [
          { model = "a", input = 1, output = 2, effective_from = "2024-10-01T02:00:00+02:00" },
          { model = "a", input = 1, output = 2, effective_from = 2024-10-01T00:00:00.500Z },
        ]
        """)
        #expect(c.prices.map(\.effectiveFrom) == [RFC3339.parse("2024-10-01T00:00:00Z"), RFC3339.parse("2024-10-01T00:00:00.5Z")])
        #expect(c.prices.map(\.origin) == ["t.toml:2", "t.toml:3"])
    }

    /// Truncations of the example never crash the loader and always report a position inside the file.
    @Test func truncatedExampleNeverCrashes() throws {
        let bytes = try ConfigLoader.readFile(examplePath).get()
        let lineCount = bytes.filter { $0 == 0x0A }.count + 1
        for n in stride(from: 0, through: bytes.count, by: 23) {
            if case .failure(let e) = ConfigLoader.parse(bytes: Array(bytes[0..<n]), file: "x") {
                #expect(!e.diagnostics.isEmpty)
                for d in e.diagnostics where d.file == "x" { #expect(d.line >= 1 && d.line <= lineCount && d.column >= 1) }
            }
        }
    }

    /// `include`: files of [[price]] entries, relative to the config's folder, read after its own entries with
    /// their own FILE:LINE origins.
    @Test func includedPriceFilesComeAfterTheConfigsOwnWithTheirOrigins() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("include-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/lists", withIntermediateDirectories: true)
        try "# a list\n[[price]]\nmodel = \"a\"\ninput = 1\noutput = 2\n\n[[price]]\nmodel = \"b\"\ninput = 0.5\noutput = 1.5\n"
            .write(toFile: dir + "/lists/p.toml", atomically: true, encoding: .utf8)
        try "include = [\"lists/p.toml\"]\n\n[[price]]\nmodel = \"own\"\ninput = 3\noutput = 4\n"
            .write(toFile: dir + "/main.toml", atomically: true, encoding: .utf8)
        let c = try ConfigLoader.load(path: dir + "/main.toml").get()
        #expect(c.prices.map(\.model) == ["own", "a", "b"])
        #expect(c.prices.map(\.origin) == [dir + "/main.toml:3", dir + "/lists/p.toml:2", dir + "/lists/p.toml:7"])
        #expect(nanos(c.prices[2].input) == 500_000_000)
    }

    @Test func includeProblemsAreReportedInTheFileWhereTheyAre() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("include-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "[kafka]\nbrokers = \"k:1\"\n\n[[price]]\nmodel = \"own\"\ninput = 3\noutput = 4\n\n[[price]]\nmodel = \"z\"\ninput = \"cheap\"\noutput = 1\n"
            .write(toFile: dir + "/p.toml", atomically: true, encoding: .utf8)
        try "include = [\"p.toml\", \"missing.toml\"]\n\n[[price]]\nmodel = \"own\"\ninput = 3\noutput = 4\n"
            .write(toFile: dir + "/main.toml", atomically: true, encoding: .utf8)
        guard case .failure(let e) = ConfigLoader.load(path: dir + "/main.toml") else {
            Issue.record("loaded")
            return
        }
        #expect(e.diagnostics.map(\.description) == [
            "\(dir)/main.toml:1:22: error: `include` \"missing.toml\": cannot read \(dir)/missing.toml: No such file or directory",
            "\(dir)/p.toml:1:2: error: `kafka`: an included file holds [[price]] entries only; settings belong in \(dir)/main.toml",
            "\(dir)/p.toml:4:1: error: ambiguous price for model \"own\": the [[price]] entry at \(dir)/main.toml:3 has the same "
                + "model, provider, service_tier, min_input_tokens and effective_from",
            "\(dir)/p.toml:11:9: error: `price.input` must be a number, not a string",
        ])
        #expect(problems("include = [\"/dev/stdin\"]\n") == ["t.toml:1:12: error: `include` \"/dev/stdin\": /dev/stdin is not a regular file"])
        #expect(problems("include = \"p.toml\"\n") == ["t.toml:1:11: error: `include` must be an array of strings, not a string (write [\"p.toml\"])"])
    }

    @Test func emptyConfigTakesTheDefaults() throws {
        #expect(try load("") == TokenmeterConfig())
        #expect(try load("# nothing\n[kafka]\n[rollups]\n") == TokenmeterConfig())
    }

    @Test func pricesAreParsedExactlyFromTheirText() throws {
        let c = try load("""
        [[price]]
        model = "a"
        input = 0.1
        output = 2.50
        cache_read = 1e-1
        reasoning = 0.000000001
        [[price]]
        model = "b"
        input = 3
        output = 1_000.5
        cache_write = 0
        cache_write_1h = 0x10
        """)
        #expect(c.prices[0].input.nanos == 100_000_000)
        #expect(c.prices[0].output.nanos == 2_500_000_000)
        #expect(nanos(c.prices[0].cacheRead) == 100_000_000)
        #expect(nanos(c.prices[0].reasoning) == 1)
        #expect(c.prices[1].input.nanos == 3_000_000_000)
        #expect(c.prices[1].output.nanos == 1_000_500_000_000)
        #expect(nanos(c.prices[1].cacheWrite) == 0)
        #expect(nanos(c.prices[1].cacheWrite1h) == 16_000_000_000)
        #expect(c.prices[0].origin == "t.toml:1")
        #expect(c.prices[1].origin == "t.toml:7")
    }

    @Test func rulesTakeTheirDefaults() throws {
        let c = try load("""
        [[budget]]
        name = "all"
        period = "week"
        amount_usd = 0.1
        [[spike]]
        name = "s"
        by = "owner"
        window = "1h"
        factor = 2.125
        [[outcome_limit]]
        name = "o"
        outcome = "done"
        max_cost_usd = 1e-2
        """)
        #expect(c.budgets == [BudgetRule(name: "all", period: .week, amount: Money.parse("0.1")!, thresholds: [50, 80, 100],
                                         forecast: false)])
        #expect(c.spikes[0].factorMilli == 2125)
        #expect(c.spikes[0].min == .zero)
        #expect(c.outcomeLimits[0].period == .day)
        #expect(c.outcomeLimits[0].maxCost == Money(femtos: 10_000_000_000_000))
    }

    @Test func everyProblemIsReportedWithItsPosition() {
        #expect(problems("""
        [kafka]
        brokres = "127.0.0.1:9092"
        group_id = 7
        topics = ["llm-usage", ""]
        [kafka.properties]
        "group.id" = "other"
        enable.auto.commit = true

        [rollups]
        windows = ["1m", "7m", "60m", "1h"]
        grace = "30"
        late_horizon = "10s"

        [http]
        listen = "[::1]:70000"

        [[price]]
        model = "gpt-4o"
        input = "2.50"
        output = -1

        [[budget]]
        name = "b"
        period = "monthly"
        amount_usd = 100
        thresholds = [80, 50]

        [[budgets]]
        """) == [
            "t.toml:2:1: error: unknown key `brokres` in [kafka]; did you mean `brokers`?",
            "t.toml:3:12: error: `kafka.group_id` must be a string, not an integer",
            "t.toml:4:24: error: `kafka.topics` must not contain an empty string",
            "t.toml:6:1: error: librdkafka property `group.id` is managed by tokenmeter: set `group_id` in [kafka] instead",
            "t.toml:7:1: error: librdkafka property `enable.auto.commit` is managed by tokenmeter: tokenmeter commits offsets itself, only after the state they cover is checkpointed",
            "t.toml:10:18: error: `rollups.windows`: window \"7m\" must divide one day (such as 1m, 5m, 15m, 1h, 6h, 1d) or be a whole number of days, so that windows start at the same times every day",
            "t.toml:10:31: error: `rollups.windows`: window \"1h\" is listed twice (as \"60m\")",
            "t.toml:11:9: error: `rollups.grace`: invalid duration \"30\" (expected a whole number and a unit: ms, s, m, h, d or w, such as \"30s\", \"5m\", \"1h\")",
            "t.toml:12:16: error: `rollups.late_horizon` (10s) must not be shorter than `rollups.grace` (30s): events later than the late horizon are dead-lettered",
            "t.toml:15:10: error: `http.listen`: the port in \"[::1]:70000\" must be a number from 0 to 65535",
            "t.toml:19:9: error: `price.input` must be a number, not a string (write the number without quotes)",
            "t.toml:20:10: error: `price.output` must be zero or more (USD per 1M tokens), not -1",
            "t.toml:24:10: error: `budget.period` must be one of hour, day, week, month, not \"monthly\"; did you mean \"month\"?",
            "t.toml:26:19: error: `budget.thresholds` must be strictly ascending: 50 comes after 80",
            "t.toml:28:3: error: unknown table `[[budgets]]`; did you mean `[[budget]]`?",
        ])
    }

    @Test func unknownKeysAndTablesSuggestTheClosestName() {
        #expect(problems("[rollups]\nwindow = [\"1m\"]") == [
            "t.toml:2:1: error: unknown key `window` in [rollups]; did you mean `windows`?",
        ])
        #expect(problems("[kafka.propreties]\nx = 1") == [
            "t.toml:1:8: error: unknown table `[kafka.propreties]`; did you mean `[kafka.properties]`?",
        ])
        #expect(problems("[[price]]\nmodel = \"m\"\ninput = 1\noutput = 2\nouptut_price = 3") == [
            "t.toml:5:1: error: unknown key `ouptut_price` in [[price]]",
        ])
        #expect(problems("[[price]]\nmodel = \"m\"\ninput = 1\noutput = 2\ncache_reads = 3") == [
            "t.toml:5:1: error: unknown key `cache_reads` in [[price]]; did you mean `cache_read`?",
        ])
        #expect(problems("[telemetry]\nlisten = \"x\"") == [
            "t.toml:1:2: error: unknown table `[telemetry]` (known tables: [kafka], [rollups], [state], [dedup], [http], [focus], [metrics], [provider_prefixes], [otlp], [[price]], [[budget]], [[spike]], [[outcome_limit]])",
        ])
        #expect(problems("[metrics]\nlisten = \"x\"") == ["t.toml:2:1: error: unknown key `listen` in [metrics]"])
        #expect(problems("brokers = \"b:9092\"\n[kafka]") == [
            "t.toml:1:1: error: unknown key `brokers` at the top level; it belongs in a [kafka] table",
        ])
        #expect(problems("[price]\nmodel = \"m\"") == [
            "t.toml:1:1: error: `price` is a list of entries: write `[[price]]`, not `[price]`",
        ])
        #expect(problems("[[kafka]]") == [
            "t.toml:1:1: error: `kafka` is a single table: write `[kafka]`, not `[[kafka]]`",
        ])
    }

    @Test func wrongTypes() {
        #expect(problems("""
        [kafka]
        topics = "llm-usage"
        [rollups]
        tags = ["a", 1]
        windows = "1m"
        [dedup]
        window = 3600
        [[budget]]
        name = "b"
        period = "day"
        amount_usd = "10"
        forecast = 1
        [[price]]
        model = "m"
        input = 1
        output = 1
        min_input_tokens = 1.5
        effective_from = 2024-10-01T00:00:00
        """) == [
            "t.toml:2:10: error: `kafka.topics` must be an array of strings, not a string (write [\"llm-usage\"])",
            "t.toml:4:14: error: `rollups.tags` must contain only strings, not an integer",
            "t.toml:5:11: error: `rollups.windows` must be an array of durations such as [\"1m\", \"1h\", \"1d\"], not a string",
            "t.toml:7:10: error: `dedup.window` must be a duration string such as \"3600s\" (with a unit: ms, s, m, h, d, w), not an integer",
            "t.toml:11:14: error: `budget.amount_usd` must be a number, not a string (write the number without quotes)",
            "t.toml:12:12: error: `budget.forecast` must be a boolean (true or false), not an integer",
            "t.toml:17:20: error: `price.min_input_tokens` must be an integer, not a float",
            "t.toml:18:18: error: `price.effective_from` 2024-10-01T00:00:00 has no time zone: add `Z` for UTC (2024-10-01T00:00:00Z) or an offset",
        ])
    }

    @Test func badDurations() throws {
        #expect(problems("""
        [rollups]
        windows = ["1m", "500ms", "10 s", "0s"]
        idle_close = "2 minutes"
        [state]
        checkpoint_interval = "0ms"
        [[spike]]
        name = "s"
        by = "owner"
        window = "5"
        factor = 1.5
        """) == [
            "t.toml:2:18: error: `rollups.windows`: window \"500ms\" must be a positive whole number of seconds",
            "t.toml:2:27: error: `rollups.windows`: invalid duration \"10 s\" (expected a whole number and a unit: ms, s, m, h, d or w, such as \"30s\", \"5m\", \"1h\")",
            "t.toml:2:35: error: `rollups.windows`: window \"0s\" must be a positive whole number of seconds",
            "t.toml:3:14: error: `rollups.idle_close`: invalid duration \"2 minutes\" (expected a whole number and a unit: ms, s, m, h, d or w, such as \"30s\", \"5m\", \"1h\")",
            "t.toml:5:23: error: `state.checkpoint_interval` must be longer than 0",
            "t.toml:9:10: error: `spike.window`: invalid duration \"5\" (expected a whole number and a unit: ms, s, m, h, d or w, such as \"30s\", \"5m\", \"1h\")",
        ])
        #expect(problems("[rollups]\ngrace = \"8d\"") == [
            "t.toml:2:9: error: `rollups.late_horizon` (7d) must not be shorter than `rollups.grace` (8d): events later than the late horizon are dead-lettered",
        ])
        #expect(try load("[rollups]\nwindows = [\"2d\", \"90s\", \"1h30m\"]").rollups.windows.map(\.millis)
            == [172_800_000, 90_000, 5_400_000])
    }

    @Test func duplicateRuleNames() {
        #expect(problems("""
        [[budget]]
        name = "x"
        period = "day"
        amount_usd = 1
        [[budget]]
        name = "x"
        period = "week"
        amount_usd = 2
        [[spike]]
        name = "x"
        by = "owner"
        window = "5m"
        factor = 2
        [[outcome_limit]]
        name = "x"
        outcome = "o"
        max_cost_usd = 1
        [[outcome_limit]]
        name = "x"
        outcome = "o"
        max_cost_usd = 1
        """) == [
            "t.toml:6:8: error: duplicate budget name \"x\" (first used at line 2)",
            "t.toml:19:8: error: duplicate outcome_limit name \"x\" (first used at line 15)",
        ])
    }

    @Test func ambiguousPrices() {
        #expect(problems("""
        [[price]]
        model = "gpt-4o*"
        provider = "openai"
        input = 2.5
        output = 10
        effective_from = "2024-10-01"

        [[price]]
        model = "gpt-4o*"
        provider = "openai"
        input = 2.5
        output = 10
        effective_from = 2024-10-01T00:00:00Z

        [[price]]
        model = "gpt-4o*"
        provider = "openai"
        service_tier = "batch"
        input = 1.25
        output = 5
        effective_from = 2024-10-01

        [[price]]
        model = "x"
        input = 1
        output = 1
        min_input_tokens = 0

        [[price]]
        model = "x"
        input = 2
        output = 2
        """) == [
            "t.toml:8:1: error: ambiguous price for model \"gpt-4o*\": the [[price]] entry at line 1 has the same model, provider, service_tier, min_input_tokens and effective_from",
            "t.toml:29:1: error: ambiguous price for model \"x\": the [[price]] entry at line 23 has the same model, provider, service_tier, min_input_tokens and effective_from",
        ])
    }

    @Test func missingRequiredKeys() {
        #expect(problems("[[price]]\nprovider = \"openai\"\n[[budget]]\n[[spike]]\nname = \"s\"\n[[outcome_limit]]\n") == [
            "t.toml:1:1: error: [[price]] entry is missing the required key `model`",
            "t.toml:1:1: error: [[price]] entry is missing the required key `input`",
            "t.toml:1:1: error: [[price]] entry is missing the required key `output`",
            "t.toml:3:1: error: [[budget]] entry is missing the required key `name`",
            "t.toml:3:1: error: [[budget]] entry is missing the required key `period`",
            "t.toml:3:1: error: [[budget]] entry is missing the required key `amount_usd`",
            "t.toml:4:1: error: [[spike]] entry is missing the required key `by`",
            "t.toml:4:1: error: [[spike]] entry is missing the required key `window`",
            "t.toml:4:1: error: [[spike]] entry is missing the required key `factor`",
            "t.toml:6:1: error: [[outcome_limit]] entry is missing the required key `name`",
            "t.toml:6:1: error: [[outcome_limit]] entry is missing the required key `outcome`",
            "t.toml:6:1: error: [[outcome_limit]] entry is missing the required key `max_cost_usd`",
        ])
    }

    @Test func kafkaPropertiesAndSecrets() throws {
        let c = try load("""
        [kafka]
        brokers = ["b1:9092", "b2:9092"]
        [kafka.properties]
        security.protocol = "SASL_SSL"
        "fetch.wait.max.ms" = 100
        "enable.ssl.certificate.verification" = false
        [kafka.secret_files]
        "ssl.key.password" = "/run/secrets/key"
        """)
        #expect(c.kafka.brokers == "b1:9092,b2:9092")
        #expect(c.kafka.properties == [KeyValue("security.protocol", "SASL_SSL"), KeyValue("fetch.wait.max.ms", "100"),
                                       KeyValue("enable.ssl.certificate.verification", "false")])
        #expect(c.kafka.secretFiles == [KeyValue("ssl.key.password", "/run/secrets/key")])
        #expect(problems("""
        [kafka]
        alerts_topic = "llm-usage"
        [kafka.properties]
        "sasl.password" = "x"
        "bootstrap.servers" = "b:9092"
        [kafka.secret_files]
        "sasl.password" = "/run/x"
        "sasl.username" = ""
        """) == [
            "t.toml:2:16: error: `kafka.alerts_topic` \"llm-usage\" is also listed in `kafka.topics`: alerts would be read back as usage events",
            "t.toml:5:1: error: librdkafka property `bootstrap.servers` is managed by tokenmeter: set `brokers` in [kafka] instead",
            "t.toml:7:1: error: librdkafka property `sasl.password` is set both here and in [kafka.properties] (line 4); keep one",
            "t.toml:8:19: error: `kafka.secret_files.\"sasl.username\"` must not be empty: give the path of the file that holds the value",
        ])
    }

    @Test func rollupInstanceAndListen() throws {
        #expect(try load("[rollups]\ninstance = \"host-1.a_b\"").rollups.instance == "host-1.a_b")
        #expect(try load("[http]\nlisten = \"[::1]:9464\"").http.listen == "[::1]:9464")
        #expect(try load("[http]\nlisten = \"0.0.0.0:0\"").http.listen == "0.0.0.0:0")
        #expect(problems("[rollups]\ninstance = \"../x\"\n[http]\nlisten = \"::1:9464\"") == [
            "t.toml:2:12: error: `rollups.instance` \"../x\" may contain only letters, digits, `.`, `_` and `-` (and must not start with `.`): it is part of rollup file names",
            "t.toml:4:10: error: `http.listen`: an IPv6 address must be in brackets, such as [::1]:9464, got \"::1:9464\"",
        ])
    }

    @Test func syntaxErrorIsTheOnlyDiagnostic() {
        #expect(problems("[kafka]\nbrokres = \"x\"\ntopics = [\"a\",\n") == [
            "t.toml:4:1: error: unterminated array (opened at line 3, column 10): expected `]`",
        ])
    }

    @Test func unreadableFile() {
        let path = examplePath + ".does-not-exist"
        guard case .failure(let e) = ConfigLoader.load(path: path) else {
            Issue.record("a missing file loaded")
            return
        }
        #expect(e.description == "\(path):1:1: error: cannot read \(path): No such file or directory")
    }

    @Test func invalidUTF8() {
        guard case .failure(let e) = ConfigLoader.parse(bytes: Array("a = 1\nb = \"".utf8) + [0xFF, 0x22], file: "t.toml") else {
            Issue.record("invalid UTF-8 loaded")
            return
        }
        #expect(e.description == "t.toml:2:6: error: the file is not valid UTF-8")
    }

    // MARK: OTLP trace topics

    @Test func inputFormatsNameListedTopicsAndKnownFormats() throws {
        let ok = try load("[kafka]\ntopics = [\"usage\", \"otlp.spans\"]\n[kafka.input_formats]\n\"otlp.spans\" = \"otlp_json\"\n")
        #expect(ok.kafka.inputFormat(of: "otlp.spans") == .otlpJSON)
        #expect(ok.kafka.inputFormat(of: "usage") == .json)
        let dotted = try load("[kafka]\ntopics = [\"otlp.spans\"]\n[kafka.input_formats]\notlp.spans = \"otlp_proto\"\n")
        #expect(dotted.kafka.inputFormat(of: "otlp.spans") == .otlpProto, "an unquoted dotted key is the topic name it spells")
        #expect(problems("[kafka]\ntopics = [\"a\", \"spans\"]\n[kafka.input_formats]\nspans = \"otlp_protobuf\"\nspan = \"otlp_json\"\nx = 3") == [
            "t.toml:4:9: error: `kafka.input_formats.\"spans\"` must be one of json, otlp_proto or otlp_json, not \"otlp_protobuf\"; did you mean \"otlp_proto\"?",
            "t.toml:5:1: error: `kafka.input_formats`: \"span\" is not one of `kafka.topics` (a, spans); did you mean \"spans\"?",
            "t.toml:6:1: error: `kafka.input_formats`: \"x\" is not one of `kafka.topics` (a, spans); did you mean \"a\"?",
            "t.toml:6:5: error: `kafka.input_formats.\"x\"` must be one of json, otlp_proto or otlp_json (a string), not an integer",
        ])
        #expect(problems("[kafka]\ninput_formats = 1") == [
            "t.toml:2:17: error: `kafka.input_formats` must be a table (`[kafka.input_formats]`) of topic name to format, not an integer",
        ])
    }

    @Test func otlpMappingIsBounded() throws {
        let c = try load("[rollups]\ntags = [\"env\"]\n[otlp]\nworkflow_attributes = [\"app\"]\n[otlp.tags]\nenv = \"deployment.environment\"\n")
        #expect(c.otlp.workflowAttributes == ["app"])
        #expect(c.otlp.ownerAttributes == ["team", "service.namespace"])
        #expect(c.otlp.tags == [KeyValue("env", "deployment.environment")])
        let many = "[" + (0..<17).map { "\"a\($0)\"" }.joined(separator: ", ") + "]"
        #expect(problems("[otlp]\nworkflow_attributes = []\nowner_attributes = \(many)\nworkflow_attribute = 1\n[otlp.tags]\nregion = \"cloud.region\"") == [
            "t.toml:2:23: error: `otlp.workflow_attributes` must name 1 to 16 attributes, not 0",
            "t.toml:3:20: error: `otlp.owner_attributes` must name 1 to 16 attributes, not 17",
            "t.toml:4:1: error: unknown key `workflow_attribute` in [otlp]; did you mean `workflow_attributes`?",
            "t.toml:6:1: error: `otlp.tags`: \"region\" is not in `rollups.tags` (none configured)",
        ])
    }

}
