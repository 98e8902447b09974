#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The field walk: reads an event object's keys (and a usage block's, and its detail objects') into
/// `slots`, `usage` and `iterations`, value by value, recording each field problem without allocating.
/// Which name of a field wins is its rank (`Ranked`); how a repeated key replaces an earlier one and how
/// problems become reject details is EventDecoder+Rejects.swift; what the counts mean is `ProviderUsage`
/// and `UsageAccounting`.
extension EventDecoder {
    // MARK: - Event fields

    static let topRank: UInt8 = 4

    func walkEvent(_ s: inout JSONScanner, base: UInt8, ctx: Ctx) throws(JSONError) {
        try s.beginObject()
        // Each walk (this one, `walkUsage`, `walkDetails`) spells out its key read: recognised in place,
        // else read and classified. One generic helper for the three was specialised but not inlined, a
        // call with two function arguments per key: 6% more instructions per event (callgrind).
        while true {
            let key: EventKey
            if let known = s.knownKey(Self.matchEventKey) {
                key = known
            } else {
                guard let k = try s.nextKey() else { break }
                if k.escaped {
                    if !keyBuf.isEmpty { keyBuf.removeAll(keepingCapacity: true) }
                    s.appendUnescaped(k, to: &keyBuf)
                    key = keyBuf.withUnsafeBytes { Self.classifyEventKey($0) }
                } else {
                    key = Self.classifyEventKey(s.bytes(k))
                }
            }
            // Not a `defer`: in a debug build that cost two allocations per event.
            let mark = pendingCount
            currentSlot = Self.slotID(1, ctx, UInt64(key.rawValue))
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
            case .specversion, .data, .subject:
                try readEnvelopeField(key, &s, ctx)
            case .attributes:
                if base == Self.topRank, try s.peekKind() == .object {
                    try walkEvent(&s, base: 0, ctx: ctx == .data ? .dataAttributes : .attributes)
                } else {
                    try s.skipValue()   // null, or OTLP's array form: not read
                }
            }
            if mark > 0 { dropIfRepeated(mark, Self.slotID(1, ctx, UInt64(key.rawValue))) }
        }
    }

    /// A string field; nil when null (absent) or not a string (recorded as `bad_field`). A string (nearly
    /// every value) is read and copied inline; anything else takes `readNonString`.
    @inline(__always)
    func readString(_ s: inout JSONScanner, _ at: Where) throws(JSONError) -> ScratchString? {
        if s.isNext(UInt8(ascii: "\"")) { return copy(s, try s.readStringAtQuote()) }
        return try readNonString(&s, at)
    }

    @inline(never)
    func readNonString(_ s: inout JSONScanner, _ at: Where) throws(JSONError) -> ScratchString? {
        let kind = try s.peekKind()
        if kind == .string { return copy(s, try s.readStringAtQuote()) }
        let start = s.position
        try s.skipValue()
        if kind != .null { fail(.badField, at, "must be a string", s, from: start) }
        return nil
    }

    func readID(_ s: inout JSONScanner, _ ctx: Ctx) throws(JSONError) -> ScratchString? {
        let kind = try s.peekKind()
        if kind == .number { return copy(s, try s.readNumber()) }
        return try readString(&s, Where(ctx, "id"))
    }

    func readType(_ s: inout JSONScanner, _ ctx: Ctx, _ rank: UInt8) throws(JSONError) {
        let kind = try s.peekKind()
        let start = s.position
        if kind == .string {
            let sp = try s.readStringAtQuote()
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

    func readStatus(_ s: inout JSONScanner, _ ctx: Ctx, _ rank: UInt8) throws(JSONError) {
        let kind = try s.peekKind()
        let start = s.position
        if kind == .string {
            let sp = try s.readStringAtQuote()
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

    func readTime(_ s: inout JSONScanner, _ at: Where, _ rank: UInt8, envelope: Bool) throws(JSONError) {
        let kind = try s.peekKind()
        let start = s.position
        var ms: EpochMillis? = nil
        switch kind {
        case .string:
            let sp = try s.readStringAtQuote()
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
            let (sp, plain) = try s.readNumberValue()
            if plain >= 0 {
                if plain <= Self.maxEpochMillis { ms = plain }
            } else if case .ok(let v) = NumberText.integer(s.bytes(sp), limit: Self.maxEpochMillis) {
                ms = v
            }
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
    ///
    /// A plain integer within the limit (nearly every count) is read inline, its value computed while its
    /// digits are scanned; anything else is read again from its first byte by `readAnyCount`.
    @inline(__always)
    func readCount(_ s: inout JSONScanner, _ at: Where, limit: Int64 = EventDecoder.maxTokenCount) throws(JSONError) -> Int64? {
        if s.isNextDigit() {
            let start = s.position
            let (_, plain) = try s.readNumberValue()
            if plain >= 0 && plain <= limit { return plain }
            s.rewind(to: start)
        }
        return try readAnyCount(&s, at, limit: limit)
    }

    @inline(never)
    func readAnyCount(_ s: inout JSONScanner, _ at: Where, limit: Int64) throws(JSONError) -> Int64? {
        let kind = try s.peekKind()
        let start = s.position
        var result = NumberText.IntegerResult.malformed
        switch kind {
        case .number:
            // A plain integer's value comes from the scan itself; other forms (`1e3`, `100.0`, `-0`) from
            // its text.
            let (sp, plain) = try s.readNumberValue()
            result = plain >= 0 ? (plain > limit ? .tooLarge : .ok(plain)) : NumberText.integer(s.bytes(sp), limit: limit)
        case .string:
            let sp = try s.readStringAtQuote()
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
    func readMoney(_ s: inout JSONScanner, _ at: Where) throws(JSONError) -> Money? {
        let kind = try s.peekKind()
        let start = s.position
        var femtos: Int128? = nil
        switch kind {
        case .number:
            let sp = try s.readNumber()
            femtos = NumberText.femtos(s.bytes(sp))
        case .string:
            let sp = try s.readStringAtQuote()
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

    func readTags(_ s: inout JSONScanner, _ ctx: Ctx) throws(JSONError) {
        let kind = try s.peekKind()
        if kind != .object {
            let start = s.position
            try s.skipValue()
            if kind != .null { fail(.badField, Where(ctx, "tags"), "must be an object of string to string", s, from: start) }
            return
        }
        try s.beginObject()
        while let k = try s.nextKey() {
            if tagFilter != nil {
                let wanted = withUnescaped(s, k) { p in isWantedTag(p) }
                if !wanted { try s.skipValue(); continue }
            }
            // A repeated tag name keeps its last value, so a problem is tied to the tag's name (hashed only
            // when there is a problem to tie or to drop).
            let mark = pendingCount
            let vkind = try s.peekKind()
            let start = s.position
            let value: ScratchString
            switch vkind {
            case .string:
                value = copy(s, try s.readStringAtQuote())
            case .number:
                value = copy(s, try s.readNumber())
            case .bool:
                value = try s.readBool() ? appendStatic("true") : appendStatic("false")
            case .null:
                try s.readNull()
                if mark > 0 { dropRepeated(tagSlot(s, k, ctx)) }
                continue
            case .object, .array:
                try s.skipValue()
                currentSlot = tagSlot(s, k, ctx)
                fail(.badField, Where(ctx, "tags"), "values must be strings", s, from: start, prefix: k)
                continue
            }
            if mark > 0 { dropRepeated(tagSlot(s, k, ctx)) }
            let name = copy(s, k)
            upsertTag(name, value)
        }
    }

    /// Whether a tag name is one of `tagFilter`'s (by length first, then its bytes).
    @inline(__always) func isWantedTag(_ p: UnsafeRawBufferPointer) -> Bool {
        guard let filter = tagFilter else { return true }
        return filter.withUnsafeBytes { all in
            var start = 0
            for end in tagFilterEnds {
                if end - start == p.count && bytesEqual(all.baseAddress! + start, p.baseAddress, p.count) { return true }
                start = end
            }
            return false
        }
    }

    func upsertTag(_ name: ScratchString, _ value: ScratchString) {
        let n = event.tags.count
        if n > 0 {
            let base = UnsafeRawPointer(scratchBase)
            for i in 0..<n {
                let t = event.tags[i].name
                if t.count == name.count && bytesEqual(base + Int(t.start), base + Int(name.start), Int(name.count)) {
                    event.tags[i].value = value
                    return
                }
            }
        }
        event.tags.append((name: name, value: value))
    }

    // MARK: - Usage blocks (1b, 1f)

    func readUsage(_ s: inout JSONScanner, _ ctx: Ctx, _ rank: UInt8) throws(JSONError) {
        let kind = try s.peekKind()
        guard kind == .object, rank >= usageRank else {
            let start = s.position
            try s.skipValue()
            if kind != .null && kind != .object { fail(.badField, Where(ctx, "usage"), "must be an object", s, from: start) }
            return
        }
        if !iterations.isEmpty { iterations.removeAll(keepingCapacity: true) }
        // The last block wins whole: what was wrong inside a block it replaces no longer matters.
        if !pendings.isEmpty { dropPendings { $0.at.block != .none } }
        let start = s.position
        // Walked straight into `usage` (a block is a few hundred bytes: no copy): a syntax error inside
        // it ends the whole message, and the rank was checked above, so the earlier block is not needed.
        usage = RawUsage()
        try walkUsage(&s, &usage, ctx, iteration: false)
        usageRank = rank
        usagePresent = true
        // Only a block that no row could read needs its key names (for the `unrecognized_usage` alert).
        usageKeys = ProviderUsage.recognise(usage, anthropicProvider: false) == .none
            ? blockKeyNames(UnsafeRawBufferPointer(rebasing: s.buffer[start..<s.position])) : .absent
    }

    /// The most bytes of key names an `unrecognized_usage` alert quotes from a block.
    public static let maxBlockKeysBytes = 200

    /// The top-level key names of a usage block (`a, b, c`), at most `maxBlockKeysBytes` bytes, a name that
    /// does not fit replaced by `...`; the block is already known to be valid JSON.
    func blockKeyNames(_ block: UnsafeRawBufferPointer) -> ScratchString {
        let start = scratchCount
        var inner = JSONScanner(block, maxDepth: Self.maxNestingDepth)
        do throws(JSONError) {
            try inner.beginObject()
            var first = true
            while let k = try inner.nextKey() {
                try inner.skipValue()
                let name = withUnescaped(inner, k) { p -> Bool in
                    let separator = first ? 0 : 2
                    guard scratchCount - start + separator + p.count <= Self.maxBlockKeysBytes else { return false }
                    if !first { _ = appendStatic(", ") }
                    if p.count > 0 { _ = appendRaw(p.baseAddress!, p.count) }
                    return true
                }
                if !name {
                    _ = appendStatic(first ? "..." : ", ...")
                    break
                }
                first = false
            }
        } catch {
            // Not reached: the block was read once already.
        }
        return ScratchString(start: Int32(truncatingIfNeeded: start), count: Int32(truncatingIfNeeded: scratchCount - start))
    }

    func walkUsage(_ s: inout JSONScanner, _ u: inout RawUsage, _ ctx: Ctx, iteration: Bool) throws(JSONError) {
        let block: Block = iteration ? .iteration : .usage
        try s.beginObject()
        while true {
            let key: UsageKey
            if let known = s.knownKey(Self.matchUsageKey) {
                key = known
            } else {
                guard let k = try s.nextKey() else { break }
                if k.escaped {
                    if !keyBuf.isEmpty { keyBuf.removeAll(keepingCapacity: true) }
                    s.appendUnescaped(k, to: &keyBuf)
                    key = keyBuf.withUnsafeBytes { Self.classifyUsageKey($0) }
                } else {
                    key = Self.classifyUsageKey(s.bytes(k))
                }
            }
            let slot = iteration || key == .unknown ? 0 : Self.slotID(2, ctx, UInt64(key.rawValue))
            let mark = pendingCount
            currentSlot = slot
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
            case .converseInput:
                if let v = try readCount(&s, Where(ctx, block, "inputTokens")) { u.converseInput = v; u.has.insert(.converse) }
            case .converseOutput:
                if let v = try readCount(&s, Where(ctx, block, "outputTokens")) { u.converseOutput = v; u.has.insert(.converse) }
            case .converseCacheRead:
                if let v = try readCount(&s, Where(ctx, block, "cacheReadInputTokens")) { u.converseCacheRead = v; u.has.insert(.converse) }
            case .converseCacheWrite:
                if let v = try readCount(&s, Where(ctx, block, "cacheWriteInputTokens")) { u.converseCacheWrite = v; u.has.insert(.converse) }
            case .totalInputTokens:
                if let v = try readCount(&s, Where(ctx, block, "total_input_tokens")) { u.iInput = v; u.has.insert(.interactions) }
            case .totalOutputTokens:
                if let v = try readCount(&s, Where(ctx, block, "total_output_tokens")) { u.iOutput = v; u.has.insert(.interactions) }
            case .totalCachedTokens:
                if let v = try readCount(&s, Where(ctx, block, "total_cached_tokens")) { u.iCached = v; u.has.insert(.interactions) }
            case .totalToolUseTokens:
                if let v = try readCount(&s, Where(ctx, block, "total_tool_use_tokens")) { u.iToolUse = v; u.has.insert(.interactions) }
            case .totalThoughtTokens:
                if let v = try readCount(&s, Where(ctx, block, "total_thought_tokens")) { u.iThought = v; u.has.insert(.interactions) }
            case .billedUnits:
                try walkDetails(&s, &u, ctx, block, .billedUnits)
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
                if try s.peekKind() == .string { u.serviceTier = copy(s, try s.readStringAtQuote()) } else { try s.skipValue() }
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
            // (A `continue` above only skips this where there is nothing to drop.)
            if mark > 0 { dropIfRepeated(mark, slot) }
        }
    }

    func walkDetails(_ s: inout JSONScanner, _ u: inout RawUsage, _ ctx: Ctx, _ block: Block,
                     _ which: DetailsOf) throws(JSONError) {
        let kind = try s.peekKind()
        guard kind == .object else {
            let start = s.position
            try s.skipValue()
            if kind != .null { fail(.badField, Where(ctx, block, which.name), "must be an object", s, from: start) }
            return
        }
        if which == .cacheCreation { u.has.insert(.cacheCreationObject) }
        if which == .billedUnits { u.has.insert(.billedUnits) }
        try s.beginObject()
        while true {
            let key: DetailKey
            if let known = s.knownKey(Self.matchDetailKey) {
                key = known
            } else {
                guard let k = try s.nextKey() else { break }
                if k.escaped {
                    if !keyBuf.isEmpty { keyBuf.removeAll(keepingCapacity: true) }
                    s.appendUnescaped(k, to: &keyBuf)
                    key = keyBuf.withUnsafeBytes { Self.classifyDetailKey($0) }
                } else {
                    key = Self.classifyDetailKey(s.bytes(k))
                }
            }
            let slot = block == .iteration || key == .unknown ? 0 : Self.slotID(3, ctx, UInt64(which.rawValue), UInt64(key.rawValue))
            let mark = pendingCount
            currentSlot = slot
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
            case (.billedUnits, .inputTokens):
                if let v = try readCount(&s, Where(ctx, block, "billed_units.input_tokens")) { u.billedInput = v }
            case (.billedUnits, .outputTokens):
                if let v = try readCount(&s, Where(ctx, block, "billed_units.output_tokens")) { u.billedOutput = v }
            default:
                try s.skipValue()
            }
            if mark > 0 { dropIfRepeated(mark, slot) }
        }
    }
}

enum DetailsOf: UInt8 {
    case prompt, completion, input, output, cacheCreation, billedUnits
    var name: StaticString {
        switch self {
        case .billedUnits: "billed_units"
        case .prompt: "prompt_tokens_details"
        case .completion: "completion_tokens_details"
        case .input: "input_tokens_details"
        case .output: "output_tokens_details"
        case .cacheCreation: "cache_creation"
        }
    }
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

extension Slots {
    /// The canonical token fields the event gave itself (under any of their names), nil where absent.
    @inline(__always) var canonical: CanonicalTokens {
        CanonicalTokens(input: input.isSet ? input.value : nil, cacheRead: cacheRead.isSet ? cacheRead.value : nil,
                        cacheWrite: cacheWrite.isSet ? cacheWrite.value : nil, output: output.isSet ? output.value : nil,
                        reasoning: reasoning.isSet ? reasoning.value : nil)
    }
}

// MARK: - Byte helpers

/// Whether the bytes at `p` (`avail` of them readable) are `key` followed by `":`: a key written plainly,
/// its value next (the in-place recognition of EventKeyTables.swift's `match...` functions).
@inline(__always)
func knownKey(_ p: UnsafePointer<UInt8>, _ avail: Int, _ key: StaticString) -> Bool {
    let n = key.utf8CodeUnitCount
    return avail >= n + 2 && p[n] == UInt8(ascii: "\"") && p[n + 1] == UInt8(ascii: ":")
        && keyEquals(UnsafeRawBufferPointer(start: p, count: n), key)
}

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

/// The `count` bytes at `a` and `b` are equal (word compares; `b` may be nil only when `count` is 0).
@inline(__always)
func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer?, _ count: Int) -> Bool {
    guard count > 0, let b else { return true }
    return memcmpBytes(a, b, count)
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
