/// The `otlp_proto` walk: exactly the fields of opentelemetry-proto's trace schema that an event needs,
/// every other field skipped by its wire type.
///
///     ExportTraceServiceRequest  1 resource_spans (ResourceSpans, repeated)
///     ResourceSpans              1 resource (Resource)  2 scope_spans (ScopeSpans, repeated)  3 schema_url
///     Resource                   1 attributes (KeyValue, repeated)
///     ScopeSpans                 1 scope  2 spans (Span, repeated)  3 schema_url
///     Span                       1 trace_id (bytes)  2 span_id (bytes)  8 end_time_unix_nano (fixed64)
///                                9 attributes (KeyValue, repeated)  15 status (Status)
///     Status                     3 code (enum: 0 unset, 1 ok, 2 error)
///     KeyValue                   1 key (string)  2 value (AnyValue)
///     AnyValue (one of)          1 string_value  2 bool_value  3 int_value  4 double_value
///                                5 array_value  6 kvlist_value  7 bytes_value (these three: not read)
///
/// A known field with another wire type than the schema's makes the message unreadable, as it would for a
/// generated parser; so does a key or string value that is not UTF-8 (proto3 strings are UTF-8). A field
/// that appears twice: the last one wins (a repeated resource's attributes are all read, as a merge would).
/// With `apply` false the walk only checks; otherwise it settles each span and hands it to `emit`.
extension TraceDecoder {
    func walkProto(_ bytes: UnsafeRawBufferPointer, emit: (SpanResult) -> Void, apply: Bool) throws(ProtoReader.Malformed) {
        var r = ProtoReader(bytes)
        while let (field, wire) = try r.nextField() {
            if field == 1 {
                try r.expect(wire, .lengthDelimited, field: "ExportTraceServiceRequest.resource_spans is not length-delimited")
                try resourceSpans(bytes, try r.readLengthDelimited(), emit, apply: apply)
            } else {
                try r.skip(wire)
            }
        }
    }

    private func resourceSpans(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>,
                               _ emit: (SpanResult) -> Void, apply: Bool) throws(ProtoReader.Malformed) {
        var r = ProtoReader(bytes, range)
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1:
                try r.expect(wire, .lengthDelimited, field: "ResourceSpans.resource is not length-delimited")
                let resource = try r.readLengthDelimited()
                if !apply { try resourceAttributes(bytes, resource, apply: false) }
            case 2:
                try r.expect(wire, .lengthDelimited, field: "ResourceSpans.scope_spans is not length-delimited")
                try scopeSpans(bytes, try r.readLengthDelimited(), resourceSpans: range, emit, apply: apply)
            case 3:
                try r.expect(wire, .lengthDelimited, field: "ResourceSpans.schema_url is not length-delimited")
                _ = try r.readLengthDelimited()
            default:
                try r.skip(wire)
            }
        }
    }

    private func scopeSpans(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, resourceSpans: Range<Int>,
                            _ emit: (SpanResult) -> Void, apply: Bool) throws(ProtoReader.Malformed) {
        var r = ProtoReader(bytes, range)
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1, 3:
                try r.expect(wire, .lengthDelimited, field: "ScopeSpans.scope or schema_url is not length-delimited")
                _ = try r.readLengthDelimited()
            case 2:
                try r.expect(wire, .lengthDelimited, field: "ScopeSpans.spans is not length-delimited")
                try span(bytes, try r.readLengthDelimited(), resourceSpans: resourceSpans, emit, apply: apply)
            default:
                try r.skip(wire)
            }
        }
    }

    private func span(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, resourceSpans: Range<Int>,
                      _ emit: (SpanResult) -> Void, apply: Bool) throws(ProtoReader.Malformed) {
        if apply { beginSpan() }
        var trace = 0..<0, spanID = 0..<0
        var end: UInt64 = 0
        var status: Int64 = 0
        var r = ProtoReader(bytes, range)
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1:
                try r.expect(wire, .lengthDelimited, field: "Span.trace_id is not length-delimited")
                trace = try r.readLengthDelimited()
            case 2:
                try r.expect(wire, .lengthDelimited, field: "Span.span_id is not length-delimited")
                spanID = try r.readLengthDelimited()
            case 3, 4, 5, 11, 13:
                try r.expect(wire, .lengthDelimited, field: "a Span string, bytes or message field is not length-delimited")
                _ = try r.readLengthDelimited()
            case 6, 10, 12, 14:
                try r.expect(wire, .varint, field: "a Span enum or count field is not a varint")
                _ = try r.readVarint()
            case 7:
                try r.expect(wire, .fixed64, field: "Span.start_time_unix_nano is not fixed64")
                _ = try r.readFixed64()
            case 8:
                try r.expect(wire, .fixed64, field: "Span.end_time_unix_nano is not fixed64")
                end = try r.readFixed64()
            case 9:
                try r.expect(wire, .lengthDelimited, field: "Span.attributes is not length-delimited")
                try keyValue(bytes, try r.readLengthDelimited(), resource: false, apply: apply)
            case 15:
                try r.expect(wire, .lengthDelimited, field: "Span.status is not length-delimited")
                status = try statusCode(bytes, try r.readLengthDelimited())
            case 16:
                try r.expect(wire, .fixed32, field: "Span.flags is not fixed32")
                _ = try r.readFixed32()
            default:
                try r.skip(wire)
            }
        }
        guard apply else { return }
        // The resource's attributes after the span's: ranks, not order, decide which wins.
        var rs = ProtoReader(bytes, resourceSpans)
        while let (field, wire) = try rs.nextField() {
            if field == 1 { try resourceAttributes(bytes, try rs.readLengthDelimited(), apply: true) } else { try rs.skip(wire) }
        }
        emit(finishSpan(traceID: r.bytes(trace), spanID: r.bytes(spanID), hex: false, endNanos: end, statusCode: status))
    }

    private func resourceAttributes(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, apply: Bool) throws(ProtoReader.Malformed) {
        var r = ProtoReader(bytes, range)
        while let (field, wire) = try r.nextField() {
            if field == 1 {
                try r.expect(wire, .lengthDelimited, field: "Resource.attributes is not length-delimited")
                try keyValue(bytes, try r.readLengthDelimited(), resource: true, apply: apply)
            } else {
                try r.skip(wire)
            }
        }
    }

    private func statusCode(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(ProtoReader.Malformed) -> Int64 {
        var code: Int64 = 0
        var r = ProtoReader(bytes, range)
        while let (field, wire) = try r.nextField() {
            if field == 3 {
                try r.expect(wire, .varint, field: "Status.code is not a varint")
                code = Int64(bitPattern: try r.readVarint())
            } else {
                try r.skip(wire)
            }
        }
        return code
    }

    private func keyValue(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, resource: Bool,
                          apply: Bool) throws(ProtoReader.Malformed) {
        var key = range.lowerBound..<range.lowerBound
        var value = AttributeValue.other
        var r = ProtoReader(bytes, range)
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1:
                try r.expect(wire, .lengthDelimited, field: "KeyValue.key is not length-delimited")
                key = try r.readLengthDelimited()
            case 2:
                try r.expect(wire, .lengthDelimited, field: "KeyValue.value is not length-delimited")
                value = try anyValue(bytes, try r.readLengthDelimited())
            default:
                try r.skip(wire)
            }
        }
        let keyBytes = r.bytes(key)
        if !apply {
            // Checked once, in the first pass: strings that reach names, files and metrics are UTF-8.
            guard Self.isUTF8(keyBytes) else { throw ProtoReader.Malformed(problem: "an attribute key that is not UTF-8", offset: key.lowerBound, utf8: true) }
            if case .string(let text) = value, !Self.isUTF8(text) {
                throw ProtoReader.Malformed(problem: "an attribute string value that is not UTF-8", offset: key.lowerBound, utf8: true)
            }
            return
        }
        attribute(keyBytes, value, resource: resource)
    }

    private func anyValue(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(ProtoReader.Malformed) -> AttributeValue {
        var value = AttributeValue.other
        var r = ProtoReader(bytes, range)
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1:
                try r.expect(wire, .lengthDelimited, field: "AnyValue.string_value is not length-delimited")
                value = .string(r.bytes(try r.readLengthDelimited()))
            case 2:
                try r.expect(wire, .varint, field: "AnyValue.bool_value is not a varint")
                value = .bool(try r.readVarint() != 0)
            case 3:
                try r.expect(wire, .varint, field: "AnyValue.int_value is not a varint")
                value = .int(Int64(bitPattern: try r.readVarint()))
            case 4:
                try r.expect(wire, .fixed64, field: "AnyValue.double_value is not fixed64")
                value = .double(Double(bitPattern: try r.readFixed64()))
            case 5, 6, 7:
                try r.expect(wire, .lengthDelimited, field: "AnyValue.array_value, kvlist_value or bytes_value is not length-delimited")
                _ = try r.readLengthDelimited()
                value = .other
            default:
                try r.skip(wire)
            }
        }
        return value
    }

    /// Whether `bytes` are well-formed UTF-8 (no allocation; ASCII takes the short way).
    static func isUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            let length: Int
            let minimum: UInt32
            var scalar: UInt32
            if b & 0xE0 == 0xC0 { length = 2; minimum = 0x80; scalar = UInt32(b & 0x1F) }
            else if b & 0xF0 == 0xE0 { length = 3; minimum = 0x800; scalar = UInt32(b & 0x0F) }
            else if b & 0xF8 == 0xF0 { length = 4; minimum = 0x10000; scalar = UInt32(b & 0x07) }
            else { return false }
            guard i + length <= n else { return false }
            for j in 1..<length {
                let c = bytes[i + j]
                guard c & 0xC0 == 0x80 else { return false }
                scalar = scalar << 6 | UInt32(c & 0x3F)
            }
            guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return false }
            i += length
        }
        return true
    }
}
