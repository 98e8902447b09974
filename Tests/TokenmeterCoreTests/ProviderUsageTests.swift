import Testing
@testable import TokenmeterCore

/// The provider rows of the usage-block table (contract 1b, 1f) as pure functions: each case is the counts
/// a block carried, the row that must read it and the canonical counts that row makes of it. No JSON: the
/// decoder's walk is tested in `EventDecoderTests`; here only the arithmetic and the recognition order.
@Suite("Provider usage rows (1b, 1f)")
struct ProviderUsageTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var anthropicProvider = false
        var row: BlockRow
        var want: TokenCounts
        var fill: @Sendable (inout RawUsage) -> Void
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        // OpenAI Chat Completions
        Case(name: "chat: prompt, cached, cache write, reasoning", row: .chat,
             want: TokenCounts(input: 100, cacheRead: 40, cacheWrite: 10, output: 20, reasoning: 5)) { u in
            u.has = [.promptTokens, .completionTokens, .totalTokens]
            u.promptTokens = 100; u.completionTokens = 20; u.totalTokens = 120
            u.promptCached = 40; u.promptCacheWrite = 10; u.completionReasoning = 5
        },
        Case(name: "chat: only completion_tokens still reads as chat", row: .chat, want: TokenCounts(output: 7)) { u in
            u.has = [.completionTokens]; u.completionTokens = 7
        },
        Case(name: "chat: Gemini OpenAI-compatible, reasoning left out of completion_tokens", row: .chat,
             want: TokenCounts(input: 35, output: 74, reasoning: 62)) { u in
            u.has = [.promptTokens, .completionTokens, .totalTokens]
            u.promptTokens = 35; u.completionTokens = 12; u.totalTokens = 109
        },
        Case(name: "chat: xAI grok-3-mini, left-out reasoning also listed (counted once)", row: .chat,
             want: TokenCounts(input: 12, cacheRead: 2, output: 229, reasoning: 228)) { u in
            u.has = [.promptTokens, .completionTokens, .totalTokens]
            u.promptTokens = 12; u.completionTokens = 1; u.totalTokens = 241; u.promptCached = 2; u.completionReasoning = 228
        },
        Case(name: "chat: listed reasoning larger than the left-out part wins", row: .chat,
             want: TokenCounts(input: 10, output: 25, reasoning: 20)) { u in
            u.has = [.promptTokens, .completionTokens, .totalTokens]
            u.promptTokens = 10; u.completionTokens = 20; u.totalTokens = 35; u.completionReasoning = 20
        },
        Case(name: "chat: total below the sum is no reasoning", row: .chat, want: TokenCounts(input: 35, output: 12)) { u in
            u.has = [.promptTokens, .completionTokens, .totalTokens]
            u.promptTokens = 35; u.completionTokens = 12; u.totalTokens = 40
        },
        // Anthropic Messages
        Case(name: "anthropic: input excludes the cache", row: .anthropic,
             want: TokenCounts(input: 3 + 7166 + 2175, cacheRead: 7166, cacheWrite: 2175, output: 5)) { u in
            u.has = [.inputTokens, .outputTokens, .cacheCreationInputTokens, .cacheReadInputTokens]
            u.inputTokens = 3; u.outputTokens = 5; u.cacheCreation = 2175; u.cacheReadInput = 7166
        },
        Case(name: "anthropic: by provider alone", anthropicProvider: true, row: .anthropic,
             want: TokenCounts(input: 38, output: 246)) { u in
            u.has = [.inputTokens, .outputTokens]; u.inputTokens = 38; u.outputTokens = 246
        },
        Case(name: "anthropic: cache_creation object, 1h part, thinking tokens", row: .anthropic,
             want: TokenCounts(input: 10 + 30, cacheWrite: 30, cacheWrite1h: 20, output: 50, reasoning: 12)) { u in
            u.has = [.inputTokens, .outputTokens, .cacheCreationObject, .thinking]
            u.inputTokens = 10; u.outputTokens = 50; u.cache5m = 10; u.cache1h = 20; u.thinking = 12; u.outputReasoning = 99
        },
        // Google Gemini
        Case(name: "gemini: tool-use prompt is input, thoughts are output and reasoning", row: .gemini,
             want: TokenCounts(input: 3530, cacheRead: 3512, output: 44, reasoning: 42)) { u in
            u.has = [.gemini]
            u.gPrompt = 3520; u.gToolUse = 10; u.gCached = 3512; u.gCandidates = 2; u.gThoughts = 42
        },
        Case(name: "gemini: no promptTokenCount (a streamed final chunk)", row: .gemini,
             want: TokenCounts(output: 76, reasoning: 58)) { u in
            u.has = [.gemini]; u.gCandidates = 18; u.gThoughts = 58
        },
        // OpenAI Responses
        Case(name: "responses: cached, cache write, reasoning", row: .responses,
             want: TokenCounts(input: 8576, cacheRead: 100, cacheWrite: 4418, output: 52, reasoning: 32)) { u in
            u.has = [.inputTokens, .outputTokens]
            u.inputTokens = 8576; u.inputCached = 100; u.inputCacheWrite = 4418; u.outputTokens = 52; u.outputReasoning = 32
        },
        Case(name: "responses: xAI output already includes reasoning", row: .responses,
             want: TokenCounts(input: 216, cacheRead: 192, output: 863, reasoning: 237)) { u in
            u.has = [.inputTokens, .outputTokens]
            u.inputTokens = 216; u.inputCached = 192; u.outputTokens = 863; u.outputReasoning = 237
        },
        // Amazon Bedrock Converse
        Case(name: "bedrock converse: inputTokens excludes the cache", row: .converse,
             want: TokenCounts(input: 121 + 50 + 30, cacheRead: 50, cacheWrite: 30, output: 20)) { u in
            u.has = [.converse]
            u.converseInput = 121; u.converseOutput = 20; u.converseCacheRead = 50; u.converseCacheWrite = 30
        },
        // Cohere v2
        Case(name: "cohere v2: billed units, not tokens", row: .cohere, want: TokenCounts(input: 377, output: 90)) { u in
            u.has = [.billedUnits]; u.billedInput = 377; u.billedOutput = 90
        },
        // Google Gemini Interactions
        Case(name: "gemini interactions: tool use is input, thoughts are output and reasoning", row: .interactions,
             want: TokenCounts(input: 9 + 4, cacheRead: 3, output: 13 + 211, reasoning: 211)) { u in
            u.has = [.interactions]
            u.iInput = 9; u.iToolUse = 4; u.iCached = 3; u.iOutput = 13; u.iThought = 211
        },
        // No row
        Case(name: "none: only totalTokenCount", row: .none, want: TokenCounts()) { u in u.has = [] },
    ]

    @Test(arguments: cases)
    func row(_ c: Case) {
        var u = RawUsage()
        c.fill(&u)
        let row = ProviderUsage.recognise(u, anthropicProvider: c.anthropicProvider)
        #expect(row == c.row)
        #expect(ProviderUsage.counts(u, row) == c.want)
    }

    /// The first row that recognises a block reads it, in the contract's order.
    @Test func rowOrder() {
        func row(_ has: RawUsage.Has, anthropic: Bool = false) -> BlockRow {
            var u = RawUsage()
            u.has = has
            return ProviderUsage.recognise(u, anthropicProvider: anthropic)
        }
        #expect(row([.promptTokens, .inputTokens], anthropic: true) == .chat)
        #expect(row([.cacheReadInputTokens, .gemini, .inputTokens]) == .anthropic)
        #expect(row([.inputTokens, .converse], anthropic: true) == .anthropic)
        #expect(row([.gemini, .inputTokens]) == .gemini)
        #expect(row([.inputTokens, .converse, .billedUnits]) == .responses)
        #expect(row([.converse, .billedUnits, .interactions]) == .converse)
        #expect(row([.billedUnits, .interactions]) == .cohere)
        #expect(row([.interactions, .totalTokens]) == .interactions)
        #expect(row([.totalTokens]) == .none)
    }

    @Test func providerNamedByEachRow() {
        let want: [BlockRow: String?] = [.chat: "openai", .anthropic: "anthropic", .gemini: "google", .responses: "openai",
                                         .converse: "bedrock", .cohere: "cohere", .interactions: "google", .none: nil]
        for row in BlockRow.allCases {
            #expect(ProviderUsage.provider(of: row).map { $0.description } == want[row]!, "\(row)")
        }
    }
}
