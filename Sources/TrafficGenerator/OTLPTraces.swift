import TokenmeterCore

/// OpenTelemetry traces as the Collector's Kafka exporter writes them, built from plain values: an
/// `ExportTraceServiceRequest` in protobuf (`otlp_proto`) or in OTLP/JSON (`otlp_json`). Written for
/// `tokenmeter produce --format otlp_*`, the demo and the tests; independent of tokenmeter's reader
/// (`TraceDecoder`), which is what makes it a check of that reader.
public enum OTLPValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
}

public struct OTLPSpan: Sendable, Equatable {
    public var traceID: [UInt8]
    public var spanID: [UInt8]
    public var name: String
    public var startNanos: UInt64
    public var endNanos: UInt64
    public var attributes: [(String, OTLPValue)]
    /// 0 unset, 1 ok, 2 error.
    public var statusCode: Int

    public init(traceID: [UInt8], spanID: [UInt8], name: String, startNanos: UInt64, endNanos: UInt64,
                attributes: [(String, OTLPValue)], statusCode: Int = 0) {
        self.traceID = traceID; self.spanID = spanID; self.name = name; self.startNanos = startNanos
        self.endNanos = endNanos; self.attributes = attributes; self.statusCode = statusCode
    }

    public static func == (a: OTLPSpan, b: OTLPSpan) -> Bool {
        a.traceID == b.traceID && a.spanID == b.spanID && a.name == b.name && a.startNanos == b.startNanos
            && a.endNanos == b.endNanos && a.statusCode == b.statusCode
            && a.attributes.map(\.0) == b.attributes.map(\.0) && a.attributes.map(\.1) == b.attributes.map(\.1)
    }
}

public struct OTLPResourceSpans: Sendable, Equatable {
    public var resource: [(String, OTLPValue)]
    public var scope: String
    public var spans: [OTLPSpan]

    public init(resource: [(String, OTLPValue)], scope: String = "tokenmeter.produce", spans: [OTLPSpan]) {
        self.resource = resource; self.scope = scope; self.spans = spans
    }

    public static func == (a: OTLPResourceSpans, b: OTLPResourceSpans) -> Bool {
        a.scope == b.scope && a.spans == b.spans && a.resource.map(\.0) == b.resource.map(\.0)
            && a.resource.map(\.1) == b.resource.map(\.1)
    }
}

public enum OTLPTraces {
    // MARK: protobuf

    /// The `ExportTraceServiceRequest` bytes.
    public static func proto(_ request: [OTLPResourceSpans]) -> [UInt8] {
        var out: [UInt8] = []
        for rs in request { message(1, resourceSpans(rs), into: &out) }
        return out
    }

    static func resourceSpans(_ rs: OTLPResourceSpans) -> [UInt8] {
        var resource: [UInt8] = []
        for (k, v) in rs.resource { message(1, keyValue(k, v), into: &resource) }
        var scope: [UInt8] = []
        bytes(1, Array(rs.scope.utf8), into: &scope)
        var scopeSpans: [UInt8] = []
        message(1, scope, into: &scopeSpans)
        for span in rs.spans { message(2, spanBytes(span), into: &scopeSpans) }
        var out: [UInt8] = []
        message(1, resource, into: &out)
        message(2, scopeSpans, into: &out)
        return out
    }

    static func spanBytes(_ s: OTLPSpan) -> [UInt8] {
        var out: [UInt8] = []
        bytes(1, s.traceID, into: &out)
        bytes(2, s.spanID, into: &out)
        bytes(5, Array(s.name.utf8), into: &out)
        tag(6, 0, into: &out); varint(3, into: &out)   // SPAN_KIND_CLIENT
        tag(7, 1, into: &out); fixed64(s.startNanos, into: &out)
        tag(8, 1, into: &out); fixed64(s.endNanos, into: &out)
        for (k, v) in s.attributes { message(9, keyValue(k, v), into: &out) }
        if s.statusCode != 0 {
            var status: [UInt8] = []
            tag(3, 0, into: &status); varint(UInt64(s.statusCode), into: &status)
            message(15, status, into: &out)
        }
        return out
    }

    static func keyValue(_ key: String, _ value: OTLPValue) -> [UInt8] {
        var any: [UInt8] = []
        switch value {
        case .string(let s): bytes(1, Array(s.utf8), into: &any)
        case .bool(let b): tag(2, 0, into: &any); varint(b ? 1 : 0, into: &any)
        case .int(let i): tag(3, 0, into: &any); varint(UInt64(bitPattern: i), into: &any)
        case .double(let d): tag(4, 1, into: &any); fixed64(d.bitPattern, into: &any)
        }
        var out: [UInt8] = []
        bytes(1, Array(key.utf8), into: &out)
        message(2, any, into: &out)
        return out
    }

    static func tag(_ field: UInt64, _ wire: UInt64, into out: inout [UInt8]) { varint(field << 3 | wire, into: &out) }

    static func varint(_ v: UInt64, into out: inout [UInt8]) {
        var v = v
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    static func fixed64(_ v: UInt64, into out: inout [UInt8]) {
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    static func bytes(_ field: UInt64, _ b: [UInt8], into out: inout [UInt8]) {
        tag(field, 2, into: &out); varint(UInt64(b.count), into: &out); out += b
    }

    static func message(_ field: UInt64, _ b: [UInt8], into out: inout [UInt8]) { bytes(field, b, into: &out) }

    // MARK: OTLP/JSON

    /// The request as one line of OTLP/JSON: camelCase keys, hex ids, 64-bit integers as strings.
    public static func json(_ request: [OTLPResourceSpans]) -> String {
        var out = #"{"resourceSpans":["#
        for (i, rs) in request.enumerated() {
            if i > 0 { out += "," }
            out += #"{"resource":{"attributes":"# + attributes(rs.resource) + "}"
            out += #","scopeSpans":[{"scope":{"name":"# + JSONText.quote(rs.scope) + #"},"spans":["#
            for (j, s) in rs.spans.enumerated() {
                if j > 0 { out += "," }
                out += #"{"traceId":""# + hex(s.traceID) + #"","spanId":""# + hex(s.spanID) + #"","name":"#
                    + JSONText.quote(s.name) + #","kind":3,"startTimeUnixNano":""# + String(s.startNanos)
                    + #"","endTimeUnixNano":""# + String(s.endNanos) + #"","attributes":"# + attributes(s.attributes)
                    + #","status":{"# + (s.statusCode != 0 ? #""code":\#(s.statusCode)"# : "") + "}}"
            }
            out += "]}]}"
        }
        return out + "]}"
    }

    static func attributes(_ list: [(String, OTLPValue)]) -> String {
        "[" + list.map { k, v in
            let value: String
            switch v {
            case .string(let s): value = #"{"stringValue":"# + JSONText.quote(s) + "}"
            case .int(let i): value = #"{"intValue":""# + String(i) + #""}"#
            case .double(let d): value = #"{"doubleValue":"# + String(d) + "}"
            case .bool(let b): value = #"{"boolValue":"# + (b ? "true" : "false") + "}"
            }
            return #"{"key":"# + JSONText.quote(k) + #","value":"# + value + "}"
        }.joined(separator: ",") + "]"
    }

    public static func hex(_ b: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(b.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    // MARK: From events

    /// A stable id of `n` bytes from a text (FNV-1a, varied per 8 bytes): the same event id always gives the
    /// same trace and span ids, so a resent event is the same span, as a Collector's retry is.
    public static func stableID(_ text: String, bytes n: Int, salt: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        var round: UInt64 = 0
        while out.count < n {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ (salt &* 0x9E37_79B9_7F4A_7C15) ^ round
            for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            for i in 0..<8 where out.count < n { out.append(UInt8(truncatingIfNeeded: h >> (8 * UInt64(i)))) }
            round += 1
        }
        if out.allSatisfy({ $0 == 0 }) { out[0] = 1 }
        return out
    }

    /// The GenAI span attributes of one billed call, by the names tokenmeter reads (contract 1a's OTel names).
    public static func usageAttributes(workflow: String?, model: String?, provider: String?, tokens: TokenCounts)
        -> [(String, OTLPValue)] {
        var a: [(String, OTLPValue)] = [("gen_ai.operation.name", .string("chat"))]
        if let workflow { a.append(("gen_ai.agent.name", .string(workflow))) }
        if let provider { a.append(("gen_ai.system", .string(provider))) }
        if let model {
            a.append(("gen_ai.request.model", .string(model)))
            a.append(("gen_ai.response.model", .string(model)))
        }
        a.append(("gen_ai.usage.input_tokens", .int(tokens.input)))
        a.append(("gen_ai.usage.output_tokens", .int(tokens.output)))
        if tokens.cacheRead > 0 { a.append(("gen_ai.usage.cache_read.input_tokens", .int(tokens.cacheRead))) }
        if tokens.cacheWrite > 0 { a.append(("gen_ai.usage.cache_creation.input_tokens", .int(tokens.cacheWrite))) }
        if tokens.reasoning > 0 { a.append(("gen_ai.usage.reasoning.output_tokens", .int(tokens.reasoning))) }
        return a
    }
}
