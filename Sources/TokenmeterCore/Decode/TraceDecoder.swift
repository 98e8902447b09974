#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns one message of an OTLP trace topic (an `ExportTraceServiceRequest`, as the OpenTelemetry
/// Collector's Kafka exporter writes it, in `otlp_proto` or `otlp_json`) into one event per LLM span, each
/// settled by the same rules as a JSON event: the span's attributes fill the decoder's field slots under
/// their GenAI names (the same key table and ranks as contract 1a), and `EventDecoder.finishEvent` does the
/// rest (bounds, provider from the model name, usage accounting, parts larger than their whole). So a span
/// and the JSON event with the same attributes count the same.
///
/// Two passes over each message: `check` walks all of it and says whether it is readable (a malformed
/// protobuf or JSON, a known field of the wrong type: the whole message is a dead letter, nothing of it
/// counted); only then `forEachSpan` hands over its spans one by one. A span is:
/// - `ignored` when it carries no `gen_ai.usage.*` token attribute (HTTP, database, agent-step spans);
/// - `rejected` (with a reason, like a rejected event) when its usage is bad (a negative or absurd count, a
///   part larger than its whole), no attribute names its workflow or owner (`OTLPSettings`), a GenAI name
///   has a value of the wrong type, a string is over 256 bytes, or its trace or span id is not 16 or 8
///   bytes; the rest of the message still counts;
/// - an `event` otherwise: id = trace id hex + span id hex (a Collector's retry of the same spans is counted
///   once), time = the span's end time (none: the Kafka timestamp), status error when the span's status
///   code is 2 (`STATUS_CODE_ERROR`).
///
/// Per span it allocates nothing once its buffers have grown (rejects aside: their reason is text).
/// Not thread-safe: one per polling thread, like `EventDecoder`.
public final class TraceDecoder {
    /// Holds each span's event (read it with `events.withEvent`) and the rules that settle it.
    public let events: EventDecoder
    /// The Collector's Kafka exporter writes up to 1 MB by default (`producer.max_message_bytes`); a broker
    /// may allow more. Larger messages are dead letters (`too_large`).
    public static let maxMessageBytes = 16 << 20

    public enum SpanResult: Sendable, Equatable {
        /// `events.event` holds the span's event.
        case event
        case ignored
        case rejected(RejectReason)
    }

    // The mapping, as bytes.
    let workflowNames: [[UInt8]]
    let ownerNames: [[UInt8]]
    let tagNames: [[UInt8]]
    let tagAttributes: [[UInt8]]
    let workflowList: String
    let ownerList: String

    // Per span.
    @exclusivity(unchecked) var tagValues: [ScratchString]
    @exclusivity(unchecked) var tagRanks: [UInt8]
    @exclusivity(unchecked) var hasUsage = false
    @exclusivity(unchecked) var problem: RejectReason? = nil
    /// A JSON string's unescaped bytes, or an integer's digits.
    @exclusivity(unchecked) var valueBuf: [UInt8] = []
    @exclusivity(unchecked) var keyBuf: [UInt8] = []
    /// An integer tag value's digits.
    @exclusivity(unchecked) var digitBuf: [UInt8] = []
    /// Why the JSON walk stopped, when the message is JSON but not an OTLP trace request.
    @exclusivity(unchecked) var shapeProblem: (StaticString, Int)? = nil

    public init(settings: OTLPSettings = OTLPSettings(), providerPrefixes: ProviderPrefixes = ProviderPrefixes()) {
        events = EventDecoder(providerPrefixes: providerPrefixes)
        workflowNames = settings.workflowAttributes.map { Array($0.utf8) }
        ownerNames = settings.ownerAttributes.map { Array($0.utf8) }
        tagNames = settings.tags.map { Array($0.key.utf8) }
        tagAttributes = settings.tags.map { Array($0.value.utf8) }
        workflowList = settings.workflowAttributes.joined(separator: ", ")
        ownerList = settings.ownerAttributes.joined(separator: ", ")
        tagValues = Array(repeating: .absent, count: settings.tags.count)
        tagRanks = Array(repeating: 0, count: settings.tags.count)
        valueBuf.reserveCapacity(256)
        keyBuf.reserveCapacity(64)
        digitBuf.reserveCapacity(24)
    }

    // MARK: - Entry points

    /// Nil when the message is readable as an `ExportTraceServiceRequest` in `format`; otherwise why it
    /// is not (the message is then a dead letter as a whole).
    public func check(_ bytes: UnsafeRawBufferPointer, format: InputFormat) -> RejectReason? {
        guard bytes.count <= Self.maxMessageBytes else {
            return RejectReason(.tooLarge, "message is \(bytes.count) bytes, over the \(Self.maxMessageBytes >> 20) MiB limit of a trace message")
        }
        switch format {
        case .otlpProto:
            do throws(ProtoReader.Malformed) {
                try walkProto(bytes, emit: { _ in }, apply: false)
            } catch {
                return RejectReason(error.utf8 ? .invalidUTF8 : .invalidProtobuf, "\(error.problem) at byte \(error.offset)")
            }
        case .otlpJSON:
            guard bytes.count > 0 else { return RejectReason(.invalidJSON, "empty message") }
            do throws(TraceJSONError) {
                try walkJSON(bytes, emit: { _ in }, apply: false)
            } catch {
                switch error {
                case .syntax(let e): return EventDecoder.syntaxReject(e, "")
                case .notObject(let kind): return RejectReason(.notObject, "message is \(kind.name), not a JSON object")
                case .shape(let problem, let offset):
                    return RejectReason(.badField, "not an OTLP trace request: \(problem) at byte \(offset)")
                }
            }
        case .json:
            preconditionFailure("a JSON event topic has no trace messages")
        }
        return nil
    }

    /// Calls `body` once per span of a message `check` found readable, in message order. While `body` runs
    /// with `.event`, `events` holds the span's event.
    public func forEachSpan(_ bytes: UnsafeRawBufferPointer, format: InputFormat, _ body: (SpanResult) -> Void) {
        switch format {
        case .otlpProto:
            do throws(ProtoReader.Malformed) { try walkProto(bytes, emit: body, apply: true) } catch {
                // Not reached: `check` read the same bytes.
            }
        case .otlpJSON:
            do throws(TraceJSONError) { try walkJSON(bytes, emit: body, apply: true) } catch {
                // Not reached: `check` read the same bytes.
            }
        case .json:
            preconditionFailure("a JSON event topic has no trace messages")
        }
    }

    /// Convenience for tests and tools: the results of every span, with each event's canonical form.
    public func decodeAll(_ bytes: [UInt8], format: InputFormat) -> (unreadable: RejectReason?, spans: [SpanSummary]) {
        bytes.withUnsafeBytes { b in
            if let r = check(b, format: format) { return (r, []) }
            var out: [SpanSummary] = []
            forEachSpan(b, format: format) { result in
                switch result {
                case .ignored: out.append(SpanSummary(result: .ignored))
                case .rejected(let r): out.append(SpanSummary(result: .rejected(r)))
                case .event:
                    let e = events
                    var s = SpanSummary(result: .event)
                    s.id = e.string(e.event.id)
                    s.timestamp = e.event.timestamp
                    s.workflow = e.string(e.event.workflow)
                    s.owner = e.string(e.event.owner)
                    s.provider = e.string(e.event.provider)
                    s.isError = e.event.isError
                    s.model = e.event.contributions.first.flatMap { e.string($0.model) }
                    s.tokens = e.event.contributions.first?.tokens ?? TokenCounts()
                    s.tags = e.event.tags.map { SpanSummary.Tag(name: e.string($0.name) ?? "", value: e.string($0.value) ?? "") }
                    out.append(s)
                }
            }
            return (nil, out)
        }
    }

    // MARK: - One span

    /// Starts a span: the event, its scratch bytes and its field slots are emptied.
    func beginSpan() {
        events.event.reset()
        events.scratchCount = 0
        events.resetFields()
        hasUsage = false
        problem = nil
        for i in tagRanks.indices { tagRanks[i] = 0; tagValues[i] = .absent }
    }

    /// One attribute of the span (`resource` false) or of its resource. Under one name, a span's own
    /// attribute ranks above its resource's; among a list's names, an earlier name ranks above a later one.
    func attribute(_ key: UnsafeRawBufferPointer, _ value: AttributeValue, resource: Bool) {
        let side: UInt8 = resource ? 0 : 1
        if !resource { genAI(key, value) }
        if case .string(let text) = value, text.count > 0 {
            if let i = position(of: key, in: workflowNames) {
                let rank = UInt8(workflowNames.count - i) * 2 + side
                if rank >= events.slots.workflow.rank { events.slots.workflow.put(copy(text), rank) }
            }
            if let i = position(of: key, in: ownerNames) {
                let rank = UInt8(ownerNames.count - i) * 2 + side
                if rank >= events.slots.owner.rank { events.slots.owner.put(copy(text), rank) }
            }
        }
        if !tagAttributes.isEmpty {
            for j in 0..<tagAttributes.count where Self.equal(tagAttributes[j], key) {
                let rank = side + 1
                if rank < tagRanks[j] { continue }
                let text: ScratchString
                switch value {
                case .string(let t): text = copy(t)
                case .int(let v): text = copyDecimal(v)
                case .intText(let t): text = copy(t)
                case .double(let v): text = copyDouble(v)
                case .bool(let b): text = b ? events.appendStatic("true") : events.appendStatic("false")
                case .other, .escapedString: continue
                }
                tagValues[j] = text
                tagRanks[j] = rank
            }
        }
    }

    /// The GenAI names of contract 1a, by the event decoder's own key table and ranks; every other name is
    /// not ours. Only a span's own attributes are read here (a resource describes a service, not a call).
    @inline(__always)
    private func genAI(_ key: UnsafeRawBufferPointer, _ value: AttributeValue) {
        // Every GenAI name starts with `gen_ai.`: one compare keeps most attributes out of the key table.
        guard key.count > 7, key.loadUnaligned(as: UInt32.self) == 0x5F_6E_65_67 else { return }   // "gen_"
        let slots = EventDecoder.classifyEventKey(key)
        switch slots {
        case .otelResponseModel: if let v = name(key, value) { events.slots.model.put(v, 2) }
        case .otelRequestModel: if let v = name(key, value) { events.slots.model.put(v, 1) }
        case .otelProviderName: if let v = name(key, value) { events.slots.provider.put(v, 2) }
        case .otelSystem: if let v = name(key, value) { events.slots.provider.put(v, 1) }
        case .otelInput: if let v = count(key, value) { events.slots.input.put(v, 2) }
        case .otelOutput: if let v = count(key, value) { events.slots.output.put(v, 2) }
        case .otelCacheRead: if let v = count(key, value) { events.slots.cacheRead.put(v, 2) }
        case .otelCacheWrite: if let v = count(key, value) { events.slots.cacheWrite.put(v, 2) }
        case .otelReasoning: if let v = count(key, value) { events.slots.reasoning.put(v, 2) }
        case .otelCacheReadAlt: if let v = count(key, value) { events.slots.cacheRead.put(v, 1) }
        case .otelCacheWriteAlt: if let v = count(key, value) { events.slots.cacheWrite.put(v, 1) }
        case .otelReasoningAlt: if let v = count(key, value) { events.slots.reasoning.put(v, 1) }
        case .otelPromptTokens: if let v = count(key, value) { events.slots.input.put(v, 1) }
        case .otelCompletionTokens: if let v = count(key, value) { events.slots.output.put(v, 1) }
        default: break
        }
    }

    /// A model or provider: a string (bounded later, by `finishEvent`).
    private func name(_ key: UnsafeRawBufferPointer, _ value: AttributeValue) -> ScratchString? {
        if case .string(let text) = value { return copy(text) }
        note(.badField, key, "must be a string")
        return nil
    }

    /// A token count: an integer (or an integral double, or a string of digits) from 0 to 10^9; anything
    /// else rejects the span (`bad_token_count`), as it rejects a JSON event.
    private func count(_ key: UnsafeRawBufferPointer, _ value: AttributeValue) -> Int64? {
        hasUsage = true
        let result: NumberText.IntegerResult
        switch value {
        case .int(let v):
            result = v < 0 ? .negative : v > EventDecoder.maxTokenCount ? .tooLarge : .ok(v)
        case .intText(let t), .string(let t):
            if case .string = value, !NumberText.isDigitString(t) { result = .malformed } else {
                result = NumberText.integer(t, limit: EventDecoder.maxTokenCount)
            }
        case .double(let d):
            if d < 0 { result = .negative } else if d > Double(EventDecoder.maxTokenCount) { result = .tooLarge }
            else if d.rounded(.towardZero) != d { result = .fractional } else { result = .ok(Int64(d)) }
        case .bool, .other, .escapedString:
            result = .malformed
        }
        switch result {
        case .ok(let v): return v
        case .tooLarge: note(.badTokenCount, key, "is absurd (over 10^9)")
        case .negative, .fractional, .malformed: note(.badTokenCount, key, "must be a non-negative integer")
        }
        return nil
    }

    /// The span's first problem (the reason it is rejected).
    private func note(_ code: RejectReason.Code, _ key: UnsafeRawBufferPointer, _ problem: String) {
        guard self.problem == nil else { return }
        self.problem = RejectReason(code, "span attribute \(String(decoding: key.prefix(EventDecoder.maxNameBytes), as: UTF8.self)) \(problem)")
    }

    /// Ends a span: nil when it is not an LLM span (no token attribute), else settles its event.
    /// `traceID`/`spanID` are raw bytes (`hex` false) or hex text (`hex` true); `endNanos` 0 means none.
    func finishSpan(traceID: UnsafeRawBufferPointer, spanID: UnsafeRawBufferPointer, hex: Bool, endNanos: UInt64,
                    statusCode: Int64) -> SpanResult {
        guard hasUsage else { return .ignored }
        if let problem { return .rejected(problem) }
        guard let id = spanIdentity(traceID, spanID, hex: hex) else {
            return .rejected(RejectReason(.badField, hex
                ? "traceId and spanId must be 32 and 16 hex digits, not all zeros (got \(traceID.count) and \(spanID.count) characters)"
                : "trace_id and span_id must be 16 and 8 bytes, not all zeros (got \(traceID.count) and \(spanID.count))"))
        }
        events.slots.id.put(id, 7)
        if endNanos > 0 {
            let millis = endNanos / 1_000_000
            guard millis <= UInt64(EventDecoder.maxEpochMillis) else {
                return .rejected(RejectReason(.badTimestamp, "span end time \(endNanos) ns is after 9999"))
            }
            events.slots.timestamp.put(Int64(millis), 7)
        }
        if statusCode == 2 { events.slots.isError.put(true, 7) }
        if !events.slots.workflow.isSet {
            return .rejected(RejectReason(.missingField, "workflow: no span or resource attribute of otlp.workflow_attributes (\(workflowList))"))
        }
        if !events.slots.owner.isSet {
            return .rejected(RejectReason(.missingField, "owner: no span or resource attribute of otlp.owner_attributes (\(ownerList))"))
        }
        for j in 0..<tagNames.count where tagRanks[j] > 0 {
            let name = tagNames[j].withUnsafeBytes { events.appendRaw($0.baseAddress!, $0.count) }
            events.event.tags.append((name: name, value: tagValues[j]))
        }
        if let r = events.finishEvent() { return .rejected(r) }
        return .event
    }

    /// The event id: 32 + 16 lowercase hex digits, written to scratch. Nil when a length is wrong, a hex
    /// digit is not one, or an id is all zeros (invalid in OpenTelemetry).
    private func spanIdentity(_ trace: UnsafeRawBufferPointer, _ span: UnsafeRawBufferPointer, hex: Bool) -> ScratchString? {
        let (traceLength, spanLength) = hex ? (32, 16) : (16, 8)
        guard trace.count == traceLength, span.count == spanLength else { return nil }
        let start = events.scratchCount
        if start + 48 > events.scratchCapacity { events.growScratch(start + 48) }
        let out = events.scratchBase + start
        var traceNonZero = false, spanNonZero = false
        var i = 0
        guard Self.writeHex(trace, hex: hex, to: out, at: &i, nonZero: &traceNonZero),
              Self.writeHex(span, hex: hex, to: out, at: &i, nonZero: &spanNonZero), traceNonZero, spanNonZero else { return nil }
        events.scratchCount = start + 48
        return ScratchString(start: Int32(start), count: 48)
    }

    /// Writes `part` as lowercase hex at `out + at`: hex text is checked and lowered, raw bytes are encoded.
    @inline(__always)
    private static func writeHex(_ part: UnsafeRawBufferPointer, hex: Bool, to out: UnsafeMutableRawPointer,
                                 at i: inout Int, nonZero: inout Bool) -> Bool {
        let digits: StaticString = "0123456789abcdef"
        if hex {
            for c in part {
                var d = c
                if d >= 65 && d <= 70 { d += 32 }
                guard (d >= 48 && d <= 57) || (d >= 97 && d <= 102) else { return false }
                if d != 48 { nonZero = true }
                out.storeBytes(of: d, toByteOffset: i, as: UInt8.self)
                i += 1
            }
        } else {
            for b in part {
                if b != 0 { nonZero = true }
                out.storeBytes(of: digits.utf8Start[Int(b >> 4)], toByteOffset: i, as: UInt8.self)
                out.storeBytes(of: digits.utf8Start[Int(b & 15)], toByteOffset: i + 1, as: UInt8.self)
                i += 2
            }
        }
        return true
    }

    // MARK: - Helpers

    @inline(__always)
    func copy(_ text: UnsafeRawBufferPointer) -> ScratchString {
        text.count == 0 ? events.appendStatic("") : events.appendRaw(text.baseAddress!, text.count)
    }

    func copyDecimal(_ v: Int64) -> ScratchString {
        if !digitBuf.isEmpty { digitBuf.removeAll(keepingCapacity: true) }
        var magnitude = v.magnitude
        repeat {
            digitBuf.append(UInt8(48 + magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        if v < 0 { digitBuf.append(45) }
        digitBuf.reverse()
        return digitBuf.withUnsafeBytes { events.appendRaw($0.baseAddress!, $0.count) }
    }

    /// A double tag value as text (rare: allocates).
    func copyDouble(_ v: Double) -> ScratchString {
        var text = v.rounded(.towardZero) == v && abs(v) < 1e15 ? String(Int64(v)) : String(v)
        return text.withUTF8 { copy(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    func position(of key: UnsafeRawBufferPointer, in names: [[UInt8]]) -> Int? {
        for i in 0..<names.count where Self.equal(names[i], key) { return i }
        return nil
    }

    @inline(__always)
    static func equal(_ name: [UInt8], _ key: UnsafeRawBufferPointer) -> Bool {
        guard name.count == key.count else { return false }
        if key.count == 0 { return true }
        return name.withUnsafeBytes { memcmp($0.baseAddress!, key.baseAddress!, key.count) == 0 }
    }
}

/// One attribute value, from either encoding. Strings are valid only while the attribute is applied.
enum AttributeValue {
    case string(UnsafeRawBufferPointer)
    case int(Int64)
    /// A JSON `intValue`: decimal text (a string, as the protobuf JSON mapping writes 64-bit integers, or
    /// a number).
    case intText(UnsafeRawBufferPointer)
    case double(Double)
    case bool(Bool)
    /// An array, a key-value list, bytes, or no value: nothing tokenmeter reads.
    case other
    /// A JSON string with escapes, unescaped into the decoder's `valueBuf` (applied from there).
    case escapedString
}

/// A span's result in plain values (tests and tools).
public struct SpanSummary: Sendable, Equatable {
    public var result: TraceDecoder.SpanResult
    public var id: String? = nil
    public var timestamp: EpochMillis? = nil
    public var workflow: String? = nil
    public var owner: String? = nil
    public var model: String? = nil
    public var provider: String? = nil
    public var isError = false
    public var tokens = TokenCounts()
    public var tags: [Tag] = []
    public struct Tag: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    init(result: TraceDecoder.SpanResult) { self.result = result }
}
