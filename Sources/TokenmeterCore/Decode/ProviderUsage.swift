/// The rows of the provider usage-block table (contract 1b and the quirks of 1f) as pure functions of the
/// counts a block carried: which row reads a block, what that row makes of it, and which provider it names.
/// No JSON here: `EventDecoder` fills a `RawUsage` while it walks the block, these functions interpret it,
/// and the table tests feed them `RawUsage` values directly, one case per row and per quirk.
///
/// Rows, first match wins, in the contract's order:
///
/// | row | recognised by | provider |
/// |---|---|---|
/// | OpenAI Chat Completions | `prompt_tokens` (or `completion_tokens`) | openai |
/// | Anthropic Messages | the event's provider is `anthropic`, or `cache_creation_input_tokens`, `cache_read_input_tokens` (or `cache_creation`, `iterations`, `output_tokens_details.thinking_tokens`) | anthropic |
/// | Google Gemini | any of its `*TokenCount` fields except `totalTokenCount` | google |
/// | OpenAI Responses | `input_tokens` (or `output_tokens`) | openai |
/// | Amazon Bedrock Converse | `inputTokens` or `outputTokens` (or `cacheReadInputTokens`, `cacheWriteInputTokens`) | bedrock |
/// | Cohere v2 | `billed_units` | cohere |
/// | Google Gemini Interactions | `total_input_tokens` or `total_output_tokens` (or `total_thought_tokens`, `total_cached_tokens`, `total_tool_use_tokens`) | google |
///
/// The keys in parentheses go beyond the contract's wording so that a partial block (a streamed final
/// chunk, say) is still read by its row rather than being reported as unrecognised.
enum ProviderUsage {
    /// The row that reads `u`; `.none` when no row does (the block is then `unrecognized_usage`).
    @inline(__always)
    static func recognise(_ u: RawUsage, anthropicProvider: Bool) -> BlockRow {
        let h = u.has
        if h.contains(.promptTokens) || h.contains(.completionTokens) { return .chat }
        if anthropicProvider || h.contains(.cacheCreationInputTokens) || h.contains(.cacheReadInputTokens)
            || h.contains(.cacheCreationObject) || h.contains(.iterations) || h.contains(.thinking) { return .anthropic }
        if h.contains(.gemini) { return .gemini }
        if h.contains(.inputTokens) || h.contains(.outputTokens) { return .responses }
        if h.contains(.converse) { return .converse }
        if h.contains(.billedUnits) { return .cohere }
        if h.contains(.interactions) { return .interactions }
        return .none
    }

    /// The provider a row names for an event that names none (1b).
    static func provider(of row: BlockRow) -> StaticString? {
        switch row {
        case .chat, .responses: "openai"
        case .anthropic: "anthropic"
        case .gemini, .interactions: "google"
        case .converse: "bedrock"
        case .cohere: "cohere"
        case .none: nil
        }
    }

    /// The canonical counts of `u` as read by `row`.
    static func counts(_ u: RawUsage, _ row: BlockRow) -> TokenCounts {
        switch row {
        case .none:
            return TokenCounts()
        case .chat:
            return chatCounts(u)
        case .anthropic:
            return anthropicCounts(u)
        case .gemini:
            return TokenCounts(input: u.gPrompt + u.gToolUse, cacheRead: u.gCached, cacheWrite: 0,
                               output: u.gCandidates + u.gThoughts, reasoning: u.gThoughts)
        case .responses:
            return TokenCounts(input: u.inputTokens, cacheRead: u.inputCached, cacheWrite: u.inputCacheWrite,
                               output: u.outputTokens, reasoning: u.outputReasoning)
        case .converse:
            // Bedrock's `inputTokens` leaves the cache out, like Anthropic's `input_tokens`.
            return TokenCounts(input: u.converseInput + u.converseCacheRead + u.converseCacheWrite,
                               cacheRead: u.converseCacheRead, cacheWrite: u.converseCacheWrite,
                               output: u.converseOutput, reasoning: 0)
        case .cohere:
            // What Cohere bills, not its larger `tokens` (which counts the prompt template too).
            return TokenCounts(input: u.billedInput, output: u.billedOutput)
        case .interactions:
            return TokenCounts(input: u.iInput + u.iToolUse, cacheRead: u.iCached, cacheWrite: 0,
                               output: u.iOutput + u.iThought, reasoning: u.iThought)
        }
    }

    /// OpenAI Chat Completions. Gemini's OpenAI-compatible endpoint and xAI leave reasoning out of
    /// `completion_tokens` but count it in `total_tokens`: the part of `total_tokens` above
    /// `prompt_tokens + completion_tokens` is output that was left out. xAI lists the same reasoning in
    /// `completion_tokens_details.reasoning_tokens` too, so reasoning is the larger of the two, never their
    /// sum (prompt 12, completion 1, total 241, reasoning 228: 12 input, 229 output, 228 reasoning).
    static func chatCounts(_ u: RawUsage) -> TokenCounts {
        var c = TokenCounts(input: u.promptTokens, cacheRead: u.promptCached, cacheWrite: u.promptCacheWrite,
                            output: u.completionTokens, reasoning: u.completionReasoning)
        if u.has.contains(.totalTokens) && u.totalTokens > u.promptTokens + u.completionTokens {
            let leftOut = u.totalTokens - u.promptTokens - u.completionTokens
            c.output += leftOut
            c.reasoning = max(c.reasoning, leftOut)
        }
        return c
    }

    /// Anthropic Messages: `input_tokens` leaves the cache out. Without `cache_creation_input_tokens` the
    /// cache write is the sum of `cache_creation`'s 5-minute and 1-hour parts; reasoning is
    /// `output_tokens_details.thinking_tokens` (or `reasoning_tokens` when that is absent).
    static func anthropicCounts(_ u: RawUsage) -> TokenCounts {
        let write = u.has.contains(.cacheCreationInputTokens) ? u.cacheCreation : u.cache5m + u.cache1h
        return TokenCounts(input: u.inputTokens + u.cacheReadInput + write, cacheRead: u.cacheReadInput,
                           cacheWrite: write, cacheWrite1h: u.cache1h, output: u.outputTokens,
                           reasoning: u.has.contains(.thinking) ? u.thinking : u.outputReasoning)
    }
}

enum BlockRow: Equatable, CaseIterable { case none, chat, anthropic, gemini, responses, converse, cohere, interactions }

/// Every count a provider usage block may carry, before a row of the 1b table interprets them.
struct RawUsage {
    struct Has: OptionSet {
        var rawValue: UInt32
        static let promptTokens = Has(rawValue: 1 << 0)
        static let completionTokens = Has(rawValue: 1 << 1)
        static let totalTokens = Has(rawValue: 1 << 2)
        static let inputTokens = Has(rawValue: 1 << 3)
        static let outputTokens = Has(rawValue: 1 << 4)
        static let cacheCreationInputTokens = Has(rawValue: 1 << 5)
        static let cacheReadInputTokens = Has(rawValue: 1 << 6)
        static let cacheCreationObject = Has(rawValue: 1 << 7)
        static let gemini = Has(rawValue: 1 << 8)
        static let iterations = Has(rawValue: 1 << 9)
        static let thinking = Has(rawValue: 1 << 10)
        /// Any of Bedrock Converse's camelCase counts.
        static let converse = Has(rawValue: 1 << 11)
        /// Cohere v2's `billed_units` object.
        static let billedUnits = Has(rawValue: 1 << 12)
        /// Any of the Gemini Interactions API's `total_*_tokens` counts (not `total_tokens`).
        static let interactions = Has(rawValue: 1 << 13)
    }
    var has: Has = []
    // OpenAI Chat Completions
    var promptTokens: Int64 = 0
    var completionTokens: Int64 = 0
    var totalTokens: Int64 = 0
    var promptCached: Int64 = 0
    var promptCacheWrite: Int64 = 0
    var completionReasoning: Int64 = 0
    // Anthropic Messages / OpenAI Responses
    var inputTokens: Int64 = 0
    var outputTokens: Int64 = 0
    var cacheCreation: Int64 = 0
    var cacheReadInput: Int64 = 0
    var cache1h: Int64 = 0
    var cache5m: Int64 = 0
    var thinking: Int64 = 0
    var outputReasoning: Int64 = 0
    var inputCached: Int64 = 0
    var inputCacheWrite: Int64 = 0
    // Google Gemini
    var gPrompt: Int64 = 0
    var gToolUse: Int64 = 0
    var gCached: Int64 = 0
    var gCandidates: Int64 = 0
    var gThoughts: Int64 = 0
    // Amazon Bedrock Converse
    var converseInput: Int64 = 0
    var converseOutput: Int64 = 0
    var converseCacheRead: Int64 = 0
    var converseCacheWrite: Int64 = 0
    // Cohere v2
    var billedInput: Int64 = 0
    var billedOutput: Int64 = 0
    // Google Gemini Interactions
    var iInput: Int64 = 0
    var iOutput: Int64 = 0
    var iToolUse: Int64 = 0
    var iCached: Int64 = 0
    var iThought: Int64 = 0
    var serviceTier = ScratchString.absent
    /// Iterations only.
    var model = ScratchString.absent
}
