/// The `otlp_json` walk: the OTLP/JSON encoding the Collector writes (the protobuf JSON mapping with the
/// OTLP changes): camelCase keys (the protobuf field names, `resource_spans`, are accepted too), `traceId`
/// and `spanId` as hex strings, 64-bit integers (`intValue`, `endTimeUnixNano`) as decimal strings or
/// numbers, `status.code` as a number or its enum name (`STATUS_CODE_ERROR`). Unknown keys are skipped.
///
/// Unreadable (the whole message a dead letter): JSON syntax, a message that is not an object, and a known
/// key with a value of the wrong shape (`resourceSpans` not an array, an attribute not an object, a
/// `stringValue` that is not a string, ...). `null` is the same as absent.
///
/// A `resourceSpans` element's `resource` may come after its `scopeSpans`: each element is read once to
/// find both, then its spans are walked with the resource's attributes at hand (sub-scanners over the
/// same bytes, no copy).
extension TraceDecoder {
    func walkJSON(_ bytes: UnsafeRawBufferPointer, emit: (SpanResult) -> Void, apply: Bool) throws(TraceJSONError) {
        var s = JSONScanner(bytes, maxDepth: EventDecoder.maxNestingDepth)
        shapeProblem = nil
        var kind = JSONValueKind.object
        do throws(JSONError) {
            kind = try s.peekKind()
            if kind != .object {
                try s.skipValue()
                try s.finish()
            } else {
                try request(&s, emit, apply: apply)
                try s.finish()
            }
        } catch {
            if let (problem, offset) = shapeProblem { throw .shape(problem, offset) }
            throw .syntax(error)
        }
        if kind != .object { throw .notObject(kind) }
    }

    private func request(_ s: inout JSONScanner, _ emit: (SpanResult) -> Void, apply: Bool) throws(JSONError) {
        try s.beginObject()
        while let k = try s.nextKey() {
            if Self.named(s, k, "resourceSpans", "resource_spans") {
                guard try array(&s) else { continue }
                while try s.nextElement() {
                    guard try object(&s, skippingNull: true, "a resourceSpans element is not an object") else { continue }
                    try resourceSpans(&s, emit, apply: apply)
                }
            } else {
                try s.skipValue()
            }
        }
    }

    /// After `{` of a ResourceSpans: notes where `resource` and `scopeSpans` are, then walks the spans.
    private func resourceSpans(_ s: inout JSONScanner, _ emit: (SpanResult) -> Void, apply: Bool) throws(JSONError) {
        var resource: Range<Int>? = nil
        var scopes: Range<Int>? = nil
        while let k = try s.nextKey() {
            if Self.named(s, k, "resource", "resource") {
                let start = s.position
                try s.skipValue()
                resource = start..<s.position
            } else if Self.named(s, k, "scopeSpans", "scope_spans") {
                let start = s.position
                try s.skipValue()
                scopes = start..<s.position
            } else {
                try s.skipValue()
            }
        }
        // Sub-scanners count from their own first byte: the resource goes down as its bytes, not a range.
        let resourceBytes = resource.map { UnsafeRawBufferPointer(rebasing: s.buffer[$0]) }
        if let resourceBytes, !apply { try resourceAttributes(resourceBytes, apply: false) }
        guard let scopes else { return }
        var sc = JSONScanner(UnsafeRawBufferPointer(rebasing: s.buffer[scopes]), maxDepth: EventDecoder.maxNestingDepth)
        guard try array(&sc) else { return }
        while try sc.nextElement() {
            guard try object(&sc, skippingNull: true, "a scopeSpans element is not an object") else { continue }
            while let k = try sc.nextKey() {
                guard Self.named(sc, k, "spans", "spans") else { try sc.skipValue(); continue }
                guard try array(&sc) else { continue }
                while try sc.nextElement() {
                    guard try object(&sc, skippingNull: true, "a span is not an object") else { continue }
                    try span(&sc, resource: resourceBytes, emit, apply: apply)
                }
            }
        }
    }

    /// After `{` of a Span.
    private func span(_ s: inout JSONScanner, resource: UnsafeRawBufferPointer?, _ emit: (SpanResult) -> Void, apply: Bool) throws(JSONError) {
        if apply { beginSpan() }
        var trace = 0..<0, spanID = 0..<0
        var end: UInt64 = 0
        var status: Int64 = 0
        while let k = try s.nextKey() {
            if Self.named(s, k, "traceId", "trace_id") {
                if let v = try string(&s, "traceId is not a string") { trace = v.start..<v.end }
            } else if Self.named(s, k, "spanId", "span_id") {
                if let v = try string(&s, "spanId is not a string") { spanID = v.start..<v.end }
            } else if Self.named(s, k, "endTimeUnixNano", "end_time_unix_nano") {
                end = try nanos(&s)
            } else if Self.named(s, k, "attributes", "attributes") {
                try attributes(&s, resource: false, apply: apply)
            } else if Self.named(s, k, "status", "status") {
                guard try object(&s, skippingNull: true, "status is not an object") else { continue }
                while let sk = try s.nextKey() {
                    if Self.named(s, sk, "code", "code") { status = try statusCode(&s) } else { try s.skipValue() }
                }
            } else {
                try s.skipValue()
            }
        }
        guard apply else { return }
        if let resource { try resourceAttributes(resource, apply: true) }
        emit(finishSpan(traceID: UnsafeRawBufferPointer(rebasing: s.buffer[trace]),
                        spanID: UnsafeRawBufferPointer(rebasing: s.buffer[spanID]), hex: true, endNanos: end, statusCode: status))
    }

    private func resourceAttributes(_ resource: UnsafeRawBufferPointer, apply: Bool) throws(JSONError) {
        var r = JSONScanner(resource, maxDepth: EventDecoder.maxNestingDepth)
        guard try object(&r, skippingNull: true, "resource is not an object") else { return }
        while let k = try r.nextKey() {
            if Self.named(r, k, "attributes", "attributes") { try attributes(&r, resource: true, apply: apply) } else { try r.skipValue() }
        }
    }

    /// An `attributes` array of `{"key": ..., "value": {...}}`.
    private func attributes(_ s: inout JSONScanner, resource: Bool, apply: Bool) throws(JSONError) {
        guard try array(&s) else { return }
        while try s.nextElement() {
            guard try object(&s, skippingNull: true, "an attribute is not an object") else { continue }
            var key: JSONSpan? = nil
            var value = AttributeValue.other
            // A string value is unescaped into `valueBuf`, the key into `keyBuf`: both stay put until applied.
            while let k = try s.nextKey() {
                if Self.named(s, k, "key", "key") {
                    key = try string(&s, "an attribute key is not a string")
                } else if Self.named(s, k, "value", "value") {
                    value = try anyValue(&s)
                } else {
                    try s.skipValue()
                }
            }
            guard apply, let key else { continue }
            if key.escaped {
                if !keyBuf.isEmpty { keyBuf.removeAll(keepingCapacity: true) }
                s.appendUnescaped(key, to: &keyBuf)
                keyBuf.withUnsafeBytes { applyAttribute($0, value, resource: resource) }
            } else {
                applyAttribute(s.bytes(key), value, resource: resource)
            }
        }
    }

    /// Applies an attribute whose string value may wait, unescaped, in `valueBuf`.
    private func applyAttribute(_ key: UnsafeRawBufferPointer, _ value: AttributeValue, resource: Bool) {
        if case .escapedString = value {
            valueBuf.withUnsafeBytes { attribute(key, .string($0), resource: resource) }
        } else {
            attribute(key, value, resource: resource)
        }
    }

    private func anyValue(_ s: inout JSONScanner) throws(JSONError) -> AttributeValue {
        guard try object(&s, skippingNull: true, "an attribute value is not an object") else { return .other }
        var value = AttributeValue.other
        while let k = try s.nextKey() {
            if Self.named(s, k, "stringValue", "string_value") {
                guard let v = try string(&s, "stringValue is not a string") else { continue }
                if v.escaped {
                    if !valueBuf.isEmpty { valueBuf.removeAll(keepingCapacity: true) }
                    s.appendUnescaped(v, to: &valueBuf)
                    value = .escapedString
                } else {
                    value = .string(s.bytes(v))
                }
            } else if Self.named(s, k, "intValue", "int_value") || Self.named(s, k, "doubleValue", "double_value") {
                let kind = try s.peekKind()
                if kind == .number {
                    value = .intText(s.bytes(try s.readNumber()))
                } else if kind == .string {
                    // 64-bit integers are strings in the protobuf JSON mapping; a double may be "NaN" and the like.
                    let v = try s.readString()
                    value = v.escaped ? .other : .intText(s.bytes(v))
                } else if kind == .null {
                    try s.readNull()
                } else {
                    throw shape("intValue or doubleValue is not a number", s.position)
                }
            } else if Self.named(s, k, "boolValue", "bool_value") {
                let kind = try s.peekKind()
                if kind == .bool { value = .bool(try s.readBool()) } else if kind == .null { try s.readNull() } else {
                    throw shape("boolValue is not a boolean", s.position)
                }
            } else {
                // arrayValue, kvlistValue, bytesValue: nothing tokenmeter reads.
                try s.skipValue()
                value = .other
            }
        }
        return value
    }

    /// `endTimeUnixNano`: a string of digits or a number (0 when absent or null).
    private func nanos(_ s: inout JSONScanner) throws(JSONError) -> UInt64 {
        let kind = try s.peekKind()
        let text: UnsafeRawBufferPointer
        switch kind {
        case .null: try s.readNull(); return 0
        case .number: text = s.bytes(try s.readNumber())
        case .string: text = s.bytes(try s.readString())
        default: throw shape("endTimeUnixNano is not a number", s.position)
        }
        var v: UInt64 = 0
        guard text.count > 0, text.count <= 19 else { throw shape("endTimeUnixNano is not a time in nanoseconds", s.position) }
        for c in text {
            guard c >= 48 && c <= 57 else { throw shape("endTimeUnixNano is not a time in nanoseconds", s.position) }
            v = v * 10 + UInt64(c - 48)
        }
        return v
    }

    private func statusCode(_ s: inout JSONScanner) throws(JSONError) -> Int64 {
        let kind = try s.peekKind()
        if kind == .null { try s.readNull(); return 0 }
        if kind == .number, case .ok(let v) = NumberText.integer(s.bytes(try s.readNumber()), limit: 2) { return v }
        if kind == .string {
            let v = s.bytes(try s.readString())
            if keyEqualsChecked(v, "STATUS_CODE_ERROR") { return 2 }
            if keyEqualsChecked(v, "STATUS_CODE_OK") { return 1 }
            if keyEqualsChecked(v, "STATUS_CODE_UNSET") { return 0 }
        }
        throw shape("status.code is not 0, 1, 2 or a STATUS_CODE_ name", s.position)
    }

    // MARK: - Shapes

    /// Enters an array; false (value consumed) when it is null.
    private func array(_ s: inout JSONScanner) throws(JSONError) -> Bool {
        let kind = try s.peekKind()
        if kind == .null { try s.readNull(); return false }
        guard kind == .array else { throw shape("a list (resourceSpans, scopeSpans, spans, attributes) is not an array", s.position) }
        try s.beginArray()
        return true
    }

    /// Enters an object; false (value consumed) when it is null.
    private func object(_ s: inout JSONScanner, skippingNull: Bool, _ problem: StaticString) throws(JSONError) -> Bool {
        let kind = try s.peekKind()
        if kind == .null && skippingNull { try s.readNull(); return false }
        guard kind == .object else { throw shape(problem, s.position) }
        try s.beginObject()
        return true
    }

    private func string(_ s: inout JSONScanner, _ problem: StaticString) throws(JSONError) -> JSONSpan? {
        let kind = try s.peekKind()
        if kind == .null { try s.readNull(); return nil }
        guard kind == .string else { throw shape(problem, s.position) }
        return try s.readString()
    }

    /// Records a shape problem and stops the walk (with a placeholder syntax error that `check` replaces).
    private func shape(_ problem: StaticString, _ offset: Int) -> JSONError {
        shapeProblem = (problem, offset)
        return JSONError(.unexpectedByte, at: offset)
    }

    @inline(__always)
    static func named(_ s: borrowing JSONScanner, _ k: JSONSpan, _ camel: StaticString, _ snake: StaticString) -> Bool {
        let key = s.bytes(k)
        if key.count == camel.utf8CodeUnitCount && keyEquals(key, camel) { return true }
        return key.count == snake.utf8CodeUnitCount && keyEquals(key, snake)
    }
}

enum TraceJSONError: Error {
    case syntax(JSONError)
    case notObject(JSONValueKind)
    case shape(StaticString, Int)
}
