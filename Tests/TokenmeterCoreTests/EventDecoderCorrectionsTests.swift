import Testing
@testable import TokenmeterCore

/// The decoder's side of the corrected rows (Bedrock Converse, Cohere v2, Gemini Interactions, xAI), the
/// unrecognised-block rule, providers from model names, the bounds on names, and repeated keys.
@Suite("EventDecoder: corrected rows, providers from model names, bounds")
struct EventDecoderCorrectionsTests {
    @Test func xAIReasoningLeftOutAndListed() throws {
        let d = EventDecoder()
        // real2-83: grok-3-mini through the Chat API.
        decodeOK(d, "{\(wo),\"model\":\"grok-3-mini\",\"provider\":\"xai\",\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":1,"
            + "\"total_tokens\":241,\"prompt_tokens_details\":{\"text_tokens\":12,\"cached_tokens\":2},"
            + "\"completion_tokens_details\":{\"reasoning_tokens\":228},\"cost_in_usd_ticks\":1176500}}")
        #expect(onlyTokens(d) == TokenCounts(input: 12, cacheRead: 2, output: 229, reasoning: 228))
        #expect(d.string(d.event.provider) == "xai")
    }

    @Test func bedrockConverse() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"model\":\"us.anthropic.claude-sonnet-4-6\",\"usage\":{\"cacheReadInputTokenCount\":0,"
            + "\"cacheReadInputTokens\":50,\"cacheWriteInputTokens\":30,\"inputTokens\":121,\"outputTokens\":20,"
            + "\"serverToolUsage\":{},\"totalTokens\":141}}")
        #expect(onlyTokens(d) == TokenCounts(input: 201, cacheRead: 50, cacheWrite: 30, output: 20))
        #expect(d.string(d.event.provider) == "bedrock")
        #expect(d.event.unrecognizedUsage.isAbsent)
        expectReject("{\(wo),\"usage\":{\"inputTokens\":-1}}", .badTokenCount, "usage.inputTokens")
    }

    @Test func cohereV2() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"model\":\"command-r-08-2024\",\"usage\":{\"billed_units\":{\"input_tokens\":377,\"output_tokens\":90},"
            + "\"tokens\":{\"input_tokens\":577,\"output_tokens\":90},\"cached_tokens\":576}}")
        #expect(onlyTokens(d) == TokenCounts(input: 377, output: 90))
        #expect(d.string(d.event.provider) == "cohere")
        expectReject("{\(wo),\"usage\":{\"billed_units\":{\"output_tokens\":1.5}}}", .badTokenCount, "usage.billed_units.output_tokens")
        expectReject("{\(wo),\"usage\":{\"billed_units\":[1]}}", .badField, "usage.billed_units must be an object")
    }

    @Test func geminiInteractions() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"model\":\"gemini-2.5-flash\",\"usage\":{\"total_tokens\":233,\"total_input_tokens\":9,"
            + "\"input_tokens_by_modality\":[{\"modality\":\"text\",\"tokens\":9}],\"total_cached_tokens\":0,"
            + "\"total_output_tokens\":13,\"total_tool_use_tokens\":0,\"total_thought_tokens\":211}}")
        #expect(onlyTokens(d) == TokenCounts(input: 9, output: 224, reasoning: 211))
        #expect(d.string(d.event.provider) == "google")
    }

    @Test func emptyIterationsAreTheSameAsNone() throws {
        let d = EventDecoder()
        // real2-61: a Claude Code result with `iterations: []`.
        let block = "\"input_tokens\":3,\"cache_creation_input_tokens\":2175,\"cache_read_input_tokens\":7166,\"output_tokens\":5,"
            + "\"cache_creation\":{\"ephemeral_1h_input_tokens\":0,\"ephemeral_5m_input_tokens\":2175}"
        decodeOK(d, "{\(wo),\"model\":\"claude-sonnet-4-6\",\"usage\":{\(block),\"iterations\":[]}}")
        let withEmpty = d.event.contributions
        decodeOK(d, "{\(wo),\"model\":\"claude-sonnet-4-6\",\"usage\":{\(block)}}")
        #expect(withEmpty == d.event.contributions)
        #expect(withEmpty.count == 1)
        #expect(withEmpty[0].tokens == TokenCounts(input: 9344, cacheRead: 7166, cacheWrite: 2175, output: 5))
    }

    @Test func unrecognizedBlockNamesItsKeys() throws {
        let d = EventDecoder()
        decodeOK(d, "{\(wo),\"model\":\"mystery-1\",\"usage\":{\"tokens_in\":10,\"tokens_out\":{\"a\":1},\"we\\u0069rd\":null}}")
        #expect(onlyTokens(d) == TokenCounts())
        #expect(d.string(d.event.unrecognizedUsage) == "tokens_in, tokens_out, weird")
        #expect(d.event.provider.isAbsent)
        // An empty block is recognised by no row either.
        decodeOK(d, "{\(wo),\"model\":\"mystery-1\",\"usage\":{}}")
        #expect(d.string(d.event.unrecognizedUsage) == "")
        // The key names are bounded.
        let many = (0..<100).map { "\"key_number_\($0)\":1" }.joined(separator: ",")
        decodeOK(d, "{\(wo),\"usage\":{\(many)}}")
        let names = try #require(d.string(d.event.unrecognizedUsage))
        #expect(names.utf8.count <= EventDecoder.maxBlockKeysBytes + 5)
        #expect(names.hasPrefix("key_number_0, key_number_1, ") && names.hasSuffix(", ..."))
        // Canonical token fields: the producer did its own accounting; nothing is unknown.
        decodeOK(d, "{\(wo),\"input_tokens\":5,\"usage\":{\"tokens_in\":10}}")
        #expect(d.event.unrecognizedUsage.isAbsent)
        #expect(onlyTokens(d) == TokenCounts(input: 5))
        // Provider anthropic: the Anthropic row reads any block (the contract's first recogniser).
        decodeOK(d, "{\(wo),\"provider\":\"anthropic\",\"usage\":{\"tokens_in\":10}}")
        #expect(d.event.unrecognizedUsage.isAbsent)
        // No block, a recognised block: nothing to report; the next event does not inherit it.
        decodeOK(d, "{\(wo),\"usage\":{\"prompt_tokens\":1}}")
        #expect(d.event.unrecognizedUsage.isAbsent)
    }

    @Test func providerFromTheModelName() throws {
        let d = EventDecoder()
        func provider(_ model: String, _ extra: String = "") -> String? {
            decodeOK(d, "{\(wo),\"model\":\"\(model)\"\(extra)}")
            return d.string(d.event.provider)
        }
        #expect(provider("claude-opus-4-1") == "anthropic")
        #expect(provider("Claude-Opus-4-1") == "anthropic")   // ASCII case ignored
        #expect(provider("gpt-4o-mini") == "openai")
        #expect(provider("o3-mini") == "openai")
        #expect(provider("text-embedding-3-small") == "openai")
        #expect(provider("text-embedding-004") == "google")   // the longer prefix wins
        #expect(provider("gemini-2.5-flash") == "google")
        #expect(provider("grok-3-mini") == "xai")
        #expect(provider("magistral-medium-latest") == "mistral")
        #expect(provider("command-r-08-2024") == "cohere")
        #expect(provider("deepseek-chat") == "deepseek")
        #expect(provider("us.anthropic.claude-sonnet-4-6") == "bedrock")
        #expect(provider("anthropic.claude-3-haiku-20240307-v1:0") == "bedrock")
        #expect(provider("meta.llama3-3-70b-instruct-v1:0") == "bedrock")
        #expect(provider("llama-3.3-70b") == nil)
        // The event's own provider, then the block's, beat the model name.
        #expect(provider("claude-opus-4-1", ",\"provider\":\"vertex\"") == "vertex")
        #expect(provider("claude-opus-4-1", ",\"usage\":{\"prompt_tokens\":1}") == "openai")
        // An unrecognised block names no provider: the model name does.
        #expect(provider("claude-opus-4-1", ",\"usage\":{\"odd\":1}") == "anthropic")
        // Iteration models do not change the event's provider; no model, no provider.
        decodeOK(d, "{\(wo)}")
        #expect(d.event.provider.isAbsent)
    }

    @Test func providerPrefixesFromTheConfig() throws {
        let prefixes = ProviderPrefixes(extra: [KeyValue("llama-", "meta"), KeyValue("GPT-", "azure"), KeyValue("ft:gpt-4o", "openai")])
        let d = EventDecoder(providerPrefixes: prefixes)
        decodeOK(d, "{\(wo),\"model\":\"llama-3.3-70b\"}")
        #expect(d.string(d.event.provider) == "meta")
        decodeOK(d, "{\(wo),\"model\":\"gpt-4o\"}")
        #expect(d.string(d.event.provider) == "azure")   // replaces the built-in `gpt-`
        decodeOK(d, "{\(wo),\"model\":\"ft:gpt-4o:acme\"}")
        #expect(d.string(d.event.provider) == "openai")
        #expect(prefixes.entries.filter { $0.key.lowercased() == "gpt-" }.map(\.value) == ["azure"])
        // Longest first.
        #expect(zip(prefixes.entries, prefixes.entries.dropFirst()).allSatisfy { $0.key.utf8.count >= $1.key.utf8.count })
        // At least the contract's list.
        let builtIn = ProviderPrefixes()
        for (prefix, provider) in [("claude-", "anthropic"), ("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"),
                                   ("o4", "openai"), ("chatgpt-", "openai"), ("text-embedding-", "openai"),
                                   ("gemini-", "google"), ("grok-", "xai"), ("mistral-", "mistral"),
                                   ("codestral-", "mistral"), ("ministral-", "mistral"), ("magistral-", "mistral"),
                                   ("command-", "cohere"), ("deepseek-", "deepseek"), ("anthropic.", "bedrock"),
                                   ("us.anthropic.", "bedrock"), ("meta.", "bedrock"), ("amazon.", "bedrock")] {
            #expect(builtIn.entries.contains(KeyValue(prefix, provider)), "\(prefix)")
        }
    }

    @Test func namesAreBounded() throws {
        let long = String(repeating: "m", count: 257)
        let ok = String(repeating: "m", count: 256)
        decodeOK(EventDecoder(), "{\(wo),\"model\":\"\(ok)\",\"provider\":\"\(ok)\",\"service_tier\":\"\(ok)\",\"tags\":{\"\(ok)\":\"\(ok)\"}}")
        expectReject("{\(wo),\"model\":\"\(long)\"}", .badField, "model is 257 bytes, over the 256-byte limit")
        expectReject("{\(wo),\"gen_ai.response.model\":\"\(long)\"}", .badField, "model is 257 bytes")
        expectReject("{\(wo),\"provider\":\"\(long)\"}", .badField, "provider is 257 bytes")
        expectReject("{\(wo),\"service_tier\":\"\(long)\"}", .badField, "service_tier is 257 bytes")
        expectReject("{\(wo),\"usage\":{\"input_tokens\":1,\"service_tier\":\"\(long)\"}}", .badField, "service_tier is 257 bytes")
        expectReject("{\(wo),\"tags\":{\"env\":\"\(long)\"}}", .badField, "tags.env is 257 bytes")
        expectReject("{\(wo),\"tags\":{\"\(long)\":\"x\"}}", .badField, "a tag name is 257 bytes")
        expectReject("{\(wo),\"usage\":{\"input_tokens\":1,\"iterations\":[{\"model\":\"\(long)\",\"input_tokens\":1}]}}",
                     .badField, "usage.iterations[].model is 257 bytes")
        // Multi-byte characters count in bytes (after unescaping).
        let e = String(repeating: "é", count: 129)   // 258 bytes
        expectReject("{\(wo),\"model\":\"\(e)\"}", .badField, "model is 258 bytes")
        expectReject("{\(wo),\"model\":\"\(String(repeating: "\\u00e9", count: 129))\"}", .badField, "model is 258 bytes")
    }

    @Test func repeatedKeyLastOneWins() throws {
        let d = EventDecoder()
        // An invalid first value, then a valid one: the valid one counts.
        decodeOK(d, "{\(wo),\"input_tokens\":-1,\"input_tokens\":5}")
        #expect(onlyTokens(d) == TokenCounts(input: 5))
        decodeOK(d, "{\(wo),\"model\":5,\"model\":\"gpt-4o\"}")
        #expect(d.string(d.event.contributions[0].model) == "gpt-4o")
        decodeOK(d, "{\(wo),\"timestamp\":\"yesterday\",\"timestamp\":\"2026-11-20T12:00:00Z\"}")
        #expect(d.event.timestamp == RFC3339.parse("2026-11-20T12:00:00Z"))
        decodeOK(d, "{\(wo),\"status\":\"maybe\",\"status\":null}")
        #expect(d.event.isError == false)
        decodeOK(d, "{\(wo),\"tags\":{\"env\":{},\"env\":\"prod\"}}")
        #expect(d.event.tags.count == 1)
        decodeOK(d, "{\(wo),\"usage\":{\"prompt_tokens\":\"x\",\"prompt_tokens\":7}}")
        #expect(onlyTokens(d) == TokenCounts(input: 7))
        decodeOK(d, "{\(wo),\"usage\":{\"prompt_tokens_details\":{\"cached_tokens\":-3,\"cached_tokens\":1},\"prompt_tokens\":2}}")
        #expect(onlyTokens(d) == TokenCounts(input: 2, cacheRead: 1))
        // A whole block replaces an earlier one, problems included.
        decodeOK(d, "{\(wo),\"usage\":{\"prompt_tokens\":-1},\"usage\":{\"prompt_tokens\":3}}")
        #expect(onlyTokens(d) == TokenCounts(input: 3))
        decodeOK(d, "{\(wo),\"usage\":7,\"usage\":{\"prompt_tokens\":4}}")
        #expect(onlyTokens(d) == TokenCounts(input: 4))
        // A valid first value, then an invalid one: the invalid one counts, and rejects.
        expectReject("{\(wo),\"input_tokens\":5,\"input_tokens\":-1}", .badTokenCount, "input_tokens must be a non-negative integer")
        // Another key's problem stays, whatever comes after.
        expectReject("{\(wo),\"input_tokens\":-1,\"output_tokens\":5}", .badTokenCount, "input_tokens")
        expectReject("{\(wo),\"tags\":{\"a\":{},\"b\":\"x\"}}", .badField, "tags values must be strings, got a: {}")
        // Iterations are separate calls: a later one does not excuse an earlier one.
        expectReject("{\(wo),\"usage\":{\"input_tokens\":1,\"iterations\":[{\"input_tokens\":-1},{\"input_tokens\":2}]}}",
                     .badTokenCount, "usage.iterations[].input_tokens")
        // The first problem left is the reason.
        expectReject("{\(wo),\"input_tokens\":-1,\"output_tokens\":-2,\"input_tokens\":1}", .badTokenCount, "output_tokens")
    }
}
