import Testing
import TokenmeterCore
import TrafficGenerator

/// OTLP traces as input: the protobuf wire reader, the OTLP/JSON walk, the mapping of a span to an event,
/// and what is unreadable (the message) versus rejected (one span). Requests are written by
/// `OTLPTraces` (TrafficGenerator), which shares no code with the reader.
@Suite struct TraceDecoderTests {
    static let t0: UInt64 = 1_795_996_800_000_000_000   // 2026-12-01T00:00:00Z in ns

    static func llm(_ n: UInt8, workflow: String? = "support-bot", model: String = "gpt-4o-mini",
                    input: Int64 = 1200, output: Int64 = 300, extra: [(String, OTLPValue)] = [], status: Int = 0) -> OTLPSpan {
        var attributes = OTLPTraces.usageAttributes(workflow: workflow, model: model, provider: "openai",
                                                    tokens: TokenCounts(input: input, output: output))
        attributes += extra
        return OTLPSpan(traceID: Array(repeating: 0xAB, count: 15) + [n], spanID: Array(repeating: 0x0C, count: 7) + [n],
                        name: "chat \(model)", startNanos: t0, endNanos: t0 + UInt64(n) * 1_000_000_000,
                        attributes: attributes, statusCode: status)
    }

    static let http = OTLPSpan(traceID: Array(repeating: 1, count: 16), spanID: Array(repeating: 2, count: 8), name: "GET /",
                               startNanos: t0, endNanos: t0 + 5, attributes: [("http.request.method", .string("GET"))])

    static func request(_ spans: [OTLPSpan], resource: [(String, OTLPValue)] = [("service.name", .string("checkout")), ("team", .string("payments"))])
        -> [OTLPResourceSpans] {
        [OTLPResourceSpans(resource: resource, spans: spans)]
    }

    static func both(_ request: [OTLPResourceSpans], settings: OTLPSettings = OTLPSettings())
        -> [(InputFormat, (unreadable: RejectReason?, spans: [SpanSummary]))] {
        let decoder = TraceDecoder(settings: settings)
        return [(.otlpProto, decoder.decodeAll(OTLPTraces.proto(request), format: .otlpProto)),
                (.otlpJSON, decoder.decodeAll(Array(OTLPTraces.json(request).utf8), format: .otlpJSON))]
    }

    @Test func anLLMSpanBecomesAnEventInBothEncodings() {
        let span = Self.llm(3, extra: [("gen_ai.usage.cache_read.input_tokens", .int(200)),
                                       ("gen_ai.usage.reasoning.output_tokens", .int(100))])
        for (format, result) in Self.both(Self.request([span, Self.http])) {
            #expect(result.unreadable == nil, "\(format)")
            #expect(result.spans.count == 2)
            let s = result.spans[0]
            #expect(s.result == .event, "\(format)")
            #expect(s.id == OTLPTraces.hex(span.traceID) + OTLPTraces.hex(span.spanID))
            #expect(s.timestamp == EpochMillis(span.endNanos / 1_000_000))
            #expect(s.workflow == "support-bot")
            #expect(s.owner == "payments")
            #expect(s.model == "gpt-4o-mini")
            #expect(s.provider == "openai")
            #expect(s.tokens == TokenCounts(input: 1200, cacheRead: 200, output: 300, reasoning: 100))
            #expect(!s.isError)
            #expect(result.spans[1].result == .ignored, "a span without GenAI usage is not an event")
        }
    }

    @Test func precedenceOfNames() {
        // Response model over request model; the workflow list's first name over its second; a span's own
        // attribute over its resource's; the owner from the resource.
        var span = Self.llm(1, workflow: nil)
        span.attributes = span.attributes.filter { $0.0 != "gen_ai.response.model" } + [("gen_ai.response.model", .string("gpt-4o-2024-08-06")),
                                                                                         ("service.name", .string("span-service"))]
        span.attributes.removeAll { $0.0 == "gen_ai.request.model" }
        span.attributes.insert(("gen_ai.request.model", .string("gpt-4o")), at: 0)
        for (format, result) in Self.both(Self.request([span])) {
            let s = result.spans[0]
            #expect(s.result == .event, "\(format)")
            #expect(s.model == "gpt-4o-2024-08-06")
            #expect(s.workflow == "span-service", "service.name of the span beats the resource's")
            #expect(s.owner == "payments")
        }
        var named = Self.llm(2, workflow: "agent-x")
        named.attributes.append(("service.name", .string("span-service")))
        for (_, result) in Self.both(Self.request([named])) { #expect(result.spans[0].workflow == "agent-x") }
        // Owner falls back to service.namespace when no team.
        for (_, result) in Self.both(Self.request([Self.llm(4)], resource: [("service.namespace", .string("shop"))])) {
            #expect(result.spans[0].owner == "shop")
            #expect(result.spans[0].workflow == "support-bot")
        }
    }

    @Test func configuredAttributesAndTags() {
        var settings = OTLPSettings()
        settings.workflowAttributes = ["app"]
        settings.ownerAttributes = ["cost.center"]
        settings.tags = [KeyValue("environment", "deployment.environment"), KeyValue("attempt", "retry.count")]
        let span = Self.llm(5, extra: [("app", .string("search")), ("retry.count", .int(-2))])
        let resource: [(String, OTLPValue)] = [("cost.center", .string("cc-42")), ("deployment.environment", .string("prod"))]
        for (format, result) in Self.both(Self.request([span], resource: resource), settings: settings) {
            let s = result.spans[0]
            #expect(s.result == .event, "\(format)")
            #expect(s.workflow == "search")
            #expect(s.owner == "cc-42")
            #expect(Set(s.tags.map { "\($0.name)=\($0.value)" }) == ["environment=prod", "attempt=-2"])
        }
    }

    @Test func statusErrorAndMissingNames() {
        let failed = Self.llm(1, status: 2)
        let anonymous = Self.llm(2, workflow: nil)
        for (format, result) in Self.both(Self.request([failed, anonymous], resource: [("team", .string("t"))])) {
            #expect(result.spans[0].isError, "\(format)")
            guard case .rejected(let r) = result.spans[1].result else { Issue.record("\(format): no workflow was accepted"); continue }
            #expect(r.code == .missingField)
            #expect(r.detail.contains("otlp.workflow_attributes"))
        }
        for (format, result) in Self.both(Self.request([Self.llm(3)], resource: [("service.name", .string("s"))])) {
            guard case .rejected(let r) = result.spans[0].result else { Issue.record("\(format): no owner was accepted"); continue }
            #expect(r.code == .missingField)
            #expect(r.detail.hasPrefix("owner"))
        }
    }

    @Test func aNegativeTokenCountRejectsItsSpanOnly() {
        let bad = Self.llm(1, input: -5)
        let good = Self.llm(2)
        for (format, result) in Self.both(Self.request([bad, Self.http, good])) {
            #expect(result.unreadable == nil, "\(format)")
            guard case .rejected(let r) = result.spans[0].result else { Issue.record("\(format): a negative count was accepted"); continue }
            #expect(r.code == .badTokenCount)
            #expect(r.detail.contains("gen_ai.usage.input_tokens"))
            #expect(result.spans[1].result == .ignored)
            #expect(result.spans[2].result == .event)
        }
        // A part larger than its whole, by the same rule as a JSON event.
        let over = Self.llm(3, input: 10, extra: [("gen_ai.usage.cache_read.input_tokens", .int(11))])
        for (_, result) in Self.both(Self.request([over])) {
            guard case .rejected(let r) = result.spans[0].result else { Issue.record("cache over input was accepted"); continue }
            #expect(r.code == .partExceedsWhole)
        }
    }

    @Test func theSameAttributesCountAsTheSameJSONEvent() {
        // The span and the flat event with the same GenAI names settle to the same tokens and provider.
        let span = Self.llm(9, model: "claude-sonnet-4-5", input: 5000, output: 800,
                            extra: [("gen_ai.usage.cache_creation.input_tokens", .int(1000)),
                                    ("gen_ai.usage.cache_read.input_tokens", .int(3000))])
        let spans = Self.both(Self.request([span]))[0].1.spans
        let decoder = EventDecoder()
        #expect(decoder.decode(#"{"workflow":"w","owner":"o","gen_ai.response.model":"claude-sonnet-4-5","gen_ai.system":"openai","gen_ai.usage.input_tokens":5000,"gen_ai.usage.output_tokens":800,"gen_ai.usage.cache_creation.input_tokens":1000,"gen_ai.usage.cache_read.input_tokens":3000}"#) == nil)
        #expect(spans[0].tokens == decoder.event.contributions[0].tokens)
    }

    // MARK: Unreadable messages

    static func checkProto(_ bytes: [UInt8]) -> RejectReason? {
        bytes.withUnsafeBytes { TraceDecoder().check($0, format: .otlpProto) }
    }

    @Test func malformedProtobufIsUnreadable() {
        let good = OTLPTraces.proto(Self.request([Self.llm(1)]))
        #expect(Self.checkProto(good) == nil)
        #expect(Self.checkProto([]) == nil, "an empty request is a request without spans")
        // Truncated anywhere inside: a length past the end (or a cut varint or fixed64).
        for cut in [1, 2, 10, good.count / 2, good.count - 1] {
            let r = Self.checkProto(Array(good.prefix(cut)))
            #expect(r?.code == .invalidProtobuf, "cut at \(cut): \(String(describing: r))")
        }
        // An 11-byte varint.
        #expect(Self.checkProto([0x08] + Array(repeating: 0xFF, count: 10) + [0x01])?.code == .invalidProtobuf)
        // A varint running past the end.
        #expect(Self.checkProto([0x08, 0x80])?.code == .invalidProtobuf)
        // resource_spans (field 1) as a varint: a known field with the wrong wire type.
        let wrong = Self.checkProto([0x08, 0x01])
        #expect(wrong?.code == .invalidProtobuf)
        #expect(wrong?.detail.contains("resource_spans") == true)
        // A group.
        #expect(Self.checkProto([0x0B, 0x0C])?.code == .invalidProtobuf)
        // Field number 0.
        #expect(Self.checkProto([0x02, 0x00])?.code == .invalidProtobuf)
        // A string attribute value that is not UTF-8.
        var bad = Self.llm(1)
        bad.attributes.append(("x", .string("ok")))
        var bytes = OTLPTraces.proto(Self.request([bad]))
        let marker = Array("ok".utf8)
        let at = (0..<(bytes.count - 1)).last { bytes[$0] == marker[0] && bytes[$0 + 1] == marker[1] }!
        bytes[at] = 0xC3; bytes[at + 1] = 0x28
        #expect(Self.checkProto(bytes)?.code == .invalidUTF8)
    }

    @Test func unknownFieldsAreSkippedByWireType() {
        var bytes = OTLPTraces.proto(Self.request([Self.llm(1)]))
        // Field 99 of each wire type, before the request's own field.
        bytes = [0x98, 0x06, 0x05, 0x99, 0x06] + Array(repeating: 0, count: 8) + [0x9A, 0x06, 0x02, 0x61, 0x62, 0x9D, 0x06, 1, 2, 3, 4] + bytes
        let (unreadable, spans) = TraceDecoder().decodeAll(bytes, format: .otlpProto)
        #expect(unreadable == nil)
        #expect(spans.map(\.result) == [.event])
    }

    @Test func otlpJSONShapes() {
        let decoder = TraceDecoder()
        func check(_ text: String) -> RejectReason? { decoder.decodeAll(Array(text.utf8), format: .otlpJSON).unreadable }
        #expect(check(#"{"resourceSpans":[]}"#) == nil)
        #expect(check(#"{}"#) == nil)
        #expect(check(#"[1]"#)?.code == .notObject)
        #expect(check(#"{"resourceSpans":{}}"#)?.code == .badField)
        #expect(check(#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":{"stringValue":1}}]}]}]}]}"#)?.code == .badField)
        #expect(check(#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value""#)?.code == .invalidJSON)
        // Uppercase hex ids are the same span; the resource may follow the spans; snake_case keys are read.
        let text = #"{"resource_spans":[{"scopeSpans":[{"spans":[{"traceId":"ABABABABABABABABABABABABABABAB01","spanId":"0C0C0C0C0C0C0C01","endTimeUnixNano":1795996801000000000,"attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"7"}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":3}},{"key":"gen_ai.agent.name","value":{"stringValue":"w\u00e9"}}],"status":{"code":"STATUS_CODE_ERROR"}}]}],"resource":{"attributes":[{"key":"team","value":{"stringValue":"t"}}]}}]}"#
        let (unreadable, spans) = decoder.decodeAll(Array(text.utf8), format: .otlpJSON)
        #expect(unreadable == nil)
        #expect(spans.first?.result == .event)
        #expect(spans.first?.id == String(repeating: "ab", count: 15) + "01" + String(repeating: "0c", count: 7) + "01")
        #expect(spans.first?.workflow == "wé")
        #expect(spans.first?.owner == "t")
        #expect(spans.first?.isError == true)
        #expect(spans.first?.tokens == TokenCounts(input: 7, output: 3))
        #expect(spans.first?.timestamp == 1_795_996_801_000)
        // A base64 id (protobuf's generic JSON mapping, not OTLP/JSON) is a bad span, not a guess.
        let base64 = text.replacingOccurrences(of: "ABABABABABABABABABABABABABABAB01", with: "q6urq6urq6urq6urq6urAQ==")
        guard case .rejected(let r) = decoder.decodeAll(Array(base64.utf8), format: .otlpJSON).spans.first?.result else {
            Issue.record("a base64 trace id was accepted"); return
        }
        #expect(r.code == .badField)
    }

    // MARK: Through the pipeline

    static func pipeline(format: String) -> Pipeline {
        let text = """
            [kafka]
            topics = ["otlp_spans"]
            [kafka.input_formats]
            otlp_spans = "\(format)"
            [rollups]
            dir = "/nonexistent/trace-decoder-test"
            windows = ["1m"]
            """
        guard case .success(let c) = ConfigLoader.parse(text: text, file: "otlp.toml") else { fatalError("test config") }
        return Pipeline(config: c, instance: "t")
    }

    @Test func aMessageIsCountedOnceAndAnUnreadableOneChangesNothing() {
        for (format, name) in [(InputFormat.otlpProto, "otlp_proto"), (.otlpJSON, "otlp_json")] {
            let p = Self.pipeline(format: name)
            let request = Self.request([Self.llm(1), Self.http, Self.llm(2, input: -1), Self.llm(3)])
            let bytes = format == .otlpProto ? OTLPTraces.proto(request) : Array(OTLPTraces.json(request).utf8)
            let wall = EpochMillis(Self.t0 / 1_000_000)
            func send(_ b: [UInt8], _ offset: Int64) -> Pipeline.Result {
                b.withUnsafeBytes { p.process($0, topicIndex: 0, partition: 0, offset: offset, messageTime: nil, wallNow: wall) }
            }
            #expect(send(bytes, 0) == .counted)
            #expect(p.metrics.usageEvents == 2)
            #expect(p.metrics.llmSpans == 2)
            #expect(p.metrics.spansIgnored == 1)
            #expect(p.metrics.spansRejected == [.badTokenCount: 1])
            #expect(p.metrics.rejectedTotal == 0, "a rejected span is not a dead letter")
            let rows = p.openRowCount
            // The Collector's retry: the same spans again are duplicates.
            #expect(send(bytes, 1) == .counted)
            #expect(p.metrics.usageEvents == 2)
            #expect(p.metrics.duplicates == 2)
            #expect(p.metrics.llmSpans == 4, "duplicates are LLM spans too")
            // Unreadable: a dead letter, nothing else changed.
            let cut = Array(bytes.prefix(bytes.count - 3))
            guard case .rejected(let r) = send(cut, 2) else { Issue.record("\(name): a truncated message was read"); continue }
            #expect(r.code == (format == .otlpProto ? .invalidProtobuf : .invalidJSON))
            #expect(p.metrics.usageEvents == 2)
            #expect(p.metrics.llmSpans == 4)
            #expect(p.metrics.duplicates == 2)
            #expect(p.openRowCount == rows)
            #expect(p.state(topicIndex: 0, partition: 0)?.nextOffset == 3)
        }
    }
}
