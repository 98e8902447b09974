/// A string the decoder copied (unescaped) into its scratch buffer. `count < 0` means absent or null.
/// Valid until the decoder's next `decode` call.
public struct ScratchString: Sendable, Equatable {
    public var start: Int32
    public var count: Int32
    public static let absent = ScratchString(start: 0, count: -1)
    public init(start: Int32, count: Int32) { self.start = start; self.count = count }
    @inlinable public var isAbsent: Bool { count < 0 }

    /// The bytes of this string inside `scratch` (as given by `EventDecoder.withEvent`); empty when absent.
    @inlinable public func bytes(in scratch: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        count <= 0 ? UnsafeRawBufferPointer(start: nil, count: 0)
            : UnsafeRawBufferPointer(start: scratch.baseAddress! + Int(start), count: Int(count))
    }
}

/// Token counts in the canonical buckets of contract section 1a. Parts (`cacheRead`, `cacheWrite`,
/// `reasoning`) are included in their wholes (`input`, `output`); `cacheWrite1h` is the part of
/// `cacheWrite` priced at the 1-hour rate.
public struct TokenCounts: Sendable, Equatable {
    public var input: Int64 = 0
    public var cacheRead: Int64 = 0
    public var cacheWrite: Int64 = 0
    public var cacheWrite1h: Int64 = 0
    public var output: Int64 = 0
    public var reasoning: Int64 = 0

    public init(input: Int64 = 0, cacheRead: Int64 = 0, cacheWrite: Int64 = 0, cacheWrite1h: Int64 = 0,
                output: Int64 = 0, reasoning: Int64 = 0) {
        self.input = input; self.cacheRead = cacheRead; self.cacheWrite = cacheWrite
        self.cacheWrite1h = cacheWrite1h; self.output = output; self.reasoning = reasoning
    }

    /// Adds `other` bucket by bucket.
    public mutating func add(_ other: TokenCounts) {
        input += other.input; cacheRead += other.cacheRead; cacheWrite += other.cacheWrite
        cacheWrite1h += other.cacheWrite1h; output += other.output; reasoning += other.reasoning
    }

    /// Keeps, bucket by bucket, the larger of this and `other`.
    public mutating func formMax(_ other: TokenCounts) {
        input = max(input, other.input); cacheRead = max(cacheRead, other.cacheRead)
        cacheWrite = max(cacheWrite, other.cacheWrite); cacheWrite1h = max(cacheWrite1h, other.cacheWrite1h)
        output = max(output, other.output); reasoning = max(reasoning, other.reasoning)
    }
}

/// One separately billed call inside an event: an ordinary event has one; an Anthropic event with
/// `usage.iterations` has one for its own model and one per other model its iterations name (iterations
/// under the same model are summed), so each contribution counts as exactly one request for its model.
public struct Contribution: Sendable, Equatable {
    public var model: ScratchString
    public var tokens: TokenCounts
    public init(model: ScratchString, tokens: TokenCounts) { self.model = model; self.tokens = tokens }
}

public enum EventKind: Sendable, Equatable {
    case usage
    case outcome
}

/// Why a message was rejected (contract section 1e). `code` is stable (metrics label, dead-letter
/// header prefix); `detail` says what exactly was wrong.
public struct RejectReason: Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case invalidJSON = "invalid_json"
        case invalidUTF8 = "invalid_utf8"
        case notObject = "not_object"
        case tooLarge = "too_large"
        case missingField = "missing_field"
        case badField = "bad_field"
        case badTokenCount = "bad_token_count"
        case partExceedsWhole = "part_exceeds_whole"
        case badTimestamp = "bad_timestamp"
        case tooLate = "too_late"
        /// An OTLP trace message that is not readable protobuf (see `ProtoReader`).
        case invalidProtobuf = "invalid_protobuf"
    }
    public var code: Code
    public var detail: String
    public init(_ code: Code, _ detail: String) { self.code = code; self.detail = detail }
    /// The `tokenmeter-error` header value: `bad_token_count: input_tokens is negative`.
    public var description: String { "\(code.rawValue): \(detail)" }
}

/// The decoded form of one message, filled in place by `EventDecoder` (no allocation per event once the
/// decoder's buffers have grown). Strings live in the decoder's scratch buffer.
public struct DecodedEvent: Sendable {
    public var kind: EventKind = .usage
    public var id: ScratchString = .absent
    /// Event time; nil means "use the Kafka message timestamp".
    public var timestamp: EpochMillis? = nil
    public var workflow: ScratchString = .absent
    public var owner: ScratchString = .absent
    /// The provider named by the event, or derived from its usage block; absent = null.
    public var provider: ScratchString = .absent
    public var serviceTier: ScratchString = .absent
    public var isError: Bool = false
    /// A `usage` block that no row of the table reads, on an event without canonical token fields: the
    /// block's top-level key names (`a, b, c`, bounded; empty for `{}`). Absent otherwise. Its request is
    /// counted with zero tokens and an unknown cost (contract 1b).
    public var unrecognizedUsage: ScratchString = .absent
    /// `cost_usd` from the event: replaces the price table for this event.
    public var costOverride: Money? = nil
    /// Usage: one or more billed calls (see `Contribution`). Empty for outcomes.
    public var contributions: [Contribution] = []
    /// `tags` as (name, value) pairs in message order.
    public var tags: [(name: ScratchString, value: ScratchString)] = []
    // Outcome events (contract 1d).
    public var outcome: ScratchString = .absent
    public var outcomeCount: Int64 = 1
    public var outcomeValue: Money? = nil

    public init() {}

    /// Resets for the next message, keeping the arrays' capacity.
    public mutating func reset() {
        kind = .usage; id = .absent; timestamp = nil; workflow = .absent; owner = .absent; provider = .absent
        serviceTier = .absent; isError = false; costOverride = nil; unrecognizedUsage = .absent
        // One `removeLast` per element (an event has one or two of each): a uniqueness check and a count
        // decrement each, where `removeAll(keepingCapacity:)` takes the generic `replaceSubrange` path, about
        // a hundred instructions per array per event. The capacity stays either way.
        while !contributions.isEmpty { contributions.removeLast() }
        while !tags.isEmpty { tags.removeLast() }
        outcome = .absent; outcomeCount = 1; outcomeValue = nil
    }
}
