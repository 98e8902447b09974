import TokenmeterCore

/// Token counts in the contract's canonical buckets: `input` includes `cacheRead` and `cacheWrite`;
/// `output` includes `reasoning`.
public struct ExpectedTokens: Sendable, Hashable {
    public var input: Int64
    public var cacheRead: Int64
    public var cacheWrite: Int64
    public var output: Int64
    public var reasoning: Int64

    public init(input: Int64 = 0, cacheRead: Int64 = 0, cacheWrite: Int64 = 0, output: Int64 = 0, reasoning: Int64 = 0) {
        self.input = input
        self.cacheRead = cacheRead
        self.cacheWrite = cacheWrite
        self.output = output
        self.reasoning = reasoning
    }

    public static let zero = ExpectedTokens()
}

/// The wire shape a line was written in (the innermost one, for CloudEvents).
public enum EventShape: String, Sendable, Hashable, CaseIterable {
    /// 1a: explicit `input_tokens`, `cache_read_tokens`, ...
    case canonical
    /// 1b: `usage` with `prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`, ...
    case openAIChat = "openai-chat"
    /// 1b: `usage` with `input_tokens`, `input_tokens_details.cached_tokens`, `output_tokens_details.reasoning_tokens`.
    case openAIResponses = "openai-responses"
    /// 1b: `usage` with `input_tokens` EXCLUDING cache, `cache_read_input_tokens`, `cache_creation_input_tokens`.
    case anthropic
    /// 1b: `usage` with `promptTokenCount`, `candidatesTokenCount`, `thoughtsTokenCount`, ...
    case gemini
    /// 1f: Gemini through its OpenAI-compatible endpoint: Chat block whose `total_tokens` carries the thinking.
    case geminiOpenAICompat = "gemini-openai-compat"
    /// 1a: OpenTelemetry GenAI flat attributes (`gen_ai.usage.input_tokens`, ...).
    case otel
    /// 1d: an outcome event.
    case outcome
}

public struct ExpectedUsage: Sendable, Hashable {
    public var id: String
    public var workflow: String
    public var owner: String
    public var model: String
    /// As the pipeline must resolve it: the event's `provider` or the one inferred from its usage block; nil when neither.
    public var provider: String?
    public var tags: [String: String]
    public var tokens: ExpectedTokens
    public var isError: Bool
    /// The event's `cost_usd`, which replaces the price table.
    public var costOverride: Money?
    /// Exactly the instant written in the line (sub-second digits dropped when the line has none).
    public var eventTime: EpochMillis
    /// Written far behind the stream position (hours, within 7 days).
    public var isLate: Bool
    public var shape: EventShape
    /// Wrapped in a structured-mode CloudEvent (`dataAsString`: `data` is a string holding the JSON object).
    public var cloudEvent: Bool
    public var dataAsString: Bool
}

public struct ExpectedOutcome: Sendable, Hashable {
    public var id: String
    public var workflow: String
    public var owner: String
    public var outcome: String
    public var count: Int64
    public var valueUSD: Money?
    public var eventTime: EpochMillis
    public var isLate: Bool
    public var cloudEvent: Bool
}

/// The contract 1e classes of bad input. `rawValue` is the `reason` of `ExpectedEffect.bad`.
public enum BadClass: String, Sendable, Hashable, CaseIterable {
    case invalidJSON = "invalid_json"
    case notObject = "not_object"
    case missingWorkflow = "missing_workflow"
    case missingOwner = "missing_owner"
    case emptyOwner = "empty_owner"
    case ownerTooLong = "owner_too_long"
    case negativeTokens = "negative_tokens"
    case fractionalTokens = "fractional_tokens"
    case nonNumericTokens = "non_numeric_tokens"
    case absurdTokens = "absurd_tokens"
    case cacheExceedsInput = "cache_exceeds_input"
    case reasoningExceedsOutput = "reasoning_exceeds_output"
    case badTimestamp = "bad_timestamp"
    /// Over 1 MiB: off by default (`TrafficConfig.includeOversized`).
    case tooLarge = "too_large"

    /// Every class but `tooLarge`.
    public static let defaultClasses: [BadClass] = allCases.filter { $0 != .tooLarge }
}

/// What one generated line must do to the totals, computed from the contract's mapping rules.
public enum ExpectedEffect: Sendable, Hashable {
    case usage(ExpectedUsage)
    case outcome(ExpectedOutcome)
    /// Rejected to the dead-letter topic; `reason` is a `BadClass.rawValue`. Changes no total.
    case bad(reason: String)
    /// A byte-identical repeat of an earlier event with this `id`: counted once, so it adds nothing.
    case duplicate(id: String)

    public var id: String? {
        switch self {
        case .usage(let u): return u.id
        case .outcome(let o): return o.id
        case .bad: return nil
        case .duplicate(let id): return id
        }
    }
}

public struct GeneratedEvent: Sendable, Hashable {
    /// One JSON event, no trailing newline (never contains a raw newline).
    public var line: String
    public var expected: ExpectedEffect

    public init(line: String, expected: ExpectedEffect) {
        self.line = line
        self.expected = expected
    }
}
