import TokenmeterCore
import TokenmeterDaemon
import TrafficGenerator

/// `produce --format otlp_*`: JSON events to OpenTelemetry traces as the Collector's Kafka exporter writes
/// them. Each usage event is read by tokenmeter's own decoder (so every shape of contract 1 works) and
/// becomes one LLM span per billed call: `gen_ai.agent.name` = workflow, resource `team` = owner (the
/// default mapping, `[otlp]`), response and request model, `gen_ai.system` = provider, the `gen_ai.usage.*`
/// counts, status error, its tags as span attributes, end time = the event time. Trace and span ids are
/// stable hashes of the event id, so a resent event is the same span. Every message also holds one agent
/// span without usage, as real traces do. What OTLP's GenAI names cannot say is lost on the way: the
/// 1-hour part of a cache write (priced as a 5-minute write), `cost_usd`, `service_tier`; outcome events and
/// events tokenmeter rejects are skipped and counted.
struct TraceBatcher {
    let json: Bool
    let spansPerMessage: Int
    let decoder = EventDecoder()
    var pending: [(owner: String, span: OTLPSpan)] = []
    var spans = 0
    var skipped = 0
    var lines = 0

    init(json: Bool, spansPerMessage: Int) {
        self.json = json
        self.spansPerMessage = spansPerMessage
    }

    /// Adds one line; returns the messages that are full.
    mutating func add(_ line: UnsafeRawBufferPointer) -> [[UInt8]] {
        lines += 1
        guard decoder.decode(line) == nil, decoder.event.kind == .usage else { skipped += 1; return [] }
        let e = decoder.event
        let id = decoder.string(e.id) ?? "line-\(lines)"
        let endNanos = UInt64(max(e.timestamp ?? WallClock.now(), 0)) * 1_000_000
        var tags: [(String, OTLPValue)] = []
        for t in e.tags { tags.append((decoder.string(t.name) ?? "", .string(decoder.string(t.value) ?? ""))) }
        for (i, c) in e.contributions.enumerated() {
            var attributes = OTLPTraces.usageAttributes(workflow: decoder.string(e.workflow), model: decoder.string(c.model),
                                                        provider: decoder.string(e.provider), tokens: c.tokens)
            attributes += tags
            let span = OTLPSpan(traceID: OTLPTraces.stableID(id, bytes: 16, salt: 0),
                                spanID: OTLPTraces.stableID(id, bytes: 8, salt: UInt64(i) + 1),
                                name: "chat " + (decoder.string(c.model) ?? ""), startNanos: endNanos &- 1_000_000_000,
                                endNanos: endNanos, attributes: attributes, statusCode: e.isError ? 2 : 0)
            pending.append((decoder.string(e.owner) ?? "", span))
            spans += 1
        }
        return pending.count >= spansPerMessage ? [flush()] : []
    }

    mutating func finish() -> [[UInt8]] { pending.isEmpty ? [] : [flush()] }

    /// One request: the pending spans grouped by owner (one resource each, in order of first appearance),
    /// plus an agent span.
    private mutating func flush() -> [UInt8] {
        var owners: [String] = []
        var byOwner: [String: [OTLPSpan]] = [:]
        for (owner, span) in pending {
            if byOwner[owner] == nil { owners.append(owner) }
            byOwner[owner, default: []].append(span)
        }
        let first = pending[0].span
        pending.removeAll()
        var request = owners.map { owner in
            OTLPResourceSpans(resource: [("service.name", .string("tokenmeter-produce")), ("team", .string(owner))],
                              spans: byOwner[owner]!)
        }
        request[0].spans.append(OTLPSpan(traceID: first.traceID, spanID: OTLPTraces.stableID(OTLPTraces.hex(first.spanID), bytes: 8, salt: 99),
                                         name: "invoke_agent", startNanos: first.startNanos, endNanos: first.endNanos,
                                         attributes: [("gen_ai.operation.name", .string("invoke_agent"))]))
        return json ? Array(OTLPTraces.json(request).utf8) : OTLPTraces.proto(request)
    }
}
