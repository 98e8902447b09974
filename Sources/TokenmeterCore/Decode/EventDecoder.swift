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
///   Repeated keys: the last one wins, problems included: an invalid first value followed by a valid (or
///   null) one is not a reject, a valid one followed by an invalid one is. A repeated `usage` block
///   replaces the earlier block whole. Inside `usage.iterations` each element is its own call, so an
///   invalid count there rejects whatever follows.
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
/// - Provider blocks (1b): the rows are `ProviderUsage` (pure functions, with the keys each row is also
///   recognised by, so that a partial block is read by its row). A block no row recognises (e.g. Gemini's
///   cache-creation `{"totalTokenCount": N}`), on an event without canonical token fields, contributes 0
///   tokens and sets `unrecognizedUsage` to its top-level key names: the pipeline counts the request as
///   unpriced and raises `unrecognized_usage`. The provider is `anthropic` when it equals `anthropic`
///   ignoring ASCII case.
/// - Provider: the event's own, else the one its block's row names, else the model name's by
///   `ProviderPrefixes` (longest prefix, ASCII case ignored), else null.
/// - `model` (and each iteration's), `provider`, `service_tier`, tag names and tag values: at most 256 bytes
///   (UTF-8, after unescaping), like `workflow`; longer is `bad_field`. They reach rollup rows, metrics,
///   alerts and checkpoints, which must stay bounded.
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
    @exclusivity(unchecked) public internal(set) var event = DecodedEvent()
    /// Bytes of every string `event` keeps (`ScratchString` are offsets into them): a buffer managed by
    /// hand rather than a `[UInt8]`, because appending a short string to an array (uniqueness and
    /// capacity checks, the generic append path) cost more than the copy itself, about ten times an event.
    @exclusivity(unchecked) var scratchBase: UnsafeMutableRawPointer
    @exclusivity(unchecked) var scratchCapacity: Int
    @exclusivity(unchecked) var scratchCount = 0
    /// A copy of the scratch bytes (tests and tools; the hot path reads them with `withEvent`).
    public var scratch: [UInt8] { Array(UnsafeRawBufferPointer(start: scratchBase, count: scratchCount)) }
    /// Whether the last message was a CloudEvent (contract 1c).
    @exclusivity(unchecked) public internal(set) var wasCloudEvent = false

    let tagFilter: [[UInt8]]?
    @exclusivity(unchecked) var keyBuf: [UInt8] = []
    @exclusivity(unchecked) var tmpBuf: [UInt8] = []
    @exclusivity(unchecked) var dataBuf: [UInt8] = []
    @exclusivity(unchecked) var errBuf: [UInt8] = []
    @exclusivity(unchecked) var slots = Slots()
    @exclusivity(unchecked) var usage = RawUsage()
    @exclusivity(unchecked) var usageRank: UInt8 = 0
    @exclusivity(unchecked) var usagePresent = false
    @exclusivity(unchecked) var iterations: [RawUsage] = []
    /// Field problems found so far, in message order (at most `maxPendings`; `morePendings` says more were
    /// found). A later valid value of the same key drops its problems: the last value of a repeated key is
    /// the one that counts. The first problem left when the message ends is the reject reason.
    @exclusivity(unchecked) var pendings: [Pending] = []
    @exclusivity(unchecked) var morePendings = false
    /// The key whose value is being read, as `Pending.slot` (0: problems here are never dropped by a
    /// repeated key, e.g. inside `usage.iterations`, where each element is a separate call).
    @exclusivity(unchecked) var currentSlot: UInt64 = 0
    static let maxPendings = 8
    /// The usage block's top-level key names when no row could read it without help from the event's
    /// provider; absent otherwise.
    @exclusivity(unchecked) var usageKeys = ScratchString.absent
    let providerPrefixes: ProviderPrefixes
    @exclusivity(unchecked) var env = Envelope()
    /// Whether `env` holds anything (it is reset only then).
    @exclusivity(unchecked) var envDirty = false

    /// `tagNames`: the tag names to keep (the configured rollup dimensions); nil keeps every tag.
    /// `providerPrefixes`: the model-name prefixes that name a provider (built-in plus `[provider_prefixes]`).
    public init(tagNames: [String]? = nil, providerPrefixes: ProviderPrefixes = ProviderPrefixes()) {
        tagFilter = tagNames.map { $0.map { Array($0.utf8) } }
        self.providerPrefixes = providerPrefixes
        pendings.reserveCapacity(Self.maxPendings)
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

    @inline(__always) func withScratchBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
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

    func resetFields() {
        slots = Slots()
        usageRank = 0
        usagePresent = false
        if !iterations.isEmpty { iterations.removeAll(keepingCapacity: true) }
        if !pendings.isEmpty { pendings.removeAll(keepingCapacity: true) }
        morePendings = false
        currentSlot = 0
        usageKeys = .absent
    }

    // MARK: - Value readers

    @inline(__always) func copy(_ s: borrowing JSONScanner, _ sp: JSONSpan) -> ScratchString {
        if !sp.escaped { return appendRaw(s.buffer.baseAddress! + sp.start, sp.count) }
        if !tmpBuf.isEmpty { tmpBuf.removeAll(keepingCapacity: true) }
        s.appendUnescaped(sp, to: &tmpBuf)
        return tmpBuf.withUnsafeBytes { appendRaw($0.baseAddress!, $0.count) }
    }

    @inline(__always) func appendStatic(_ text: StaticString) -> ScratchString {
        appendRaw(UnsafeRawPointer(text.utf8Start), text.utf8CodeUnitCount)
    }

    /// Copies `count` bytes to the end of the scratch buffer (growing it when needed).
    @inline(__always) func appendRaw(_ from: UnsafeRawPointer, _ count: Int) -> ScratchString {
        let start = scratchCount
        if start + count > scratchCapacity { growScratch(start + count) }
        if count > 0 { (scratchBase + start).copyMemory(from: from, byteCount: count) }
        scratchCount = start + count
        return ScratchString(start: Int32(truncatingIfNeeded: start), count: Int32(truncatingIfNeeded: count))
    }

    func growScratch(_ needed: Int) {
        var c = scratchCapacity * 2
        while c < needed { c *= 2 }
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 8)
        bigger.copyMemory(from: scratchBase, byteCount: scratchCount)
        scratchBase.deallocate()
        scratchBase = bigger
        scratchCapacity = c
    }

    /// Runs `body` on a string's unescaped content (unescaping into `tmpBuf` only when needed).
    @inline(__always) func withUnescaped<R>(_ s: borrowing JSONScanner, _ sp: JSONSpan,
                                                    _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if !sp.escaped { return body(s.bytes(sp)) }
        if !tmpBuf.isEmpty { tmpBuf.removeAll(keepingCapacity: true) }
        s.appendUnescaped(sp, to: &tmpBuf)
        return tmpBuf.withUnsafeBytes { body($0) }
    }

    // MARK: - Normalisation and checks

    func finishEvent() -> RejectReason? {
        if let p = pendings.first { return materialize(p) }
        if morePendings {
            return RejectReason(.badField, "more than \(Self.maxPendings) fields are invalid")
        }
        let ctxName = wasCloudEvent ? " (in data)" : ""
        // workflow, owner
        if let r = checkName(slots.workflow, "workflow", ctxName) { return r }
        if let r = checkName(slots.owner, "owner", ctxName) { return r }
        for i in 0..<event.tags.count {
            let t = event.tags[i]
            if Int(t.name.count) > Self.maxNameBytes {
                return RejectReason(.badField, "a tag name is \(t.name.count) bytes, over the \(Self.maxNameBytes)-byte limit\(ctxName)")
            }
            if Int(t.value.count) > Self.maxNameBytes {
                let name = string(t.name) ?? ""
                return RejectReason(.badField, "tags.\(name) is \(t.value.count) bytes, over the \(Self.maxNameBytes)-byte limit\(ctxName)")
            }
        }
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
        let tier = slots.serviceTier.isSet ? slots.serviceTier.value : (usagePresent ? usage.serviceTier : .absent)
        if let r = checkBound(model, "model", ctxName) { return r }
        if let r = checkBound(provider, "provider", ctxName) { return r }
        if let r = checkBound(tier, "service_tier", ctxName) { return r }
        for i in 0..<iterations.count {
            if let r = checkBound(iterations[i].model, "usage.iterations[].model", ctxName) { return r }
        }
        let anthropicProvider = !provider.isAbsent && withBytes(provider) { asciiCaseInsensitiveEquals($0, "anthropic") }
        var row = BlockRow.none
        if usagePresent { row = ProviderUsage.recognise(usage, anthropicProvider: anthropicProvider) }
        if provider.isAbsent {
            if let named = ProviderUsage.provider(of: row) {
                provider = appendStatic(named)
            } else if !model.isAbsent, let i = withBytes(model, { providerPrefixes.match($0) }) {
                provider = providerPrefixes.withProvider(i) { appendRaw($0.baseAddress!, $0.count) }
            }
        }
        event.provider = provider
        event.serviceTier = tier

        let canonical = slots.canonical
        if UsageAccounting.isUnrecognized(blockPresent: usagePresent, row: row, canonical: canonical) {
            // Never a silent zero: the request counts, with its cost unknown, and the block's keys are named.
            event.unrecognizedUsage = usageKeys.isAbsent ? appendStatic("") : usageKeys
        }
        if UsageAccounting.expandsIterations(usage, row: row, canonical: canonical) {
            // One contribution per model: the event's own (iterations naming none included) first, then one
            // per other model its iterations name, in the order they first appear.
            event.contributions.append(Contribution(model: model, tokens: ProviderUsage.anthropicCounts(usage)))
            var ownSum = TokenCounts()
            for it in iterations {
                let counts = ProviderUsage.anthropicCounts(it)
                if it.model.isAbsent || sameBytes(it.model, model) {
                    ownSum.add(counts)
                } else {
                    addContribution(it.model, counts)
                }
            }
            event.contributions[0].tokens = UsageAccounting.ownModelCounts(topLevel: event.contributions[0].tokens,
                                                                          iterations: ownSum)
        } else {
            let counts = UsageAccounting.applying(canonical, to: ProviderUsage.counts(usage, row))
            event.contributions.append(Contribution(model: model, tokens: counts))
        }
        for c in event.contributions {
            if let part = UsageAccounting.partExceedingWhole(c.tokens) { return partExceedsWholeReject(part, c) }
        }
        return nil
    }

    /// Adds `counts` to the contribution of `model`, creating it when the event has none for that model yet.
    func addContribution(_ model: ScratchString, _ counts: TokenCounts) {
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

    func sameBytes(_ a: ScratchString, _ b: ScratchString) -> Bool {
        if a.isAbsent || b.isAbsent { return a.isAbsent && b.isAbsent }
        if a.count != b.count { return false }
        if a.start == b.start { return true }
        return withScratchBytes { all in
            UnsafeRawBufferPointer(rebasing: all[Int(a.start)..<Int(a.start + a.count)])
                .elementsEqual(UnsafeRawBufferPointer(rebasing: all[Int(b.start)..<Int(b.start + b.count)]))
        }
    }
}
