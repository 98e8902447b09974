import Testing
@testable import TokenmeterCore

/// Decodes `json`, expecting success.
@discardableResult
func decodeOK(_ d: EventDecoder, _ json: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    let r = d.decode(json)
    #expect(r == nil, "unexpected reject: \(r?.description ?? "")", sourceLocation: sourceLocation)
    return r == nil
}

/// Decodes `json`, expecting a reject with `code` whose detail contains `detail`.
func expectReject(_ json: String, _ code: RejectReason.Code, _ detail: String,
                  decoder: EventDecoder = EventDecoder(), sourceLocation: SourceLocation = #_sourceLocation) {
    let r = decoder.decode(json)
    #expect(r?.code == code, "\(json.prefix(120)) -> \(r?.description ?? "accepted")", sourceLocation: sourceLocation)
    #expect(r?.detail.contains(detail) == true, "detail '\(r?.detail ?? "")' lacks '\(detail)'", sourceLocation: sourceLocation)
}

/// The single contribution's tokens.
func onlyTokens(_ d: EventDecoder, sourceLocation: SourceLocation = #_sourceLocation) -> TokenCounts? {
    #expect(d.event.contributions.count == 1, sourceLocation: sourceLocation)
    return d.event.contributions.first?.tokens
}

let wo = #""workflow":"wf","owner":"team""#

@Suite("EventDecoder: canonical events (1a)")
struct CanonicalEventTests {
    @Test func fullCanonicalEvent() throws {
        let d = EventDecoder()
        decodeOK(d, #"""
        {"id":"evt-1","type":"usage","timestamp":"2026-11-29T10:00:00.250Z","workflow":"invoice-extraction",
         "owner":"finance-ops","model":"gpt-4o","provider":"openai","input_tokens":1500,"cache_read_tokens":400,
         "cache_write_tokens":100,"output_tokens":250,"reasoning_tokens":50,"cost_usd":0.123456789012345,
         "status":"error","service_tier":"priority","tags":{"environment":"prod","customer":"acme"}}
        """#)
        let e = d.event
        #expect(e.kind == .usage)
        #expect(d.string(e.id) == "evt-1")
        #expect(e.timestamp == RFC3339.parse("2026-11-29T10:00:00.250Z"))
        #expect(d.string(e.workflow) == "invoice-extraction")
        #expect(d.string(e.owner) == "finance-ops")
        #expect(d.string(e.provider) == "openai")
        #expect(d.string(e.serviceTier) == "priority")
        #expect(e.isError)
        #expect(e.costOverride == Money(femtos: 123_456_789_012_345))
        #expect(e.contributions.count == 1)
        #expect(d.string(e.contributions[0].model) == "gpt-4o")
        #expect(e.contributions[0].tokens == TokenCounts(input: 1500, cacheRead: 400, cacheWrite: 100, output: 250, reasoning: 50))
        #expect(e.tags.count == 2)
        #expect(d.string(e.tags[0].name) == "environment" && d.string(e.tags[0].value) == "prod")
        #expect(d.string(e.tags[1].name) == "customer" && d.string(e.tags[1].value) == "acme")
        #expect(d.equals(e.workflow, "invoice-extraction"))
        d.withBytes(e.owner) { #expect($0.count == 11) }
    }

    @Test func defaults() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo)}")
        let e = d.event
        #expect(e.kind == .usage)
        #expect(e.id.isAbsent && e.provider.isAbsent && e.serviceTier.isAbsent)
        #expect(e.timestamp == nil)
        #expect(!e.isError)
        #expect(e.costOverride == nil)
        #expect(e.contributions.count == 1)
        #expect(e.contributions[0].model.isAbsent)
        #expect(e.contributions[0].tokens == TokenCounts())
        #expect(e.tags.isEmpty)
    }

    @Test func nullsAreAbsent() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"workflow":"wf","owner":"o","model":null,"provider":null,"timestamp":null,"input_tokens":null,"#
            + #""output_tokens":5,"status":null,"type":null,"cost_usd":null,"tags":null,"usage":null,"id":null}"#)
        #expect(d.event.contributions[0].tokens == TokenCounts(output: 5))
        #expect(d.event.timestamp == nil && d.event.costOverride == nil && d.event.id.isAbsent)
    }

    @Test func timestampsAndAliases() throws {
        let d = EventDecoder()
        let t = try #require(RFC3339.parse("2026-11-29T10:00:00Z"))
        decodeOK(d, "{\(wo),\"timestamp\":\"2026-11-29T12:00:00+02:00\"}")
        #expect(d.event.timestamp == t)
        decodeOK(d, "{\(wo),\"ts\":\(t)}")
        #expect(d.event.timestamp == t)
        decodeOK(d, "{\(wo),\"time\":\"2026-11-29T10:00:00Z\"}")
        #expect(d.event.timestamp == t)
        decodeOK(d, "{\(wo),\"timestamp\":\"\(t)\"}")   // digit string: epoch ms
        #expect(d.event.timestamp == t)
        // Precedence does not depend on key order: timestamp > ts > time.
        decodeOK(d, "{\"time\":1000,\"timestamp\":3000,\(wo),\"ts\":2000}")
        #expect(d.event.timestamp == 3000)
        decodeOK(d, "{\"ts\":2000,\(wo),\"time\":1000}")
        #expect(d.event.timestamp == 2000)
    }

    @Test func statusAndType() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"status\":\"ok\"}"); #expect(!d.event.isError)
        decodeOK(d, "{\(wo),\"status\":\"ERROR\"}"); #expect(d.event.isError)
        decodeOK(d, "{\(wo),\"type\":\"usage\"}"); #expect(d.event.kind == .usage)
        expectReject("{\(wo),\"status\":\"exploded\"}", .badField, "status must be \"ok\" or \"error\", got \"exploded\"")
        expectReject("{\(wo),\"type\":\"spend\"}", .badField, "type must be")
    }

    @Test func costIsExact() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"cost_usd\":5.75}")
        #expect(d.event.costOverride == Money.parse("5.75"))
        decodeOK(d, "{\(wo),\"cost_usd\":\"0.0000048\"}")
        #expect(d.event.costOverride == Money.parse("0.0000048"))
        decodeOK(d, "{\(wo),\"cost_usd\":0}")
        #expect(d.event.costOverride == Money.zero)
        expectReject("{\(wo),\"cost_usd\":-1}", .badField, "cost_usd must be")
        expectReject("{\(wo),\"cost_usd\":\"cheap\"}", .badField, "cost_usd")
        expectReject("{\(wo),\"cost_usd\":true}", .badField, "cost_usd")
    }

    @Test func tags() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"tags\":{\"env\":\"prod\",\"n\":42,\"flag\":true,\"off\":false,\"gone\":null,\"env\":\"dev\"}}")
        var tags: [String: String] = [:]
        for t in d.event.tags { tags[d.string(t.name)!] = d.string(t.value)! }
        #expect(tags == ["env": "dev", "n": "42", "flag": "true", "off": "false"])
        #expect(d.event.tags.count == 4)
        expectReject("{\(wo),\"tags\":{\"env\":{\"a\":1}}}", .badField, "tags values must be strings, got env: {\"a\":1}")
        expectReject("{\(wo),\"tags\":[\"a\"]}", .badField, "tags must be an object")
    }

    @Test func tagFilterKeepsOnlyConfiguredNames() throws {
        let d = EventDecoder(tagNames: ["environment", "feature"])
        decodeOK(d, "{\(wo),\"tags\":{\"customer\":\"acme\",\"environment\":\"prod\",\"x\":{\"deep\":[1]},\"feature\":\"ocr\"}}")
        #expect(d.event.tags.map { d.string($0.name)! } == ["environment", "feature"])
        #expect(d.event.tags.map { d.string($0.value)! } == ["prod", "ocr"])
        // Escaped names are compared after unescaping.
        decodeOK(d, "{\(wo),\"tags\":{\"envi\\u0072onment\":\"staging\"}}")
        #expect(d.string(d.event.tags.first!.value) == "staging")
    }

    @Test func idMayBeANumber() {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"id\":12345}")
        #expect(d.string(d.event.id) == "12345")
    }

    @Test func escapesAndUnicodeInNames() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"workflow":"factur\u00e9-\"q\"\\x\/y\ud83d\ude00","owner":"équipe ✓ 😀","model":"m\tx"}"#)
        #expect(d.string(d.event.workflow) == "facturé-\"q\"\\x/y😀")
        #expect(d.string(d.event.owner) == "équipe ✓ 😀")
        #expect(d.string(d.event.contributions[0].model) == "m\tx")
        // Escaped key names are still recognised.
        decodeOK(d, #"{"w\u006frkflow":"wf","\u006fwner":"o","input_\u0074okens":7}"#)
        #expect(d.string(d.event.workflow) == "wf")
        #expect(onlyTokens(d)?.input == 7)
        // 256 bytes of UTF-8 is the limit, counted after unescaping.
        let twoByte = String(repeating: "é", count: 128)   // 256 bytes
        decodeOK(d, "{\"workflow\":\"\(twoByte)\",\"owner\":\"o\"}")
        expectReject("{\"workflow\":\"\(twoByte)x\",\"owner\":\"o\"}", .badField, "workflow is 257 bytes")
        let escaped = String(repeating: "\\u00e9", count: 128)
        decodeOK(d, "{\"workflow\":\"\(escaped)\",\"owner\":\"o\"}")
        #expect(d.string(d.event.workflow) == twoByte)
    }

    @Test func decoderReuseLeavesNoStaleData() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"id":"a","workflow":"wf","owner":"o","model":"m1","provider":"anthropic","tags":{"k":"v"},"#
            + #""usage":{"input_tokens":1,"output_tokens":2,"iterations":[{"input_tokens":1,"output_tokens":1,"model":"x"},"#
            + #"{"input_tokens":5,"output_tokens":6}]},"cost_usd":1,"status":"error","timestamp":5}"#)
        #expect(d.event.contributions.count == 2)
        decodeOK(d, "{\(wo)}")
        #expect(d.event.contributions.count == 1)
        #expect(d.event.contributions[0].tokens == TokenCounts())
        #expect(d.event.tags.isEmpty && d.event.id.isAbsent && d.event.costOverride == nil && !d.event.isError)
        #expect(d.event.timestamp == nil && d.event.provider.isAbsent)
        #expect(d.scratch.count == 6)   // "wf" + "team"
        _ = d.decode("{\"broken\"")
        decodeOK(d, "{\(wo),\"input_tokens\":3}")
        #expect(onlyTokens(d)?.input == 3)
    }
}

@Suite("EventDecoder: OpenTelemetry names (1a)")
struct OTelNameTests {
    @Test func officialNames() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"gen_ai.workflow.name":"wf","owner":"o","gen_ai.provider.name":"openai","gen_ai.request.model":"gpt-5","#
            + #""gen_ai.usage.input_tokens":100,"gen_ai.usage.output_tokens":40,"gen_ai.usage.cache_read.input_tokens":20,"#
            + #""gen_ai.usage.cache_creation.input_tokens":10,"gen_ai.usage.reasoning.output_tokens":5}"#)
        #expect(d.string(d.event.workflow) == "wf")
        #expect(d.string(d.event.provider) == "openai")
        #expect(d.string(d.event.contributions[0].model) == "gpt-5")
        #expect(onlyTokens(d) == TokenCounts(input: 100, cacheRead: 20, cacheWrite: 10, output: 40, reasoning: 5))
    }

    @Test func alternativeSpellingsAndStrings() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"gen_ai.system\":\"anthropic\",\"gen_ai.usage.input_tokens\":\"100\",\"gen_ai.usage.output_tokens\":\"40\","
            + "\"gen_ai.usage.cache_read_input_tokens\":\"20\",\"gen_ai.usage.cache_creation_input_tokens\":10,"
            + "\"gen_ai.usage.reasoning_tokens\":\"5\"}")
        #expect(d.string(d.event.provider) == "anthropic")
        #expect(onlyTokens(d) == TokenCounts(input: 100, cacheRead: 20, cacheWrite: 10, output: 40, reasoning: 5))
        // Older OTel names, still emitted by some instrumentations (lowest precedence).
        decodeOK(d, "{\(wo),\"gen_ai.usage.prompt_tokens\":11,\"gen_ai.usage.completion_tokens\":\"4\"}")
        #expect(onlyTokens(d) == TokenCounts(input: 11, output: 4))
        decodeOK(d, "{\(wo),\"gen_ai.usage.input_tokens\":12,\"gen_ai.usage.prompt_tokens\":11}")
        #expect(onlyTokens(d) == TokenCounts(input: 12))
    }

    @Test func modelPrecedenceIgnoresKeyOrder() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"gen_ai.response.model\":\"resp\",\"gen_ai.request.model\":\"req\"}")
        #expect(d.string(d.event.contributions[0].model) == "resp")
        decodeOK(d, "{\(wo),\"gen_ai.request.model\":\"req\",\"gen_ai.response.model\":\"resp\"}")
        #expect(d.string(d.event.contributions[0].model) == "resp")
        decodeOK(d, "{\(wo),\"gen_ai.response.model\":\"resp\",\"model\":\"canon\",\"gen_ai.request.model\":\"req\"}")
        #expect(d.string(d.event.contributions[0].model) == "canon")
        decodeOK(d, "{\(wo),\"gen_ai.system\":\"old\",\"gen_ai.provider.name\":\"new\"}")
        #expect(d.string(d.event.provider) == "new")
        decodeOK(d, "{\"gen_ai.workflow.name\":\"otel\",\"workflow\":\"canon\",\"owner\":\"o\"}")
        #expect(d.string(d.event.workflow) == "canon")
    }

    @Test func canonicalTokenNamesBeatOTelNames() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"input_tokens\":7,\"gen_ai.usage.input_tokens\":9,\"gen_ai.usage.cache_read_input_tokens\":3,"
            + "\"gen_ai.usage.cache_read.input_tokens\":2}")
        #expect(onlyTokens(d) == TokenCounts(input: 7, cacheRead: 2))
    }

    @Test func attributesObject() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"workflow":"wf","owner":"o","attributes":{"gen_ai.request.model":"gpt-4o","gen_ai.system":"openai","#
            + #""gen_ai.usage.input_tokens":12,"gen_ai.usage.output_tokens":"3","gen_ai.workflow.name":"ignored"},"model":null}"#)
        #expect(d.string(d.event.contributions[0].model) == "gpt-4o")
        #expect(d.string(d.event.provider) == "openai")
        #expect(d.string(d.event.workflow) == "wf")
        #expect(onlyTokens(d) == TokenCounts(input: 12, output: 3))
        // Top-level fields beat attributes whatever the order.
        decodeOK(d, #"{"gen_ai.usage.input_tokens":5,"attributes":{"gen_ai.usage.input_tokens":12,"gen_ai.workflow.name":"a"},"owner":"o"}"#)
        #expect(onlyTokens(d)?.input == 5)
        #expect(d.string(d.event.workflow) == "a")
        expectReject(#"{"workflow":"w","owner":"o","attributes":{"gen_ai.usage.input_tokens":-1}}"#, .badTokenCount,
                     "attributes.gen_ai.usage.input_tokens must be a non-negative integer, got -1")
    }
}

@Suite("EventDecoder: provider usage blocks (1b, 1f)")
struct ProviderBlockTests {
    @Test func openAIChat() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":1149,\"completion_tokens\":353,\"total_tokens\":1502,"
            + "\"prompt_tokens_details\":{\"cached_tokens\":1024,\"audio_tokens\":0},"
            + "\"completion_tokens_details\":{\"reasoning_tokens\":100,\"audio_tokens\":0}}}")
        #expect(onlyTokens(d) == TokenCounts(input: 1149, cacheRead: 1024, output: 353, reasoning: 100))
        #expect(d.string(d.event.provider) == "openai")
    }

    @Test func openAIChatCacheWrite() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"usage\":{\"completion_tokens\":4,\"prompt_tokens\":4020,"
            + "\"prompt_tokens_details\":{\"audio_tokens\":0,\"cache_write_tokens\":4012,\"cached_tokens\":0},\"total_tokens\":4024}}")
        #expect(onlyTokens(d) == TokenCounts(input: 4020, cacheWrite: 4012, output: 4))
    }

    @Test func geminiOpenAICompatibleHiddenThinking() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"provider\":\"google\",\"usage\":{\"completion_tokens\":12,\"prompt_tokens\":35,\"total_tokens\":109}}")
        #expect(onlyTokens(d) == TokenCounts(input: 35, output: 74, reasoning: 62))
        #expect(d.string(d.event.provider) == "google")
        // total below the sum is not negative thinking.
        decodeOK(d, "{\(wo),\"usage\":{\"completion_tokens\":12,\"prompt_tokens\":35,\"total_tokens\":40}}")
        #expect(onlyTokens(d) == TokenCounts(input: 35, output: 12))
    }

    @Test func anthropicByProvider() throws {
        let d = EventDecoder()
        // `usage` before `provider`: the row depends on a key that comes later.
        decodeOK(d, "{\(wo),\"usage\":{\"input_tokens\":17,\"output_tokens\":220},\"model\":\"claude-3-opus\",\"provider\":\"anthropic\"}")
        #expect(onlyTokens(d) == TokenCounts(input: 17, output: 220))
        decodeOK(d, "{\(wo),\"usage\":{\"input_tokens\":17,\"output_tokens\":220,\"output_tokens_details\":{\"thinking_tokens\":20}},"
            + "\"provider\":\"Anthropic\"}")
        #expect(onlyTokens(d) == TokenCounts(input: 17, output: 220, reasoning: 20))
    }

    @Test func anthropicByCacheFieldsSumRule() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"model\":\"claude-sonnet-4-5\",\"usage\":{\"cache_creation\":{\"ephemeral_1h_input_tokens\":100,"
            + "\"ephemeral_5m_input_tokens\":318},\"cache_creation_input_tokens\":418,\"cache_read_input_tokens\":1111,"
            + "\"input_tokens\":3,\"output_tokens\":33,\"output_tokens_details\":{\"thinking_tokens\":7},\"service_tier\":\"standard\"}}")
        #expect(onlyTokens(d) == TokenCounts(input: 1532, cacheRead: 1111, cacheWrite: 418, cacheWrite1h: 100, output: 33, reasoning: 7))
        #expect(d.string(d.event.provider) == "anthropic")
        #expect(d.string(d.event.serviceTier) == "standard")
        // The event's own service_tier wins over the block's.
        decodeOK(d, "{\(wo),\"service_tier\":\"batch\",\"usage\":{\"cache_read_input_tokens\":0,\"input_tokens\":3,\"service_tier\":\"standard\"}}")
        #expect(d.string(d.event.serviceTier) == "batch")
    }

    @Test func gemini() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"usage\":{\"cachedContentTokenCount\":3512,\"candidatesTokenCount\":2,\"promptTokenCount\":3520,"
            + "\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":3520}],\"serviceTier\":\"standard\","
            + "\"thoughtsTokenCount\":42,\"toolUsePromptTokenCount\":10,\"totalTokenCount\":3574}}")
        #expect(onlyTokens(d) == TokenCounts(input: 3530, cacheRead: 3512, output: 44, reasoning: 42))
        #expect(d.string(d.event.provider) == "google")
        // Only totalTokenCount (a cache-creation call): recognised by no row, all buckets 0, one request,
        // reported as an unrecognised block naming its key.
        decodeOK(d, "{\(wo),\"provider\":\"google\",\"usage\":{\"totalTokenCount\":3512}}")
        #expect(onlyTokens(d) == TokenCounts())
        #expect(d.string(d.event.unrecognizedUsage) == "totalTokenCount")
    }

    @Test func openAIResponses() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"usage\":{\"input_tokens\":8576,\"input_tokens_details\":{\"cache_write_tokens\":4418,\"cached_tokens\":100},"
            + "\"output_tokens\":52,\"output_tokens_details\":{\"reasoning_tokens\":32},\"total_tokens\":8628}}")
        #expect(onlyTokens(d) == TokenCounts(input: 8576, cacheRead: 100, cacheWrite: 4418, output: 52, reasoning: 32))
        #expect(d.string(d.event.provider) == "openai")
    }

    @Test func rowOrder() throws {
        let d = EventDecoder()
        // prompt_tokens wins even when the provider is anthropic (first row).
        decodeOK(d, "{\(wo),\"provider\":\"anthropic\",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"input_tokens\":999}}")
        #expect(onlyTokens(d) == TokenCounts(input: 10, output: 2))
        // Anthropic cache fields beat Gemini and Responses.
        decodeOK(d, "{\(wo),\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":5,\"promptTokenCount\":99}}")
        #expect(onlyTokens(d) == TokenCounts(input: 10, cacheRead: 5))
        #expect(d.string(d.event.provider) == "anthropic")
        // Gemini beats Responses.
        decodeOK(d, "{\(wo),\"usage\":{\"input_tokens\":5,\"promptTokenCount\":7}}")
        #expect(onlyTokens(d)?.input == 7)
    }

    @Test func canonicalFieldsWinPerField() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"input_tokens\":2000,\"usage\":{\"prompt_tokens\":1149,\"completion_tokens\":353,"
            + "\"prompt_tokens_details\":{\"cached_tokens\":1024}},\"provider\":\"azure\"}")
        #expect(onlyTokens(d) == TokenCounts(input: 2000, cacheRead: 1024, output: 353))
        #expect(d.string(d.event.provider) == "azure")   // named by the event, not derived
        decodeOK(d, "{\"reasoning_tokens\":0,\(wo),\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
            + "\"completion_tokens_details\":{\"reasoning_tokens\":3}}}")
        #expect(onlyTokens(d) == TokenCounts(input: 10, output: 5, reasoning: 0))
    }

    @Test func anthropicIterations() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"model\":\"claude-sonnet-5\",\"provider\":\"anthropic\",\"usage\":{\"input_tokens\":2390,\"output_tokens\":121,"
            + "\"output_tokens_details\":{\"thinking_tokens\":28},\"iterations\":["
            + "{\"input_tokens\":1128,\"output_tokens\":110,\"cache_read_input_tokens\":10,\"type\":\"message\"},"
            + "{\"input_tokens\":2518,\"model\":\"claude-opus-4-8\",\"output_tokens\":22,"
            + "\"cache_creation\":{\"ephemeral_1h_input_tokens\":4},\"cache_creation_input_tokens\":4,\"type\":\"advisor_message\"},"
            + "{\"input_tokens\":1262,\"output_tokens\":11,\"output_tokens_details\":{\"thinking_tokens\":3},\"type\":\"message\"}]}}")
        let e = d.event
        #expect(e.contributions.count == 2)
        #expect(d.string(e.contributions[0].model) == "claude-sonnet-5")
        // Per bucket, the larger of the top level (2390 in, 28 reasoning) and the own-model iterations' sum
        // (1128 + 10 + 1262 = 2400 in, 10 cache read, 3 reasoning).
        #expect(e.contributions[0].tokens == TokenCounts(input: 2400, cacheRead: 10, output: 121, reasoning: 28))
        #expect(d.string(e.contributions[1].model) == "claude-opus-4-8")
        #expect(e.contributions[1].tokens == TokenCounts(input: 2522, cacheWrite: 4, cacheWrite1h: 4, output: 22))
        // Iterations before the model and provider keys (any order).
        decodeOK(d, "{\"usage\":{\"iterations\":[{\"input_tokens\":1,\"output_tokens\":1,\"model\":\"b\"}],\"input_tokens\":9},"
            + "\(wo),\"model\":\"a\"}")
        // The top level is the event's own model "a"; the iteration under "b" is its own contribution.
        #expect(d.event.contributions.count == 2)
        #expect(d.string(d.event.contributions[0].model) == "a")
        #expect(d.event.contributions[0].tokens == TokenCounts(input: 9))
        #expect(d.string(d.event.contributions[1].model) == "b")
        #expect(d.event.contributions[1].tokens == TokenCounts(input: 1, output: 1))
        #expect(d.string(d.event.provider) == "anthropic")
        // A compaction the top level leaves out: the own-model iterations' sum is larger.
        decodeOK(d, "{\(wo),\"model\":\"a\",\"provider\":\"anthropic\",\"usage\":{\"input_tokens\":181,\"output_tokens\":8,"
            + "\"iterations\":[{\"input_tokens\":100,\"output_tokens\":83,\"cache_read_input_tokens\":500,\"type\":\"compaction\"},"
            + "{\"input_tokens\":181,\"output_tokens\":8,\"type\":\"message\"}]}}")
        #expect(onlyTokens(d) == TokenCounts(input: 781, cacheRead: 500, output: 91))
        // An empty iterations array is the same as none.
        decodeOK(d, "{\(wo),\"provider\":\"anthropic\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1,\"iterations\":[]}}")
        #expect(onlyTokens(d) == TokenCounts(input: 9, output: 1))
        // Canonical token fields: the producer's own accounting, iterations not expanded.
        decodeOK(d, "{\(wo),\"model\":\"a\",\"input_tokens\":50,\"usage\":{\"input_tokens\":9,\"output_tokens\":1,"
            + "\"iterations\":[{\"input_tokens\":1,\"output_tokens\":1,\"model\":\"b\"}]}}")
        #expect(onlyTokens(d) == TokenCounts(input: 50, output: 1))
    }

    @Test func digitStringsAndNullsInBlocks() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"usage\":{\"prompt_tokens\":\"123\",\"completion_tokens\":null,\"prompt_tokens_details\":null,"
            + "\"completion_tokens_details\":{\"reasoning_tokens\":null}}}")
        #expect(onlyTokens(d) == TokenCounts(input: 123))
    }
}

@Suite("EventDecoder: CloudEvents (1c)")
struct CloudEventTests {
    @Test func objectData() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"specversion":"1.0","type":"com.example.llm.usage","source":"/svc","id":"ce-1","#
            + #""time":"2026-11-29T10:00:00Z","subject":"team-from-subject","datacontenttype":"application/json","#
            + #""data":{"workflow":"wf","model":"gpt-4o","usage":{"prompt_tokens":10,"completion_tokens":2},"id":"inner","#
            + #""timestamp":"2020-01-01T00:00:00Z"}}"#)
        #expect(d.wasCloudEvent)
        #expect(d.string(d.event.id) == "ce-1")
        #expect(d.event.timestamp == RFC3339.parse("2026-11-29T10:00:00Z"))
        #expect(d.string(d.event.owner) == "team-from-subject")
        #expect(d.string(d.event.workflow) == "wf")
        #expect(onlyTokens(d) == TokenCounts(input: 10, output: 2))
        #expect(d.event.kind == .usage)
    }

    @Test func dataBeforeSpecversionAndOwnerWinsOverSubject() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"data":{"workflow":"wf","owner":"data-owner","type":"outcome","outcome":"invoice_processed","count":3},"#
            + #""subject":"subj","id":"ce-2","specversion":"1.0","type":"com.example.outcome"}"#)
        #expect(d.wasCloudEvent)
        #expect(d.event.kind == .outcome)
        #expect(d.string(d.event.owner) == "data-owner")
        #expect(d.event.outcomeCount == 3)
        #expect(d.string(d.event.id) == "ce-2")
    }

    @Test func stringData() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"specversion":"1.0","id":"ce-3","time":1764410400000,"type":"x","#
            + #""data":"{\"workflow\":\"w\\u00e9\",\"owner\":\"o\",\"input_tokens\":\"5\",\"time\":5,\"tags\":{\"a\":\"b\"}}"}"#)
        #expect(d.string(d.event.workflow) == "wé")
        #expect(d.string(d.event.id) == "ce-3")
        #expect(d.event.timestamp == 1_764_410_400_000)
        #expect(onlyTokens(d)?.input == 5)
        #expect(d.event.tags.count == 1)
    }

    @Test func dataTimeAndIdUsedWhenEnvelopeHasNone() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"specversion":"1.0","data":{"workflow":"w","owner":"o","id":"inner","ts":42}}"#)
        #expect(d.string(d.event.id) == "inner")
        #expect(d.event.timestamp == 42)
    }

    @Test func badCloudEvents() {
        expectReject(#"{"specversion":"1.0","data":{"owner":"o"}}"#, .missingField, "workflow is missing (in data)")
        expectReject(#"{"specversion":"1.0","data":5}"#, .badField, "data must be an object or a string holding a JSON object")
        expectReject(#"{"specversion":"1.0","data":"[1,2]"}"#, .badField, "data is a string holding an array")
        expectReject(#"{"specversion":"1.0","data":"{\"workflow\":"}"#, .invalidJSON, "data (a string holding JSON)")
        expectReject(#"{"specversion":"1.0","time":"yesterday","data":{"workflow":"w","owner":"o"}}"#, .badTimestamp, "time")
        expectReject(#"{"specversion":"1.0","data":{"workflow":"w","owner":"o","input_tokens":-3}}"#, .badTokenCount,
                     "data.input_tokens must be a non-negative integer, got -3")
        // Without data it is not a CloudEvent: the top-level fields are the event.
        let d = EventDecoder()
        decodeOK(d, #"{"specversion":"1.0","workflow":"w","owner":"o"}"#)
        #expect(!d.wasCloudEvent)
    }
}

@Suite("EventDecoder: outcome events (1d)")
struct OutcomeEventTests {
    @Test func outcome() throws {
        let d = EventDecoder()
        decodeOK(d, #"{"type":"outcome","workflow":"invoice-extraction","owner":"finance-ops","outcome":"invoice_processed","#
            + #""count":1150,"value_usd":2875.0,"timestamp":"2026-11-29T10:00:00Z","id":"o-1"}"#)
        let e = d.event
        #expect(e.kind == .outcome)
        #expect(d.string(e.outcome) == "invoice_processed")
        #expect(e.outcomeCount == 1150)
        #expect(e.outcomeValue == Money(dollars: 2875))
        #expect(e.contributions.isEmpty)
        #expect(d.string(e.id) == "o-1")
    }

    @Test func outcomeDefaultsAndStrings() throws {
        let d = EventDecoder()
        decodeOK(d, "{\"outcome\":\"done\",\(wo),\"type\":\"outcome\",\"input_tokens\":5}")   // type after the fields
        #expect(d.event.outcomeCount == 1)
        #expect(d.event.outcomeValue == nil)
        #expect(d.event.contributions.isEmpty)
        decodeOK(d, "{\(wo),\"type\":\"outcome\",\"outcome\":\"done\",\"count\":\"7\",\"value_usd\":\"0.10\"}")
        #expect(d.event.outcomeCount == 7)
        #expect(d.event.outcomeValue == Money.parse("0.1"))
        decodeOK(d, "{\(wo),\"type\":\"outcome\",\"outcome\":\"done\",\"count\":0}")
        #expect(d.event.outcomeCount == 0)
    }

    @Test func badOutcomes() {
        expectReject("{\(wo),\"type\":\"outcome\"}", .missingField, "outcome is missing")
        expectReject("{\(wo),\"type\":\"outcome\",\"outcome\":\"x\",\"count\":-1}", .badField, "count must be a non-negative integer, got -1")
        expectReject("{\(wo),\"type\":\"outcome\",\"outcome\":\"x\",\"count\":1.5}", .badField, "count")
        expectReject("{\(wo),\"type\":\"outcome\",\"outcome\":\"x\",\"value_usd\":\"lots\"}", .badField, "value_usd")
    }
}

@Suite("EventDecoder: bad input (1e)")
struct BadInputTests {
    @Test func notJSON() {
        expectReject("", .invalidJSON, "empty")
        expectReject("not json", .invalidJSON, "byte 0")
        expectReject("{\(wo)", .invalidJSON, "unexpected end")
        expectReject("{\(wo)} trailing", .invalidJSON, "after the JSON value")
        expectReject("{\(wo),\"model\":\"a\u{01}\"}", .invalidJSON, "control character")
        expectReject("{\(wo),\"model\":\"\\q\"}", .invalidJSON, "escape")
        expectReject("{\(wo),\"model\":\"\\ud800\"}", .invalidJSON, "surrogate")
    }

    @Test func invalidUTF8() {
        let d = EventDecoder()
        var bytes = Array("{\(wo),\"model\":\"ab\"}".utf8)
        bytes.insert(0xFF, at: bytes.count - 3)
        let r = d.decode(bytes)
        #expect(r?.code == .invalidUTF8)
        #expect(r?.detail.contains("UTF-8") == true)
        // Latin-1 é
        let r2 = d.decode([0x7B, 0x22, 0x77, 0xE9, 0x22, 0x3A, 0x31, 0x7D] as [UInt8])
        #expect(r2?.code == .invalidUTF8)
    }

    @Test func notAnObject() {
        expectReject("[1,2]", .notObject, "array")
        expectReject("\"event\"", .notObject, "string")
        expectReject("42", .notObject, "number")
        expectReject("null", .notObject, "null")
        expectReject("[1,2", .invalidJSON, "end")
    }

    @Test func tooLarge() {
        let pad = String(repeating: " ", count: EventDecoder.maxMessageBytes)
        expectReject("{\(wo)}" + pad, .tooLarge, "1 MiB")
        // Exactly 1 MiB is fine.
        let body = "{\(wo)}"
        let d = EventDecoder()
        decodeOK(d, body + String(repeating: " ", count: EventDecoder.maxMessageBytes - body.utf8.count))
    }

    @Test func workflowAndOwner() {
        expectReject("{\"owner\":\"o\"}", .missingField, "workflow is missing")
        expectReject("{\"workflow\":\"w\"}", .missingField, "owner is missing")
        expectReject("{\"workflow\":null,\"owner\":\"o\"}", .missingField, "workflow is missing")
        expectReject("{\"workflow\":\"\",\"owner\":\"o\"}", .missingField, "workflow is empty")
        expectReject("{\"workflow\":\"w\",\"owner\":\"\"}", .missingField, "owner is empty")
        expectReject("{\"workflow\":\"\(String(repeating: "w", count: 257))\",\"owner\":\"o\"}", .badField, "workflow is 257 bytes")
        expectReject("{\"workflow\":\"w\",\"owner\":\"\(String(repeating: "o", count: 300))\"}", .badField, "owner is 300 bytes")
        expectReject("{\"workflow\":5,\"owner\":\"o\"}", .badField, "workflow must be a string, got 5")
        expectReject("{\"workflow\":\"w\",\"owner\":[\"o\"]}", .badField, "owner must be a string, got [\"o\"]")
        let d = EventDecoder()
        decodeOK(d, "{\"workflow\":\"\(String(repeating: "w", count: 256))\",\"owner\":\"o\"}")
    }

    @Test func badTokenCounts() {
        expectReject("{\(wo),\"input_tokens\":-5}", .badTokenCount, "input_tokens must be a non-negative integer, got -5")
        expectReject("{\(wo),\"output_tokens\":1.5}", .badTokenCount, "output_tokens must be a non-negative integer, got 1.5")
        expectReject("{\(wo),\"cache_read_tokens\":\"abc\"}", .badTokenCount, "cache_read_tokens must be a non-negative integer, got \"abc\"")
        expectReject("{\(wo),\"reasoning_tokens\":\"-5\"}", .badTokenCount, "reasoning_tokens")
        expectReject("{\(wo),\"cache_write_tokens\":\"1.0\"}", .badTokenCount, "cache_write_tokens")
        expectReject("{\(wo),\"input_tokens\":\"\"}", .badTokenCount, "input_tokens")
        expectReject("{\(wo),\"input_tokens\":true}", .badTokenCount, "input_tokens must be a non-negative integer, got true")
        expectReject("{\(wo),\"input_tokens\":{}}", .badTokenCount, "input_tokens")
        expectReject("{\(wo),\"input_tokens\":1000000001}", .badTokenCount, "input_tokens is absurd (over 10^9), got 1000000001")
        expectReject("{\(wo),\"input_tokens\":\"99999999999\"}", .badTokenCount, "over 10^9")
        expectReject("{\(wo),\"input_tokens\":1e10}", .badTokenCount, "over 10^9")
        expectReject("{\(wo),\"gen_ai.usage.output_tokens\":\"-1\"}", .badTokenCount, "gen_ai.usage.output_tokens")
        expectReject("{\(wo),\"usage\":{\"prompt_tokens\":-1}}", .badTokenCount, "usage.prompt_tokens must be a non-negative integer, got -1")
        expectReject("{\(wo),\"usage\":{\"prompt_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":0.5}}}", .badTokenCount,
                     "usage.prompt_tokens_details.cached_tokens")
        expectReject("{\(wo),\"usage\":{\"iterations\":[{\"input_tokens\":-2}]}}", .badTokenCount, "usage.iterations[].input_tokens")
        expectReject("{\(wo),\"usage\":{\"promptTokenCount\":\"12a\"}}", .badTokenCount, "usage.promptTokenCount")
        // Accepted: the limit itself, integral decimals, digit strings.
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"input_tokens\":1000000000,\"output_tokens\":\"42\",\"cache_read_tokens\":10.0,\"cache_write_tokens\":1e1}")
        #expect(onlyTokens(d) == TokenCounts(input: 1_000_000_000, cacheRead: 10, cacheWrite: 10, output: 42))
    }

    @Test func partLargerThanWhole() {
        expectReject("{\(wo),\"input_tokens\":10,\"cache_read_tokens\":6,\"cache_write_tokens\":5}", .partExceedsWhole,
                     "cache_read_tokens (6) + cache_write_tokens (5) exceed input_tokens (10)")
        expectReject("{\(wo),\"output_tokens\":10,\"reasoning_tokens\":11,\"model\":\"m\"}", .partExceedsWhole,
                     "reasoning_tokens (11) exceed output_tokens (10) for model m")
        // After normalisation: a Responses block whose cached part exceeds its input.
        expectReject("{\(wo),\"usage\":{\"input_tokens\":5,\"input_tokens_details\":{\"cached_tokens\":6}}}", .partExceedsWhole,
                     "exceed input_tokens (5)")
        // Canonical override making the block's part too large.
        expectReject("{\(wo),\"output_tokens\":1,\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":9,"
                     + "\"completion_tokens_details\":{\"reasoning_tokens\":5}}}", .partExceedsWhole, "reasoning_tokens (5)")
        // Anthropic: cache tokens are added to input, so they are never larger than it.
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"usage\":{\"input_tokens\":0,\"cache_read_input_tokens\":500}}")
        #expect(onlyTokens(d) == TokenCounts(input: 500, cacheRead: 500))
        // One iteration's part exceeding its own whole.
        expectReject("{\(wo),\"provider\":\"anthropic\",\"usage\":{\"iterations\":[{\"output_tokens\":1,"
                     + "\"output_tokens_details\":{\"thinking_tokens\":2}}]}}", .partExceedsWhole, "reasoning_tokens (2)")
        expectReject("{\(wo),\"usage\":{\"cache_creation_input_tokens\":1,\"cache_creation\":{\"ephemeral_1h_input_tokens\":2}}}",
                     .partExceedsWhole, "cache_write_1h")
    }

    @Test func badTimestamps() {
        expectReject("{\(wo),\"timestamp\":\"yesterday\"}", .badTimestamp, "timestamp must be an RFC 3339 time or integer epoch milliseconds, got \"yesterday\"")
        expectReject("{\(wo),\"timestamp\":\"2026-13-01T00:00:00Z\"}", .badTimestamp, "timestamp")
        expectReject("{\(wo),\"ts\":\"2026-11-29\"}", .badTimestamp, "ts")
        expectReject("{\(wo),\"time\":-1}", .badTimestamp, "time")
        expectReject("{\(wo),\"timestamp\":1.5}", .badTimestamp, "timestamp")
        expectReject("{\(wo),\"timestamp\":true}", .badTimestamp, "timestamp")
        expectReject("{\(wo),\"timestamp\":99999999999999999}", .badTimestamp, "timestamp")
    }

    /// Found by libFuzzer (scripts/fuzz.sh): an RFC 3339 time before 1970 was accepted as a negative event
    /// time, outside the documented range (1970 to 9999) that the epoch-millisecond forms keep to.
    @Test func timesBefore1970AreBadTimestamps() {
        let fuzzed = #"{"id":"evt-151","timestamp":"1013-11-21T08:05:49.268Z","workflow":"code-review-agent","owner":"platform-eng","model":"claude-sonnet-4-5","provider":"anthropic","usage":{"input_tokens":3584,"cache_creation_input_tokens":0,"cache_read_input_tokens":34541,"output_tokens":3694}}"#
        expectReject(fuzzed, .badTimestamp, "timestamp must be an RFC 3339 time or integer epoch milliseconds, got \"1013-11-21T08:05:49.268Z\"")
        expectReject("{\(wo),\"timestamp\":\"1969-12-31T23:59:59.999Z\"}", .badTimestamp, "timestamp")
        expectReject("{\(wo),\"time\":\"1970-01-01T00:30:00+01:00\"}", .badTimestamp, "time")
        let d = EventDecoder()
        #expect(d.decode("{\(wo),\"timestamp\":\"1970-01-01T00:00:00Z\"}") == nil)
        #expect(d.event.timestamp == 0)
    }

    @Test func badFieldTypes() {
        expectReject("{\(wo),\"model\":5}", .badField, "model must be a string, got 5")
        expectReject("{\(wo),\"provider\":{}}", .badField, "provider must be a string")
        expectReject("{\(wo),\"usage\":[1]}", .badField, "usage must be an object, got [1]")
        expectReject("{\(wo),\"usage\":{\"prompt_tokens_details\":5}}", .badField, "usage.prompt_tokens_details must be an object")
        expectReject("{\(wo),\"usage\":{\"iterations\":5}}", .badField, "usage.iterations must be an array")
    }

    @Test func syntaxErrorsBeatFieldErrors() {
        // A field problem early and broken JSON later: the message is reported as invalid JSON.
        expectReject("{\"input_tokens\":-1,\(wo),", .invalidJSON, "unexpected end")
    }
}

@Suite("EventDecoder: robustness")
struct MutationTests {
    static let seeds: [String] = [
        #"{"id":"evt-1","type":"usage","timestamp":"2026-11-29T10:00:00Z","workflow":"invoice-extraction","owner":"finance-ops","model":"gpt-4o","provider":"openai","input_tokens":1500,"cache_read_tokens":400,"output_tokens":250,"cost_usd":0.0123,"status":"ok","service_tier":"flex","tags":{"environment":"prod"}}"#,
        #"{"id":"real-43","workflow":"w","owner":"o","model":"claude-sonnet-5","provider":"anthropic","usage":{"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"input_tokens":2390,"iterations":[{"input_tokens":1128,"output_tokens":110},{"input_tokens":2518,"model":"claude-opus-4-8","output_tokens":22}],"output_tokens":121,"output_tokens_details":{"thinking_tokens":28},"service_tier":"standard"}}"#,
        #"{"specversion":"1.0","id":"ce","time":"2026-11-29T10:00:00Z","subject":"s","data":"{\"workflow\":\"w\u00e9\",\"usage\":{\"promptTokenCount\":5,\"candidatesTokenCount\":2}}"}"#,
        #"{"type":"outcome","workflow":"w","owner":"o","outcome":"done","count":"3","value_usd":1.5,"ts":1764410400000}"#,
        #"{"workflow":"real-otel","owner":"o","gen_ai.system":"openai","gen_ai.request.model":"gpt-4o-mini","gen_ai.usage.input_tokens":"417","gen_ai.usage.output_tokens":"53","attributes":{"gen_ai.usage.cache_read_input_tokens":"1"}}"#,
    ]

    @Test func randomByteMutationsNeverCrash() throws {
        var rng = SplitMix64(seed: 0x7E57_C0DE)
        let d = EventDecoder(tagNames: ["environment"])
        var seeds = Self.seeds.map { Array($0.utf8) }
        seeds += try jsonLines(sharedTestdata("real-payloads/events.jsonl")).prefix(84).map { Array($0.utf8) }
        let interesting: [UInt8] = Array("{}[]\",:\\-0123456789eE.tfnu ".utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xE2, 0xED, 0xF0, 0xFF]
        var accepted = 0, rejected = 0
        for i in 0..<200_000 {
            var b = seeds[i % seeds.count]
            let edits = 1 + Int(rng.next() % 4)
            for _ in 0..<edits {
                let pos = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
                let byte = rng.next() % 2 == 0 ? interesting[Int(rng.next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: rng.next())
                switch rng.next() % 3 {
                case 0 where !b.isEmpty: b[pos] = byte
                case 1: b.insert(byte, at: pos)
                default: if !b.isEmpty { b.remove(at: pos) }
                }
            }
            if let r = d.decode(b) {
                rejected += 1
                #expect(!r.detail.isEmpty)
            } else {
                accepted += 1
                // An accepted event is internally consistent.
                #expect(d.event.kind == .outcome || !d.event.contributions.isEmpty)
                for c in d.event.contributions {
                    let t = c.tokens
                    #expect(t.input >= 0 && t.output >= 0 && t.cacheRead + t.cacheWrite <= t.input && t.reasoning <= t.output)
                }
                #expect(d.event.workflow.count > 0 && d.event.owner.count > 0)
            }
        }
        #expect(accepted + rejected == 200_000)
        #expect(accepted > 1000 && rejected > 1000)
    }
}

/// Deterministic PRNG for the mutation test.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("EventDecoder: reject details")
struct RejectDetailTests {
    @Test func detailIsOneLineAndTruncated() throws {
        let d = EventDecoder()
        let r = try #require(d.decode("{\(wo),\"model\":{\n\"a\":\n1}}"))
        #expect(r.detail == "model must be a string, got { \"a\": 1}")
        let long = String(repeating: "x", count: 200)
        let r2 = try #require(d.decode("{\(wo),\"input_tokens\":\"\(long)\"}"))
        #expect(r2.detail.hasSuffix("...") && r2.detail.count < 140)
        #expect(r2.description.hasPrefix("bad_token_count: input_tokens must be a non-negative integer, got \"xxx"))
    }
}
