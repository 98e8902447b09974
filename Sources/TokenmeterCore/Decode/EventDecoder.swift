#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes one Kafka message value (contract section 1) into `event`, in place, with no allocation per
/// event once its buffers have grown. One decoder per polling thread: it is not thread-safe and not
/// Sendable. Every string the event keeps is copied, unescaped, into `scratch`; read it with
/// `withBytes(_:_:)` or `string(_:)` before the next `decode` call.
///
/// Read `event` in place (`decoder.event.contributions[i]`): holding a copy of it across the next `decode`
/// makes that call copy its arrays (an allocation), though it stays correct.
///
/// Reject codes: invalid UTF-8 inside a string is `invalid_utf8`; any other syntax problem (including a
/// non-ASCII byte outside strings, e.g. a UTF-16 message) is `invalid_json`; a JSON syntax error always
/// wins over a field problem found earlier in the same message.
///
/// Decisions where the contract is silent (also in docs/event-reference.md):
/// - Precedence among names for the same field (keys may come in any order; the rank decides, not the
///   position): `model` > `gen_ai.response.model` > `gen_ai.request.model`; `provider` >
///   `gen_ai.provider.name` > `gen_ai.system`; `workflow` > `gen_ai.workflow.name`; `timestamp` > `ts` >
///   `time`; canonical token names > OTel GenAI names > the alternative OTel spellings. Fields at the top
///   level beat the same fields inside an `attributes` object (flat OTel attributes nested one level).
///   Repeated keys: the last one wins.
/// - Also accepted, at the lowest rank: the older OTel names `gen_ai.usage.prompt_tokens` (input) and
///   `gen_ai.usage.completion_tokens` (output), still emitted by several instrumentations.
/// - Outcome events: token fields and `usage` are still validated (a bad count rejects), then ignored.
/// - `null` is the same as absent everywhere (token counts 0, `count` 1, strings absent).
/// - Token counts: JSON integers, integral decimals (`100.0`, `1e3`), or strings of ASCII digits.
/// - `timestamp`/`ts`/`time`: an RFC 3339 string, integer epoch milliseconds, or a string of digits
///   (epoch milliseconds); from 1970 to 9999.
/// - `id`: a string, or a number (kept as its text).
/// - `type`: `usage` or `outcome`; `status`: `ok`, `error` (or `unset`), ASCII case-insensitive; anything
///   else is `bad_field`.
/// - `cost_usd` / `value_usd`: a JSON number or a numeric string, exact; negative or over 10^12 is `bad_field`.
/// - `tags`: string values kept; numbers kept as their text, booleans as `true`/`false`; `null` values
///   dropped; object/array values are `bad_field`. A repeated tag name keeps the last value. With
///   `tagNames`, only those tags are kept (the others are skipped, still validated).
/// - `workflow`/`owner` (and `outcome` for outcomes): absent, null or empty is `missing_field`; not a string
///   or over 256 bytes (UTF-8, after unescaping) is `bad_field`.
/// - Outcome `count`: a non-negative integer up to 10^12 (default 1).
/// - Provider blocks (1b), beyond the table: a block is also recognised as OpenAI Chat by
///   `completion_tokens`, as Anthropic by `cache_creation` / `iterations` / `output_tokens_details.thinking_tokens`,
///   as Gemini by any of its `*TokenCount` fields, as OpenAI Responses by `output_tokens`; so a partial
///   block is never silently counted as zero. A block no row recognises (e.g. Gemini's cache-creation
///   `{"totalTokenCount": N}`) contributes 0 tokens (the event still counts one request).
///   The provider is `anthropic` when it equals `anthropic` ignoring ASCII case.
/// - Anthropic `cache_creation` without `cache_creation_input_tokens`: the cache write is the sum of its
///   `ephemeral_5m_input_tokens` and `ephemeral_1h_input_tokens`. Anthropic reasoning is
///   `output_tokens_details.thinking_tokens` (or `reasoning_tokens` when that is absent).
/// - `service_tier`: the event's own wins; otherwise the block's `service_tier` (or Gemini's `serviceTier`).
/// - Canonical token fields win per field over the block. When an event has ANY canonical token field,
///   `usage.iterations` is not expanded (the producer did its own accounting): one contribution. The
///   block's 1-hour cache write is capped at a canonical `cache_write_tokens` that overrides the block's.
/// - Anthropic `iterations`: iterations under another model than the event's are merged into one
///   `Contribution` per model; for the event's own model (iterations naming none included) each bucket is
///   the larger of the top level and the sum over its iterations. One request per model the event touches;
///   an empty `iterations` array is the same as none.
/// - CloudEvents: `id` and `time` from the envelope when present, else from `data`; `subject` is the owner
///   when `data` has none. `specversion` without `data` is not a CloudEvent.
/// - Part-larger-than-whole is checked per contribution after normalisation, including
///   `cache_write_1h` over `cache_write`.
public final class EventDecoder {
    public static let maxMessageBytes = 1 << 20
    public static let maxNameBytes = 256
    public static let maxTokenCount: Int64 = 1_000_000_000
    public static let maxOutcomeCount: Int64 = 1_000_000_000_000
    public static let maxNestingDepth = 64
    /// 9999-12-31T23:59:59.999Z
    static let maxEpochMillis: Int64 = 253_402_300_799_999

    /// The last decoded message (valid when `decode` returned nil).
    @exclusivity(unchecked) public private(set) var event = DecodedEvent()
    /// Bytes of every string `event` keeps (`ScratchString` are offsets into them): a buffer managed by
    /// hand rather than a `[UInt8]`, because appending a short string to an array (uniqueness and
    /// capacity checks, the generic append path) cost more than the copy itself, about ten times an event.
    @exclusivity(unchecked) private var scratchBase: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var scratchCapacity: Int
    @exclusivity(unchecked) private var scratchCount = 0
    /// A copy of the scratch bytes (tests and tools; the hot path reads them with `withEvent`).
    public var scratch: [UInt8] { Array(UnsafeRawBufferPointer(start: scratchBase, count: scratchCount)) }
    /// Whether the last message was a CloudEvent (contract 1c).
    @exclusivity(unchecked) public private(set) var wasCloudEvent = false

    private let tagFilter: [[UInt8]]?
    @exclusivity(unchecked) private var keyBuf: [UInt8] = []
    @exclusivity(unchecked) private var tmpBuf: [UInt8] = []
    @exclusivity(unchecked) private var dataBuf: [UInt8] = []
    @exclusivity(unchecked) private var errBuf: [UInt8] = []
    @exclusivity(unchecked) private var slots = Slots()
    @exclusivity(unchecked) private var usage = RawUsage()
    @exclusivity(unchecked) private var usageRank: UInt8 = 0
    @exclusivity(unchecked) private var usagePresent = false
    @exclusivity(unchecked) private var iterations: [RawUsage] = []
    @exclusivity(unchecked) private var pending: Pending? = nil
    @exclusivity(unchecked) private var env = Envelope()
    /// Whether `env` holds anything (it is reset only then).
    @exclusivity(unchecked) private var envDirty = false

    /// `tagNames`: the tag names to keep (the configured rollup dimensions); nil keeps every tag.
    public init(tagNames: [String]? = nil) {
        tagFilter = tagNames.map { $0.map { Array($0.utf8) } }
        scratchCapacity = 1024
        scratchBase = UnsafeMutableRawPointer.allocate(byteCount: scratchCapacity, alignment: 8)
        keyBuf.reserveCapacity(64)
        tmpBuf.reserveCapacity(64)
        errBuf.reserveCapacity(128)
        iterations.reserveCapacity(4)
        event.contributions.reserveCapacity(4)
        event.tags.reserveCapacity(8)
    }

    deinit { scratchBase.deallocate() }

    // MARK: - Public accessors

    /// Calls `body` with the decoded event, read in place (no copy of its arrays), and the scratch bytes
    /// its strings point into (`ScratchString.bytes(in:)`). Both are valid only inside `body`.
    @inline(__always)
    public func withEvent<R>(_ body: (borrowing DecodedEvent, UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(event, UnsafeRawBufferPointer(start: scratchBase, count: scratchCount))
    }

    /// Calls `body` with the bytes of `s` (empty when absent). The pointer is valid only inside `body`.
    public func withBytes<R>(_ s: ScratchString, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if s.count <= 0 { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: scratchBase + Int(s.start), count: Int(s.count)))
    }

    @inline(__always) private func withScratchBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: scratchBase, count: scratchCount))
    }

    /// `s` as a String (allocates), nil when absent.
    public func string(_ s: ScratchString) -> String? {
        if s.isAbsent { return nil }
        return withBytes(s) { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether `s` is present and equal to `text`, byte for byte (no allocation for ASCII literals).
    public func equals(_ s: ScratchString, _ text: StaticString) -> Bool {
        guard !s.isAbsent, Int(s.count) == text.utf8CodeUnitCount else { return false }
        return withBytes(s) { b in
            let p = text.utf8Start
            for i in 0..<b.count where b[i] != p[i] { return false }
            return true
        }
    }

    // MARK: - Decode

    /// Decodes one message. Nil: `event` holds it. Otherwise the reason it is rejected (contract 1e).
    public func decode(_ bytes: UnsafeRawBufferPointer) -> RejectReason? {
        event.reset()
        scratchCount = 0
        resetFields()
        if envDirty { env = Envelope(); envDirty = false }
        wasCloudEvent = false
        guard bytes.count <= Self.maxMessageBytes else {
            return RejectReason(.tooLarge, "message is \(bytes.count) bytes, over the 1 MiB limit (\(Self.maxMessageBytes) bytes)")
        }
        guard bytes.count > 0 else { return RejectReason(.invalidJSON, "empty message") }
        var s = JSONScanner(bytes, maxDepth: Self.maxNestingDepth)
        do throws(JSONError) {
            let kind = try s.peekKind()
            guard kind == .object else {
                try s.skipValue()
                try s.finish()
                return RejectReason(.notObject, "message is \(kind.name), not a JSON object")
            }
            try walkEvent(&s, base: Self.topRank, ctx: .top)
            try s.finish()
        } catch {
            return Self.syntaxReject(error, "")
        }
        if env.specversion && env.dataKind != nil {
            wasCloudEvent = true
            if let r = decodeCloudEventData(bytes) { return r }
        }
        return finishEvent()
    }

    /// Convenience for tests and tools (copies into a contiguous buffer first when needed).
    public func decode<C: Collection>(_ bytes: C) -> RejectReason? where C.Element == UInt8 {
        if let r = bytes.withContiguousStorageIfAvailable({ decode(UnsafeRawBufferPointer($0)) }) { return r }
        return Array(bytes).withUnsafeBytes { decode($0) }
    }

    /// Convenience for tests and tools.
    public func decode(_ text: String) -> RejectReason? {
        var t = text
        return t.withUTF8 { decode(UnsafeRawBufferPointer($0)) }
    }

    static func syntaxReject(_ e: JSONError, _ prefix: String) -> RejectReason {
        RejectReason(e.kind == .invalidUTF8 ? .invalidUTF8 : .invalidJSON, prefix + e.description)
    }

    private func resetFields() {
        slots = Slots()
        usageRank = 0
        usagePresent = false
        if !iterations.isEmpty { iterations.removeAll(keepingCapacity: true) }
        pending = nil
    }

    // MARK: - CloudEvents (1c)

    private func decodeCloudEventData(_ bytes: UnsafeRawBufferPointer) -> RejectReason? {
        let envID = slots.id
        resetFields()
        if !event.tags.isEmpty { event.tags.removeAll(keepingCapacity: true) }
        switch env.dataKind {
        case .object:
            var inner = JSONScanner(UnsafeRawBufferPointer(rebasing: bytes[env.dataSpan.start..<env.dataSpan.end]),
                                    maxDepth: Self.maxNestingDepth)
            do throws(JSONError) {
                try walkEvent(&inner, base: Self.topRank, ctx: .data)
                try inner.finish()
            } catch {
                return Self.syntaxReject(error, "data: ")
            }
        case .string:
            if !dataBuf.isEmpty { dataBuf.removeAll(keepingCapacity: true) }
            JSONScanner.appendUnescaped(bytes, env.dataSpan, to: &dataBuf)
            let buf = dataBuf
            let r: RejectReason? = buf.withUnsafeBytes { p in
                var inner = JSONScanner(p, maxDepth: Self.maxNestingDepth)
                do throws(JSONError) {
                    let k = try inner.peekKind()
                    guard k == .object else {
                        try inner.skipValue()
                        try inner.finish()
                        return RejectReason(.badField, "data is a string holding \(k.name), not a JSON object")
                    }
                    try self.walkEvent(&inner, base: Self.topRank, ctx: .data)
                    try inner.finish()
                } catch {
                    return Self.syntaxReject(error, "data (a string holding JSON): ")
                }
                return nil
            }
            if let r { return r }
        case let k?:
            return RejectReason(.badField, "data must be an object or a string holding a JSON object, got \(k.name)")
        case nil:
            break
        }
        if envID.isSet { slots.id = envID }
        if let r = env.timeReject, pending == nil { return r }
        if let t = env.time { slots.timestamp.put(t, 255) }
        if !slots.owner.isSet && !env.subject.isAbsent { slots.owner.put(env.subject, 1) }
        return nil
    }

    // MARK: - Event fields

    static let topRank: UInt8 = 4

    private func walkEvent(_ s: inout JSONScanner, base: UInt8, ctx: Ctx) throws(JSONError) {
        try s.beginObject()
        while let k = try s.nextKey() {
            let key: EventKey
            if k.escaped {
                if !keyBuf.isEmpty { keyBuf.removeAll(keepingCapacity: true) }
                s.appendUnescaped(k, to: &keyBuf)
                key = keyBuf.withUnsafeBytes { Self.classifyEventKey($0) }
            } else {
                key = Self.classifyEventKey(s.bytes(k))
            }
            switch key {
            case .unknown:
                try s.skipValue()
            case .id:
                if let v = try readID(&s, ctx) { slots.id.put(v, base + 3) }
            case .type:
                try readType(&s, ctx, base + 3)
            case .timestamp:
                try readTime(&s, Where(ctx, "timestamp"), base + 3, envelope: false)
            case .ts:
                try readTime(&s, Where(ctx, "ts"), base + 2, envelope: false)
            case .time:
                try readTime(&s, Where(ctx, "time"), base + 1, envelope: ctx == .top)
            case .workflow:
                if let v = try readString(&s, Where(ctx, "workflow")) { slots.workflow.put(v, base + 3) }
            case .otelWorkflow:
                if let v = try readString(&s, Where(ctx, "gen_ai.workflow.name")) { slots.workflow.put(v, base + 2) }
            case .owner:
                if let v = try readString(&s, Where(ctx, "owner")) { slots.owner.put(v, base + 3) }
            case .model:
                if let v = try readString(&s, Where(ctx, "model")) { slots.model.put(v, base + 3) }
            case .otelResponseModel:
                if let v = try readString(&s, Where(ctx, "gen_ai.response.model")) { slots.model.put(v, base + 2) }
            case .otelRequestModel:
                if let v = try readString(&s, Where(ctx, "gen_ai.request.model")) { slots.model.put(v, base + 1) }
            case .provider:
                if let v = try readString(&s, Where(ctx, "provider")) { slots.provider.put(v, base + 3) }
            case .otelProviderName:
                if let v = try readString(&s, Where(ctx, "gen_ai.provider.name")) { slots.provider.put(v, base + 2) }
            case .otelSystem:
                if let v = try readString(&s, Where(ctx, "gen_ai.system")) { slots.provider.put(v, base + 1) }
            case .serviceTier:
                if let v = try readString(&s, Where(ctx, "service_tier")) { slots.serviceTier.put(v, base + 3) }
            case .outcome:
                if let v = try readString(&s, Where(ctx, "outcome")) { slots.outcome.put(v, base + 3) }
            case .status:
                try readStatus(&s, ctx, base + 3)
            case .costUSD:
                if let v = try readMoney(&s, Where(ctx, "cost_usd")) { slots.cost.put(v, base + 3) }
            case .valueUSD:
                if let v = try readMoney(&s, Where(ctx, "value_usd")) { slots.value.put(v, base + 3) }
            case .count:
                if let v = try readCount(&s, Where(ctx, "count"), limit: Self.maxOutcomeCount) { slots.count.put(v, base + 3) }
            case .tags:
                if base == Self.topRank { try readTags(&s, ctx) } else { try s.skipValue() }
            case .usage:
                try readUsage(&s, ctx, base)
            case .inputTokens:
                if let v = try readCount(&s, Where(ctx, "input_tokens")) { slots.input.put(v, base + 3) }
            case .outputTokens:
                if let v = try readCount(&s, Where(ctx, "output_tokens")) { slots.output.put(v, base + 3) }
            case .cacheReadTokens:
                if let v = try readCount(&s, Where(ctx, "cache_read_tokens")) { slots.cacheRead.put(v, base + 3) }
            case .cacheWriteTokens:
                if let v = try readCount(&s, Where(ctx, "cache_write_tokens")) { slots.cacheWrite.put(v, base + 3) }
            case .reasoningTokens:
                if let v = try readCount(&s, Where(ctx, "reasoning_tokens")) { slots.reasoning.put(v, base + 3) }
            case .otelInput:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.input_tokens")) { slots.input.put(v, base + 2) }
            case .otelOutput:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.output_tokens")) { slots.output.put(v, base + 2) }
            case .otelCacheRead:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.cache_read.input_tokens")) { slots.cacheRead.put(v, base + 2) }
            case .otelCacheWrite:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.cache_creation.input_tokens")) { slots.cacheWrite.put(v, base + 2) }
            case .otelReasoning:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.reasoning.output_tokens")) { slots.reasoning.put(v, base + 2) }
            case .otelCacheReadAlt:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.cache_read_input_tokens")) { slots.cacheRead.put(v, base + 1) }
            case .otelCacheWriteAlt:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.cache_creation_input_tokens")) { slots.cacheWrite.put(v, base + 1) }
            case .otelPromptTokens:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.prompt_tokens")) { slots.input.put(v, base + 1) }
            case .otelCompletionTokens:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.completion_tokens")) { slots.output.put(v, base + 1) }
            case .otelReasoningAlt:
                if let v = try readCount(&s, Where(ctx, "gen_ai.usage.reasoning_tokens")) { slots.reasoning.put(v, base + 1) }
            case .specversion:
                if ctx == .top { env.specversion = true; envDirty = true }
                try s.skipValue()
            case .data:
                if ctx == .top {
                    let kind = try s.peekKind()
                    let start = s.position
                    if kind == .string {
                        env.dataSpan = try s.readString()
                    } else {
                        try s.skipValue()
                        env.dataSpan = JSONSpan(start: start, end: s.position, escaped: false)
                    }
                    env.dataKind = kind
                    envDirty = true
                } else {
                    try s.skipValue()
                }
            case .subject:
                if ctx == .top, try s.peekKind() == .string {
                    let sp = try s.readString()
                    env.subject = copy(s, sp)
                    envDirty = true
                } else {
                    try s.skipValue()
                }
            case .attributes:
                if base == Self.topRank, try s.peekKind() == .object {
                    try walkEvent(&s, base: 0, ctx: ctx == .data ? .dataAttributes : .attributes)
                } else {
                    try s.skipValue()   // null, or OTLP's array form: not read
                }
            }
        }
    }

    // MARK: - Value readers

    @inline(__always) private func copy(_ s: borrowing JSONScanner, _ sp: JSONSpan) -> ScratchString {
        if !sp.escaped { return appendRaw(s.buffer.baseAddress! + sp.start, sp.count) }
        if !tmpBuf.isEmpty { tmpBuf.removeAll(keepingCapacity: true) }
        s.appendUnescaped(sp, to: &tmpBuf)
        return tmpBuf.withUnsafeBytes { appendRaw($0.baseAddress!, $0.count) }
    }

    @inline(__always) private func appendStatic(_ text: StaticString) -> ScratchString {
        appendRaw(UnsafeRawPointer(text.utf8Start), text.utf8CodeUnitCount)
    }

    /// Copies `count` bytes to the end of the scratch buffer (growing it when needed).
    @inline(__always) private func appendRaw(_ from: UnsafeRawPointer, _ count: Int) -> ScratchString {
        let start = scratchCount
        if start + count > scratchCapacity { growScratch(start + count) }
        if count > 0 { (scratchBase + start).copyMemory(from: from, byteCount: count) }
        scratchCount = start + count
        return ScratchString(start: Int32(truncatingIfNeeded: start), count: Int32(truncatingIfNeeded: count))
    }

    private func growScratch(_ needed: Int) {
        var c = scratchCapacity * 2
        while c < needed { c *= 2 }
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 8)
        bigger.copyMemory(from: scratchBase, byteCount: scratchCount)
        scratchBase.deallocate()
        scratchBase = bigger
        scratchCapacity = c
    }

    /// Runs `body` on a string's unescaped content (unescaping into `tmpBuf` only when needed).
    @inline(__always) private func withUnescaped<R>(_ s: borrowing JSONScanner, _ sp: JSONSpan,
                                                    _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if !sp.escaped { return body(s.bytes(sp)) }
        if !tmpBuf.isEmpty { tmpBuf.removeAll(keepingCapacity: true) }
        s.appendUnescaped(sp, to: &tmpBuf)
        return tmpBuf.withUnsafeBytes { body($0) }
    }

    /// Records the first field-level problem; the value text (truncated) goes to `errBuf`.
    private func fail(_ code: RejectReason.Code, _ at: Where, _ problem: StaticString,
                      _ s: borrowing JSONScanner, from start: Int, prefix: JSONSpan? = nil) {
        guard pending == nil else { return }
        if !errBuf.isEmpty { errBuf.removeAll(keepingCapacity: true) }
        if let prefix {
            s.appendUnescaped(prefix, to: &errBuf)
            errBuf.append(contentsOf: ": ".utf8)
        }
        var a = start
        while a < s.position, a < s.buffer.count {
            let c = s.buffer[a]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { a += 1 } else { break }
        }
        let n = min(s.position - a, 64)
        if n > 0 { errBuf.append(contentsOf: UnsafeRawBufferPointer(rebasing: s.buffer[a..<(a + n)])) }
        if s.position - a > 64 { errBuf.append(contentsOf: "...".utf8) }
        pending = Pending(code: code, at: at, problem: problem, hasValue: n > 0)
    }

    /// A string field; nil when null (absent) or not a string (recorded as `bad_field`).
    private func readString(_ s: inout JSONScanner, _ at: Where) throws(JSONError) -> ScratchString? {
        let kind = try s.peekKind()
        if kind == .string { return copy(s, try s.readString()) }
        let start = s.position
        try s.skipValue()
        if kind != .null { fail(.badField, at, "must be a string", s, from: start) }
        return nil
    }

    private func readID(_ s: inout JSONScanner, _ ctx: Ctx) throws(JSONError) -> ScratchString? {
        let kind = try s.peekKind()
        if kind == .number { return copy(s, try s.readNumber()) }
        return try readString(&s, Where(ctx, "id"))
    }

    private func readType(_ s: inout JSONScanner, _ ctx: Ctx, _ rank: UInt8) throws(JSONError) {
        let kind = try s.peekKind()
        let start = s.position
        if kind == .string {
            let sp = try s.readString()
            let k: EventKind? = withUnescaped(s, sp) { p in
                if keyEqualsChecked(p, "usage") { return .usage }
                if keyEqualsChecked(p, "outcome") { return .outcome }
                return nil
            }
            if let k { slots.kind.put(k, rank); return }
        } else {
            try s.skipValue()
            if kind == .null { return }
        }
        fail(.badField, Where(ctx, "type"), "must be \"usage\" or \"outcome\"", s, from: start)
    }

    private func readStatus(_ s: inout JSONScanner, _ ctx: Ctx, _ rank: UInt8) throws(JSONError) {
        let kind = try s.peekKind()
        let start = s.position
        if kind == .string {
            let sp = try s.readString()
            let v: Bool? = withUnescaped(s, sp) { p in
                if asciiCaseInsensitiveEquals(p, "ok") || asciiCaseInsensitiveEquals(p, "unset") { return false }
                if asciiCaseInsensitiveEquals(p, "error") { return true }
                return nil
            }
            if let v { slots.isError.put(v, rank); return }
        } else {
            try s.skipValue()
            if kind == .null { return }
        }
        fail(.badField, Where(ctx, "status"), "must be \"ok\" or \"error\"", s, from: start)
    }

    private func readTime(_ s: inout JSONScanner, _ at: Where, _ rank: UInt8, envelope: Bool) throws(JSONError) {
        let kind = try s.peekKind()
        let start = s.position
        var ms: EpochMillis? = nil
        switch kind {
        case .string:
            let sp = try s.readString()
            ms = withUnescaped(s, sp) { p -> EpochMillis? in
                if NumberText.isDigitString(p) {
                    if case .ok(let v) = NumberText.integer(p, limit: Self.maxEpochMillis) { return v }
                    return nil
                }
                // Before 1970 is out of the documented range (found by fuzzing: "1013-11-21T08:05:49Z" gave a
                // negative event time, which the epoch-millisecond forms could never produce).
                guard let t = RFC3339.parse(p), t >= 0 else { return nil }
                return t
            }
        case .number:
            let sp = try s.readNumber()
            if case .ok(let v) = NumberText.integer(s.bytes(sp), limit: Self.maxEpochMillis) { ms = v }
        case .null:
            try s.readNull()
            return
        default:
            try s.skipValue()
        }
        if let ms {
            slots.timestamp.put(ms, rank)
            if envelope { env.time = ms; envDirty = true }
            return
        }
        fail(.badTimestamp, at, "must be an RFC 3339 time or integer epoch milliseconds", s, from: start)
        if envelope {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: s.buffer[start..<s.position]).prefix(64), as: UTF8.self)
            envDirty = true
            env.timeReject = RejectReason(.badTimestamp, "time must be an RFC 3339 time or integer epoch milliseconds, got \(text)")
        }
    }

    /// A token count (or outcome count): a non-negative integer or a string of ASCII digits, at most
    /// `limit`. Nil when null (absent) or bad (recorded as `bad_token_count`).
    private func readCount(_ s: inout JSONScanner, _ at: Where, limit: Int64 = EventDecoder.maxTokenCount) throws(JSONError) -> Int64? {
        let kind = try s.peekKind()
        let start = s.position
        var result = NumberText.IntegerResult.malformed
        switch kind {
        case .number:
            let sp = try s.readNumber()
            result = NumberText.integer(s.bytes(sp), limit: limit)
        case .string:
            let sp = try s.readString()
            result = withUnescaped(s, sp) { p in
                NumberText.isDigitString(p) ? NumberText.integer(p, limit: limit) : .malformed
            }
        case .null:
            try s.readNull()
            return nil
        default:
            try s.skipValue()
        }
        let code: RejectReason.Code = limit == Self.maxTokenCount ? .badTokenCount : .badField
        switch result {
        case .ok(let v): return v
        case .tooLarge:
            fail(code, at, limit == Self.maxTokenCount ? "is absurd (over 10^9)" : "is absurd (over 10^12)", s, from: start)
        case .negative, .fractional, .malformed:
            fail(code, at, "must be a non-negative integer", s, from: start)
        }
        return nil
    }

    /// An exact USD amount: a number or a numeric string, not negative.
    private func readMoney(_ s: inout JSONScanner, _ at: Where) throws(JSONError) -> Money? {
        let kind = try s.peekKind()
        let start = s.position
        var femtos: Int128? = nil
        switch kind {
        case .number:
            let sp = try s.readNumber()
            femtos = NumberText.femtos(s.bytes(sp))
        case .string:
            let sp = try s.readString()
            femtos = withUnescaped(s, sp) { NumberText.femtos($0) }
        case .null:
            try s.readNull()
            return nil
        default:
            try s.skipValue()
        }
        if let femtos, femtos >= 0 { return Money(femtos: femtos) }
        fail(.badField, at, "must be a non-negative decimal number of US dollars (at most 10^12)", s, from: start)
        return nil
    }

    private func readTags(_ s: inout JSONScanner, _ ctx: Ctx) throws(JSONError) {
        let kind = try s.peekKind()
        if kind != .object {
            let start = s.position
            try s.skipValue()
            if kind != .null { fail(.badField, Where(ctx, "tags"), "must be an object of string to string", s, from: start) }
            return
        }
        try s.beginObject()
        while let k = try s.nextKey() {
            if let filter = tagFilter {
                let wanted = withUnescaped(s, k) { p in
                    for f in filter where f.count == p.count {
                        if f.withUnsafeBytes({ fb in p.count == 0 || memcmp(fb.baseAddress!, p.baseAddress!, p.count) == 0 }) {
                            return true
                        }
                    }
                    return false
                }
                if !wanted { try s.skipValue(); continue }
            }
            let vkind = try s.peekKind()
            let start = s.position
            let value: ScratchString
            switch vkind {
            case .string:
                value = copy(s, try s.readString())
            case .number:
                value = copy(s, try s.readNumber())
            case .bool:
                value = try s.readBool() ? appendStatic("true") : appendStatic("false")
            case .null:
                try s.readNull()
                continue
            case .object, .array:
                try s.skipValue()
                fail(.badField, Where(ctx, "tags"), "values must be strings", s, from: start, prefix: k)
                continue
            }
            let name = copy(s, k)
            upsertTag(name, value)
        }
    }

    private func upsertTag(_ name: ScratchString, _ value: ScratchString) {
        let n = event.tags.count
        if n > 0 {
            let found: Int? = withScratchBytes { all in
                let newName = UnsafeRawBufferPointer(rebasing: all[Int(name.start)..<Int(name.start + name.count)])
                for i in 0..<n {
                    let t = event.tags[i].name
                    if t.count == name.count,
                       UnsafeRawBufferPointer(rebasing: all[Int(t.start)..<Int(t.start + t.count)]).elementsEqual(newName) {
                        return i
                    }
                }
                return nil
            }
            if let i = found { event.tags[i].value = value; return }
        }
        event.tags.append((name: name, value: value))
    }

    // MARK: - Usage blocks (1b, 1f)

    private func readUsage(_ s: inout JSONScanner, _ ctx: Ctx, _ rank: UInt8) throws(JSONError) {
        let kind = try s.peekKind()
        guard kind == .object, rank >= usageRank else {
            let start = s.position
            try s.skipValue()
            if kind != .null && kind != .object { fail(.badField, Where(ctx, "usage"), "must be an object", s, from: start) }
            return
        }
        if !iterations.isEmpty { iterations.removeAll(keepingCapacity: true) }
        var u = RawUsage()
        try walkUsage(&s, &u, ctx, iteration: false)
        usage = u
        usageRank = rank
        usagePresent = true
    }

    private func walkUsage(_ s: inout JSONScanner, _ u: inout RawUsage, _ ctx: Ctx, iteration: Bool) throws(JSONError) {
        let block: Block = iteration ? .iteration : .usage
        try s.beginObject()
        while let k = try s.nextKey() {
            let key: UsageKey
            if k.escaped {
                if !keyBuf.isEmpty { keyBuf.removeAll(keepingCapacity: true) }
                s.appendUnescaped(k, to: &keyBuf)
                key = keyBuf.withUnsafeBytes { Self.classifyUsageKey($0) }
            } else {
                key = Self.classifyUsageKey(s.bytes(k))
            }
            switch key {
            case .unknown:
                try s.skipValue()
            case .promptTokens:
                if let v = try readCount(&s, Where(ctx, block, "prompt_tokens")) { u.promptTokens = v; u.has.insert(.promptTokens) }
            case .completionTokens:
                if let v = try readCount(&s, Where(ctx, block, "completion_tokens")) { u.completionTokens = v; u.has.insert(.completionTokens) }
            case .totalTokens:
                if let v = try readCount(&s, Where(ctx, block, "total_tokens")) { u.totalTokens = v; u.has.insert(.totalTokens) }
            case .inputTokens:
                if let v = try readCount(&s, Where(ctx, block, "input_tokens")) { u.inputTokens = v; u.has.insert(.inputTokens) }
            case .outputTokens:
                if let v = try readCount(&s, Where(ctx, block, "output_tokens")) { u.outputTokens = v; u.has.insert(.outputTokens) }
            case .cacheCreationInputTokens:
                if let v = try readCount(&s, Where(ctx, block, "cache_creation_input_tokens")) { u.cacheCreation = v; u.has.insert(.cacheCreationInputTokens) }
            case .cacheReadInputTokens:
                if let v = try readCount(&s, Where(ctx, block, "cache_read_input_tokens")) { u.cacheReadInput = v; u.has.insert(.cacheReadInputTokens) }
            case .promptTokenCount:
                if let v = try readCount(&s, Where(ctx, block, "promptTokenCount")) { u.gPrompt = v; u.has.insert(.gemini) }
            case .toolUsePromptTokenCount:
                if let v = try readCount(&s, Where(ctx, block, "toolUsePromptTokenCount")) { u.gToolUse = v; u.has.insert(.gemini) }
            case .cachedContentTokenCount:
                if let v = try readCount(&s, Where(ctx, block, "cachedContentTokenCount")) { u.gCached = v; u.has.insert(.gemini) }
            case .candidatesTokenCount:
                if let v = try readCount(&s, Where(ctx, block, "candidatesTokenCount")) { u.gCandidates = v; u.has.insert(.gemini) }
            case .thoughtsTokenCount:
                if let v = try readCount(&s, Where(ctx, block, "thoughtsTokenCount")) { u.gThoughts = v; u.has.insert(.gemini) }
            case .promptTokensDetails:
                try walkDetails(&s, &u, ctx, block, .prompt)
            case .completionTokensDetails:
                try walkDetails(&s, &u, ctx, block, .completion)
            case .inputTokensDetails:
                try walkDetails(&s, &u, ctx, block, .input)
            case .outputTokensDetails:
                try walkDetails(&s, &u, ctx, block, .output)
            case .cacheCreation:
                try walkDetails(&s, &u, ctx, block, .cacheCreation)
            case .serviceTier, .serviceTierCamel:
                // Provider metadata: kept when it is a string, otherwise ignored.
                if try s.peekKind() == .string { u.serviceTier = copy(s, try s.readString()) } else { try s.skipValue() }
            case .model:
                if iteration {
                    if let v = try readString(&s, Where(ctx, block, "model")) { u.model = v }
                } else {
                    try s.skipValue()
                }
            case .iterations:
                if iteration { try s.skipValue(); continue }
                let kind = try s.peekKind()
                guard kind == .array else {
                    let start = s.position
                    try s.skipValue()
                    if kind != .null { fail(.badField, Where(ctx, block, "iterations"), "must be an array", s, from: start) }
                    continue
                }
                if !iterations.isEmpty { iterations.removeAll(keepingCapacity: true) }
                try s.beginArray()
                while try s.nextElement() {
                    let ek = try s.peekKind()
                    if ek == .object {
                        var it = RawUsage()
                        try walkUsage(&s, &it, ctx, iteration: true)
                        iterations.append(it)
                    } else {
                        let start = s.position
                        try s.skipValue()
                        if ek != .null { fail(.badField, Where(ctx, block, "iterations"), "elements must be objects", s, from: start) }
                    }
                }
                if !iterations.isEmpty { u.has.insert(.iterations) }
            }
        }
    }

    private func walkDetails(_ s: inout JSONScanner, _ u: inout RawUsage, _ ctx: Ctx, _ block: Block,
                             _ which: DetailsOf) throws(JSONError) {
        let kind = try s.peekKind()
        guard kind == .object else {
            let start = s.position
            try s.skipValue()
            if kind != .null { fail(.badField, Where(ctx, block, which.name), "must be an object", s, from: start) }
            return
        }
        if which == .cacheCreation { u.has.insert(.cacheCreationObject) }
        try s.beginObject()
        while let k = try s.nextKey() {
            let key: DetailKey
            if k.escaped {
                if !keyBuf.isEmpty { keyBuf.removeAll(keepingCapacity: true) }
                s.appendUnescaped(k, to: &keyBuf)
                key = keyBuf.withUnsafeBytes { Self.classifyDetailKey($0) }
            } else {
                key = Self.classifyDetailKey(s.bytes(k))
            }
            switch (which, key) {
            case (.prompt, .cachedTokens):
                if let v = try readCount(&s, Where(ctx, block, "prompt_tokens_details.cached_tokens")) { u.promptCached = v }
            case (.prompt, .cacheWriteTokens):
                if let v = try readCount(&s, Where(ctx, block, "prompt_tokens_details.cache_write_tokens")) { u.promptCacheWrite = v }
            case (.completion, .reasoningTokens):
                if let v = try readCount(&s, Where(ctx, block, "completion_tokens_details.reasoning_tokens")) { u.completionReasoning = v }
            case (.input, .cachedTokens):
                if let v = try readCount(&s, Where(ctx, block, "input_tokens_details.cached_tokens")) { u.inputCached = v }
            case (.input, .cacheWriteTokens):
                if let v = try readCount(&s, Where(ctx, block, "input_tokens_details.cache_write_tokens")) { u.inputCacheWrite = v }
            case (.output, .reasoningTokens):
                if let v = try readCount(&s, Where(ctx, block, "output_tokens_details.reasoning_tokens")) { u.outputReasoning = v }
            case (.output, .thinkingTokens):
                if let v = try readCount(&s, Where(ctx, block, "output_tokens_details.thinking_tokens")) { u.thinking = v; u.has.insert(.thinking) }
            case (.cacheCreation, .ephemeral1h):
                if let v = try readCount(&s, Where(ctx, block, "cache_creation.ephemeral_1h_input_tokens")) { u.cache1h = v }
            case (.cacheCreation, .ephemeral5m):
                if let v = try readCount(&s, Where(ctx, block, "cache_creation.ephemeral_5m_input_tokens")) { u.cache5m = v }
            default:
                try s.skipValue()
            }
        }
    }

    // MARK: - Normalisation and checks

    private func finishEvent() -> RejectReason? {
        if let p = pending { return materialize(p) }
        let ctxName = wasCloudEvent ? " (in data)" : ""
        // workflow, owner
        if let r = checkName(slots.workflow, "workflow", ctxName) { return r }
        if let r = checkName(slots.owner, "owner", ctxName) { return r }
        event.kind = slots.kind.value
        event.id = slots.id.value
        event.timestamp = slots.timestamp.isSet ? slots.timestamp.value : nil
        event.workflow = slots.workflow.value
        event.owner = slots.owner.value
        event.isError = slots.isError.value
        event.costOverride = slots.cost.isSet ? slots.cost.value : nil

        if event.kind == .outcome {
            if let r = checkName(slots.outcome, "outcome", ctxName) { return r }
            event.outcome = slots.outcome.value
            event.outcomeCount = slots.count.isSet ? slots.count.value : 1
            event.outcomeValue = slots.value.isSet ? slots.value.value : nil
            return nil
        }

        let model = slots.model.value
        var provider = slots.provider.value
        let anthropicProvider = !provider.isAbsent && withBytes(provider) { asciiCaseInsensitiveEquals($0, "anthropic") }
        var row = BlockRow.none
        if usagePresent { row = Self.recognise(usage, anthropicProvider: anthropicProvider) }
        if provider.isAbsent {
            switch row {
            case .chat, .responses: provider = appendStatic("openai")
            case .anthropic: provider = appendStatic("anthropic")
            case .gemini: provider = appendStatic("google")
            case .none: break
            }
        }
        event.provider = provider
        event.serviceTier = slots.serviceTier.isSet ? slots.serviceTier.value : (usagePresent ? usage.serviceTier : .absent)

        let anyCanonical = slots.input.isSet || slots.output.isSet || slots.cacheRead.isSet || slots.cacheWrite.isSet
            || slots.reasoning.isSet
        if row == .anthropic && usage.has.contains(.iterations) && !anyCanonical {
            // Producers disagree on what the top level holds (the executor only, everything but earlier
            // compactions, or a whole session), so for the event's own model each count is the larger of the
            // top level and the sum of that model's iterations; other models are their own contributions.
            event.contributions.append(Contribution(model: model, tokens: Self.anthropicCounts(usage)))
            var ownSum = TokenCounts()
            for it in iterations {
                let counts = Self.anthropicCounts(it)
                if it.model.isAbsent || sameBytes(it.model, model) {
                    ownSum.add(counts)
                } else {
                    addContribution(it.model, counts)
                }
            }
            event.contributions[0].tokens.formMax(ownSum)
        } else {
            var c = row == .none ? TokenCounts() : Self.counts(usage, row)
            if slots.input.isSet { c.input = slots.input.value }
            if slots.cacheRead.isSet { c.cacheRead = slots.cacheRead.value }
            if slots.cacheWrite.isSet {
                c.cacheWrite = slots.cacheWrite.value
                c.cacheWrite1h = min(c.cacheWrite1h, c.cacheWrite)
            }
            if slots.output.isSet { c.output = slots.output.value }
            if slots.reasoning.isSet { c.reasoning = slots.reasoning.value }
            event.contributions.append(Contribution(model: model, tokens: c))
        }
        for c in event.contributions {
            let t = c.tokens
            if t.cacheRead + t.cacheWrite > t.input {
                return RejectReason(.partExceedsWhole, "cache_read_tokens (\(t.cacheRead)) + cache_write_tokens (\(t.cacheWrite)) exceed input_tokens (\(t.input))\(modelSuffix(c.model))")
            }
            if t.reasoning > t.output {
                return RejectReason(.partExceedsWhole, "reasoning_tokens (\(t.reasoning)) exceed output_tokens (\(t.output))\(modelSuffix(c.model))")
            }
            if t.cacheWrite1h > t.cacheWrite {
                return RejectReason(.partExceedsWhole, "cache_write_1h tokens (\(t.cacheWrite1h)) exceed cache_write_tokens (\(t.cacheWrite))\(modelSuffix(c.model))")
            }
        }
        return nil
    }

    private func modelSuffix(_ m: ScratchString) -> String {
        guard let s = string(m) else { return "" }
        return " for model \(s)"
    }

    /// Adds `counts` to the contribution of `model`, creating it when the event has none for that model yet.
    private func addContribution(_ model: ScratchString, _ counts: TokenCounts) {
        let n = event.contributions.count
        for i in 0..<n where sameBytes(event.contributions[i].model, model) {
            event.contributions[i].tokens.input += counts.input
            event.contributions[i].tokens.cacheRead += counts.cacheRead
            event.contributions[i].tokens.cacheWrite += counts.cacheWrite
            event.contributions[i].tokens.cacheWrite1h += counts.cacheWrite1h
            event.contributions[i].tokens.output += counts.output
            event.contributions[i].tokens.reasoning += counts.reasoning
            return
        }
        event.contributions.append(Contribution(model: model, tokens: counts))
    }

    private func sameBytes(_ a: ScratchString, _ b: ScratchString) -> Bool {
        if a.isAbsent || b.isAbsent { return a.isAbsent && b.isAbsent }
        if a.count != b.count { return false }
        if a.start == b.start { return true }
        return withScratchBytes { all in
            UnsafeRawBufferPointer(rebasing: all[Int(a.start)..<Int(a.start + a.count)])
                .elementsEqual(UnsafeRawBufferPointer(rebasing: all[Int(b.start)..<Int(b.start + b.count)]))
        }
    }

    private func checkName(_ v: Ranked<ScratchString>, _ name: String, _ ctxName: String) -> RejectReason? {
        if !v.isSet || v.value.count <= 0 {
            return RejectReason(.missingField, v.isSet ? "\(name) is empty\(ctxName)" : "\(name) is missing\(ctxName)")
        }
        if Int(v.value.count) > Self.maxNameBytes {
            return RejectReason(.badField, "\(name) is \(v.value.count) bytes, over the \(Self.maxNameBytes)-byte limit\(ctxName)")
        }
        return nil
    }

    private func materialize(_ p: Pending) -> RejectReason {
        var d = ""
        d += p.at.ctx.prefix.description
        d += p.at.block.prefix.description
        d += p.at.field.description
        d += " "
        d += p.problem.description
        if p.hasValue {
            // One line: whitespace inside a quoted object/array value becomes spaces.
            for i in errBuf.indices where errBuf[i] < 0x20 { errBuf[i] = 0x20 }
            d += ", got " + String(decoding: errBuf, as: UTF8.self)
        }
        return RejectReason(p.code, d)
    }

    static func recognise(_ u: RawUsage, anthropicProvider: Bool) -> BlockRow {
        let h = u.has
        if h.contains(.promptTokens) || h.contains(.completionTokens) { return .chat }
        if anthropicProvider || h.contains(.cacheCreationInputTokens) || h.contains(.cacheReadInputTokens)
            || h.contains(.cacheCreationObject) || h.contains(.iterations) || h.contains(.thinking) { return .anthropic }
        if h.contains(.gemini) { return .gemini }
        if h.contains(.inputTokens) || h.contains(.outputTokens) { return .responses }
        return .none
    }

    static func anthropicCounts(_ u: RawUsage) -> TokenCounts {
        let write = u.has.contains(.cacheCreationInputTokens) ? u.cacheCreation : u.cache5m + u.cache1h
        return TokenCounts(input: u.inputTokens + u.cacheReadInput + write, cacheRead: u.cacheReadInput,
                           cacheWrite: write, cacheWrite1h: u.cache1h, output: u.outputTokens,
                           reasoning: u.has.contains(.thinking) ? u.thinking : u.outputReasoning)
    }

    static func counts(_ u: RawUsage, _ row: BlockRow) -> TokenCounts {
        switch row {
        case .none:
            return TokenCounts()
        case .chat:
            var c = TokenCounts(input: u.promptTokens, cacheRead: u.promptCached, cacheWrite: u.promptCacheWrite,
                                output: u.completionTokens, reasoning: u.completionReasoning)
            // Gemini's OpenAI-compatible endpoint: thinking counted in total_tokens only (1f).
            if u.has.contains(.totalTokens) && u.totalTokens > u.promptTokens + u.completionTokens {
                let hidden = u.totalTokens - u.promptTokens - u.completionTokens
                c.output += hidden
                c.reasoning += hidden
            }
            return c
        case .anthropic:
            return anthropicCounts(u)
        case .gemini:
            return TokenCounts(input: u.gPrompt + u.gToolUse, cacheRead: u.gCached, cacheWrite: 0,
                               output: u.gCandidates + u.gThoughts, reasoning: u.gThoughts)
        case .responses:
            return TokenCounts(input: u.inputTokens, cacheRead: u.inputCached, cacheWrite: u.inputCacheWrite,
                               output: u.outputTokens, reasoning: u.outputReasoning)
        }
    }

    // MARK: - Key classification (generated: switch on length, then compare bytes)

    @inline(__always)
    static func classifyEventKey(_ k: UnsafeRawBufferPointer) -> EventKey {
        switch k.count {
        case 2:
            if keyEquals(k, "id") { return .id }
            if keyEquals(k, "ts") { return .ts }
        case 4:
            if keyEquals(k, "type") { return .type }
            if keyEquals(k, "time") { return .time }
            if keyEquals(k, "tags") { return .tags }
            if keyEquals(k, "data") { return .data }
        case 5:
            if keyEquals(k, "model") { return .model }
            if keyEquals(k, "usage") { return .usage }
            if keyEquals(k, "owner") { return .owner }
            if keyEquals(k, "count") { return .count }
        case 6:
            if keyEquals(k, "status") { return .status }
        case 7:
            if keyEquals(k, "outcome") { return .outcome }
            if keyEquals(k, "subject") { return .subject }
        case 8:
            if keyEquals(k, "workflow") { return .workflow }
            if keyEquals(k, "provider") { return .provider }
            if keyEquals(k, "cost_usd") { return .costUSD }
        case 9:
            if keyEquals(k, "timestamp") { return .timestamp }
            if keyEquals(k, "value_usd") { return .valueUSD }
        case 10:
            if keyEquals(k, "attributes") { return .attributes }
        case 11:
            if keyEquals(k, "specversion") { return .specversion }
        case 12:
            if keyEquals(k, "service_tier") { return .serviceTier }
            if keyEquals(k, "input_tokens") { return .inputTokens }
        case 13:
            if keyEquals(k, "output_tokens") { return .outputTokens }
            if keyEquals(k, "gen_ai.system") { return .otelSystem }
        case 16:
            if keyEquals(k, "reasoning_tokens") { return .reasoningTokens }
        case 17:
            if keyEquals(k, "cache_read_tokens") { return .cacheReadTokens }
        case 18:
            if keyEquals(k, "cache_write_tokens") { return .cacheWriteTokens }
        case 20:
            if keyEquals(k, "gen_ai.request.model") { return .otelRequestModel }
            if keyEquals(k, "gen_ai.provider.name") { return .otelProviderName }
            if keyEquals(k, "gen_ai.workflow.name") { return .otelWorkflow }
        case 21:
            if keyEquals(k, "gen_ai.response.model") { return .otelResponseModel }
        case 25:
            if keyEquals(k, "gen_ai.usage.input_tokens") { return .otelInput }
        case 26:
            if keyEquals(k, "gen_ai.usage.output_tokens") { return .otelOutput }
            if keyEquals(k, "gen_ai.usage.prompt_tokens") { return .otelPromptTokens }
        case 29:
            if keyEquals(k, "gen_ai.usage.reasoning_tokens") { return .otelReasoningAlt }
        case 30:
            if keyEquals(k, "gen_ai.usage.completion_tokens") { return .otelCompletionTokens }
        case 36:
            if keyEquals(k, "gen_ai.usage.cache_read.input_tokens") { return .otelCacheRead }
            if keyEquals(k, "gen_ai.usage.reasoning.output_tokens") { return .otelReasoning }
            if keyEquals(k, "gen_ai.usage.cache_read_input_tokens") { return .otelCacheReadAlt }
        case 40:
            if keyEquals(k, "gen_ai.usage.cache_creation.input_tokens") { return .otelCacheWrite }
            if keyEquals(k, "gen_ai.usage.cache_creation_input_tokens") { return .otelCacheWriteAlt }
        default: break
        }
        return .unknown
    }

    @inline(__always)
    static func classifyUsageKey(_ k: UnsafeRawBufferPointer) -> UsageKey {
        switch k.count {
        case 5:
            if keyEquals(k, "model") { return .model }
        case 10:
            if keyEquals(k, "iterations") { return .iterations }
        case 11:
            if keyEquals(k, "serviceTier") { return .serviceTierCamel }
        case 12:
            if keyEquals(k, "total_tokens") { return .totalTokens }
            if keyEquals(k, "input_tokens") { return .inputTokens }
            if keyEquals(k, "service_tier") { return .serviceTier }
        case 13:
            if keyEquals(k, "prompt_tokens") { return .promptTokens }
            if keyEquals(k, "output_tokens") { return .outputTokens }
        case 14:
            if keyEquals(k, "cache_creation") { return .cacheCreation }
        case 16:
            if keyEquals(k, "promptTokenCount") { return .promptTokenCount }
        case 17:
            if keyEquals(k, "completion_tokens") { return .completionTokens }
        case 18:
            if keyEquals(k, "thoughtsTokenCount") { return .thoughtsTokenCount }
        case 20:
            if keyEquals(k, "input_tokens_details") { return .inputTokensDetails }
            if keyEquals(k, "candidatesTokenCount") { return .candidatesTokenCount }
        case 21:
            if keyEquals(k, "prompt_tokens_details") { return .promptTokensDetails }
            if keyEquals(k, "output_tokens_details") { return .outputTokensDetails }
        case 23:
            if keyEquals(k, "cache_read_input_tokens") { return .cacheReadInputTokens }
            if keyEquals(k, "toolUsePromptTokenCount") { return .toolUsePromptTokenCount }
            if keyEquals(k, "cachedContentTokenCount") { return .cachedContentTokenCount }
        case 25:
            if keyEquals(k, "completion_tokens_details") { return .completionTokensDetails }
        case 27:
            if keyEquals(k, "cache_creation_input_tokens") { return .cacheCreationInputTokens }
        default: break
        }
        return .unknown
    }

    @inline(__always)
    static func classifyDetailKey(_ k: UnsafeRawBufferPointer) -> DetailKey {
        switch k.count {
        case 13:
            if keyEquals(k, "cached_tokens") { return .cachedTokens }
        case 15:
            if keyEquals(k, "thinking_tokens") { return .thinkingTokens }
        case 16:
            if keyEquals(k, "reasoning_tokens") { return .reasoningTokens }
        case 18:
            if keyEquals(k, "cache_write_tokens") { return .cacheWriteTokens }
        case 25:
            if keyEquals(k, "ephemeral_1h_input_tokens") { return .ephemeral1h }
            if keyEquals(k, "ephemeral_5m_input_tokens") { return .ephemeral5m }
        default: break
        }
        return .unknown
    }
}

// MARK: - Internal types

enum EventKey: UInt8 {
    case unknown, id, ts, type, time, tags, data, model, usage, owner, count, status, outcome, subject, workflow,
         provider, costUSD, timestamp, valueUSD, attributes, specversion, serviceTier, inputTokens, outputTokens,
         reasoningTokens, cacheReadTokens, cacheWriteTokens, otelInput, otelOutput, otelCacheRead, otelCacheWrite,
         otelReasoning, otelCacheReadAlt, otelCacheWriteAlt, otelReasoningAlt, otelRequestModel, otelResponseModel,
         otelProviderName, otelSystem, otelWorkflow, otelPromptTokens, otelCompletionTokens
}

enum UsageKey: UInt8 {
    case unknown, promptTokens, completionTokens, totalTokens, promptTokensDetails, completionTokensDetails,
         inputTokens, outputTokens, cacheCreationInputTokens, cacheReadInputTokens, cacheCreation,
         outputTokensDetails, inputTokensDetails, promptTokenCount, toolUsePromptTokenCount,
         cachedContentTokenCount, candidatesTokenCount, thoughtsTokenCount, serviceTier, serviceTierCamel,
         iterations, model
}

enum DetailKey: UInt8 {
    case unknown, cachedTokens, cacheWriteTokens, reasoningTokens, thinkingTokens, ephemeral1h, ephemeral5m
}

enum DetailsOf {
    case prompt, completion, input, output, cacheCreation
    var name: StaticString {
        switch self {
        case .prompt: "prompt_tokens_details"
        case .completion: "completion_tokens_details"
        case .input: "input_tokens_details"
        case .output: "output_tokens_details"
        case .cacheCreation: "cache_creation"
        }
    }
}

enum BlockRow: Equatable { case none, chat, anthropic, gemini, responses }

/// Where a field was read, for reject details: `<ctx><block><parent><field>`.
enum Ctx: Equatable {
    case top, attributes, data, dataAttributes
    var prefix: StaticString {
        switch self {
        case .top: ""
        case .attributes: "attributes."
        case .data: "data."
        case .dataAttributes: "data.attributes."
        }
    }
}

struct Where {
    var ctx: Ctx
    var block: Block
    var field: StaticString
    @inline(__always) init(_ ctx: Ctx, _ field: StaticString) {
        self.ctx = ctx; block = .none; self.field = field
    }
    @inline(__always) init(_ ctx: Ctx, _ block: Block, _ field: StaticString) {
        self.ctx = ctx; self.block = block; self.field = field
    }
}

enum Block: UInt8 {
    case none, usage, iteration
    var prefix: StaticString {
        switch self {
        case .none: ""
        case .usage: "usage."
        case .iteration: "usage.iterations[]."
        }
    }
}

/// The first field-level problem of a message, kept without allocating until the message is rejected.
struct Pending {
    var code: RejectReason.Code
    var at: Where
    var problem: StaticString
    var hasValue: Bool
}

/// A field value with the rank of the name it came from (0 = not set); a higher or equal rank replaces.
struct Ranked<T> {
    var value: T
    var rank: UInt8 = 0
    @inline(__always) init(_ v: T) { value = v }
    @inline(__always) var isSet: Bool { rank > 0 }
    @inline(__always) mutating func put(_ v: T, _ r: UInt8) {
        if r >= rank { value = v; rank = r }
    }
}

struct Slots {
    var id = Ranked(ScratchString.absent)
    var kind = Ranked(EventKind.usage)
    var timestamp = Ranked(EpochMillis(0))
    var workflow = Ranked(ScratchString.absent)
    var owner = Ranked(ScratchString.absent)
    var model = Ranked(ScratchString.absent)
    var provider = Ranked(ScratchString.absent)
    var serviceTier = Ranked(ScratchString.absent)
    var outcome = Ranked(ScratchString.absent)
    var isError = Ranked(false)
    var cost = Ranked(Money.zero)
    var value = Ranked(Money.zero)
    var count = Ranked(Int64(1))
    var input = Ranked(Int64(0))
    var cacheRead = Ranked(Int64(0))
    var cacheWrite = Ranked(Int64(0))
    var output = Ranked(Int64(0))
    var reasoning = Ranked(Int64(0))
}

struct Envelope {
    var specversion = false
    var dataKind: JSONValueKind? = nil
    var dataSpan = JSONSpan(start: 0, end: 0, escaped: false)
    var subject = ScratchString.absent
    var time: EpochMillis? = nil
    var timeReject: RejectReason? = nil
}

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
    var serviceTier = ScratchString.absent
    /// Iterations only.
    var model = ScratchString.absent
}

// MARK: - Byte helpers

/// `k` equals `s`; the caller has already checked that the lengths are equal.
@inline(__always)
func keyEquals(_ k: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    let n = s.utf8CodeUnitCount
    guard k.count == n, let kb = k.baseAddress else { return n == 0 && k.count == 0 }
    let sb = UnsafeRawPointer(s.utf8Start)
    if n >= 8 {
        // Compare 8 bytes at a time; the last word overlaps the previous one.
        var i = 0
        while i + 8 < n {
            if kb.loadUnaligned(fromByteOffset: i, as: UInt64.self) != sb.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        return kb.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == sb.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    }
    if n >= 4 {
        return kb.loadUnaligned(as: UInt32.self) == sb.loadUnaligned(as: UInt32.self)
            && kb.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self) == sb.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
    }
    for i in 0..<n where kb.load(fromByteOffset: i, as: UInt8.self) != sb.load(fromByteOffset: i, as: UInt8.self) {
        return false
    }
    return true
}

@inline(__always)
func keyEqualsChecked(_ k: UnsafeRawBufferPointer, _ s: StaticString) -> Bool { keyEquals(k, s) }

@inline(__always)
func asciiCaseInsensitiveEquals(_ k: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    let n = s.utf8CodeUnitCount
    guard k.count == n else { return false }
    let p = s.utf8Start
    for i in 0..<n {
        var c = k[i]
        if c >= 65 && c <= 90 { c += 32 }
        if c != p[i] { return false }
    }
    return true
}
