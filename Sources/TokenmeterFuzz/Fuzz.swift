// libFuzzer harness for hostile input. Built and run by `scripts/fuzz.sh`, which compiles it
// with `-DFUZZING -sanitize=fuzzer,address` in its own scratch folder (`.build-fuzz`): libFuzzer then
// provides `main` and calls `LLVMFuzzerTestOneInput` with each input. In a normal `swift build` the
// condition is off and this target is a stub that says how to run it, so it costs the normal build one
// tiny file and needs nothing installed.
//
// Targets (`TOKENMETER_FUZZ`):
// - `event` (default): the bytes are one Kafka message value. `EventDecoder.decode` must accept it with the
//   guarantees the pipeline relies on, or reject it with a reason; then the whole `Pipeline.process` path
//   (dedup, pricing, windows, alerts) must give the same verdict and a rejected message must change no
//   total; every rollup row and alert it produces must be valid JSON; every 4,096 inputs a checkpoint of
//   that state must decode again.
//   Every alert, fitted for publishing, stays under 64 KiB whatever names the input carried; every 4,096
//   inputs the name table is rebuilt from the names in use and no open row may change.
// - `toml`: the bytes are a configuration file. `ConfigLoader.parse` must return a config or problems,
//   each with a message and a 1-based line and column.
// - `otlp`: the bytes are one message of an OTLP trace topic, read as `otlp_proto` and as `otlp_json`.
//   `TraceDecoder.check` must say readable or give a reason; every span of a readable message must come out
//   as ignored, rejected with a reason, or an event with the guarantees of `event` above (and a 48-digit hex
//   id); `Pipeline.process` must reject exactly the unreadable ones, changing no total, and count no more
//   events than the decoder found.
// - `secret`: the bytes are the content of a secret file (`kafka.secret_files`). `SecretFile.read` must
//   return the value (the file without its line ends) or a problem that never repeats the content.
// A broken guarantee calls `fatalError`, which libFuzzer reports as a crash with the input saved.
//
// `TOKENMETER_FUZZ_SEEDS=DIR` writes a seed corpus (generated events of every shape and bad class, or
// the TOML files given in `TOKENMETER_FUZZ_TOML_SEEDS`) to DIR and exits.

#if FUZZING
import Foundation
import TokenmeterCore
import TrafficGenerator

enum FuzzTarget { case event, toml, secret, otlp }

nonisolated(unsafe) var target = FuzzTarget.event
nonisolated(unsafe) var decoder = EventDecoder()
nonisolated(unsafe) var pipeline: Pipeline! = nil
nonisolated(unsafe) var config: TokenmeterConfig! = nil
nonisolated(unsafe) var inputs = 0
nonisolated(unsafe) var offset: Int64 = 0
let wallNow = RFC3339.parse("2026-12-01T12:00:00Z")!
let encoder = RollupEncoder()

/// Rules of every kind, so that fuzzed events reach every tracker of the alert engine.
let pipelineConfig = """
    [kafka]
    topics = ["llm-usage"]
    [rollups]
    dir = "/nonexistent/tokenmeter-fuzz"
    windows = ["1m", "1h", "1d"]
    tags = ["environment", "customer"]
    max_keys_per_window = 64
    [[budget]]
    name = "everything"
    period = "day"
    amount_usd = 0.01
    thresholds = [1, 50, 100, 1000]
    forecast = true
    [[budget]]
    name = "owners"
    owner = "*o*"
    period = "hour"
    amount_usd = 0.000001
    [[spike]]
    name = "spike"
    by = "workflow"
    window = "1m"
    factor = 1.5
    min_usd = 0.000001
    [[outcome_limit]]
    name = "unit"
    workflow = "*"
    outcome = "*"
    max_cost_usd = 0.000001
    period = "day"

    """ + Catalogue.referencePricesTOML()

func fail(_ what: String, _ bytes: UnsafeRawBufferPointer) -> Never {
    let text = String(decoding: bytes.prefix(2000), as: UTF8.self)
    fatalError("fuzz invariant broken: \(what)\ninput (\(bytes.count) bytes): \(text)")
}

func freshPipeline() -> Pipeline {
    Pipeline(config: config, instance: "fuzz")
}

/// libFuzzer's driver (exported by libclang_rt.fuzzer). SwiftPM links an executable's entry point as
/// `<module>_main` (`--defsym main=tokenmeter_fuzz_main`), so libFuzzer's own `main` is never pulled in:
/// this entry point hands the command line to the driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("tokenmeter_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    // Seed mode (scripts/fuzz.sh): write the seed corpus and return, without starting the fuzzer.
    let env = ProcessInfo.processInfo.environment
    if let dir = env["TOKENMETER_FUZZ_SEEDS"] {
        if env["TOKENMETER_FUZZ"] == "toml" { target = .toml }
        if env["TOKENMETER_FUZZ"] == "secret" { target = .secret }
        if env["TOKENMETER_FUZZ"] == "otlp" { target = .otlp }
        writeSeeds(dir, tomlFiles: (env["TOKENMETER_FUZZ_TOML_SEEDS"] ?? "").split(separator: ":").map(String.init))
        return 0
    }
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) }
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let env = ProcessInfo.processInfo.environment
    if env["TOKENMETER_FUZZ"] == "toml" { target = .toml }
    if env["TOKENMETER_FUZZ"] == "secret" { target = .secret }
    if env["TOKENMETER_FUZZ"] == "otlp" { target = .otlp }
    switch ConfigLoader.parse(text: target == .otlp ? tracesConfig : pipelineConfig, file: "fuzz.toml") {
    case .success(let c): config = c
    case .failure(let e): fatalError("the fuzz pipeline's config is invalid: \(e)")
    }
    pipeline = freshPipeline()
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    switch target {
    case .event: fuzzEvent(bytes)
    case .toml: fuzzTOML(bytes)
    case .secret: fuzzSecret(bytes)
    case .otlp: fuzzTraces(bytes)
    }
    return 0
}

// MARK: Events

func fuzzEvent(_ bytes: UnsafeRawBufferPointer) {
    inputs += 1
    let verdict = decoder.decode(bytes)
    if let reason = verdict {
        if reason.detail.isEmpty { fail("rejected without a reason (\(reason.code))", bytes) }
    } else {
        checkDecoded(bytes)
    }

    // The whole event path. The partition comes from the input's length, so that duplicates and late
    // events meet on one partition often enough.
    let partition = Int32(bytes.count % 3)
    let before = pipeline.metrics
    offset += 1
    let result = pipeline.process(bytes, topicIndex: 0, partition: partition, offset: offset,
                                  messageTime: bytes.count % 2 == 0 ? wallNow - 3_600_000 : nil, wallNow: wallNow)
    let after = pipeline.metrics
    switch result {
    case .rejected(let reason):
        if reason.detail.isEmpty { fail("pipeline rejected without a reason (\(reason.code))", bytes) }
        // The decoder's verdict comes first: a message it rejects, the pipeline rejects with its code.
        if let v = verdict, v.code != reason.code { fail("decoder said \(v.code), pipeline \(reason.code)", bytes) }
        if after.usageEvents != before.usageEvents || after.outcomeEvents != before.outcomeEvents
            || after.duplicates != before.duplicates || after.lateEvents != before.lateEvents
            || after.unpricedRequests != before.unpricedRequests || after.unrecognizedUsage != before.unrecognizedUsage {
            fail("a rejected message changed a total", bytes)
        }
    case .counted, .late, .duplicate:
        if let v = verdict { fail("decoder rejected (\(v)) but the pipeline counted it", bytes) }
    }

    for alert in pipeline.alerts.takePending() {
        checkJSON(alert.jsonBytes, "alert", bytes)
        let fitted = alert.fittedForPublishing().jsonBytes
        checkJSON(fitted, "fitted alert", bytes)
        if fitted.count > 64 * 1024 { fail("a fitted alert of \(fitted.count) bytes", bytes) }
        if alert.fittedForPublishing().id != alert.id { fail("fitting changed the alert id", bytes) }
    }
    // Now and then with the name table's order brought up to date on a copy: rows sorted by name ranks
    // must come out in exactly the order of names compared as bytes.
    var ranked: Dimensions? = nil
    if inputs % 64 == 0 && !pipeline.pending.isEmpty {
        ranked = pipeline.dimensions
        ranked!.names.updateOrder()
    }
    for p in pipeline.pending {
        let w = p.window
        let label = config.rollups.windows[w.sizeIndex].label, size = config.rollups.windows[w.sizeIndex].millis
        let rows = encoder.encode(w, label: label, size: size, dimensions: pipeline.dimensions)
        checkJSON(rows, "rollup rows", bytes)
        if let ranked, encoder.encode(w, label: label, size: size, dimensions: ranked) != rows {
            fail("rows sorted by name ranks differ from rows sorted by names", bytes)
        }
    }

    if inputs % 4096 == 0 {
        // Names are released by rebuilding the table; the open rows stay what they were.
        pipeline.dropPending(writers: Set(pipeline.pending.map(\.writer)))
        let rows = pipeline.openRowCount
        var held: [PartitionState] = []
        if pipeline.compactNames(held: &held) == nil { fail("the name table could not be rebuilt", bytes) }
        if pipeline.openRowCount != rows { fail("rebuilding the names changed the open rows", bytes) }
        // A checkpoint of whatever the fuzzer built up must read back.
        let saved = pipeline.checkpointBytes()
        let other = freshPipeline()
        do {
            let restored = try other.decodeCheckpoint(saved, restoreAlerts: true)
            if restored.partitions.count != pipeline.assigned.count { fail("checkpoint lost partitions", bytes) }
        } catch {
            fail("checkpoint does not decode: \(error)", bytes)
        }
    }
    // Bounded memory over millions of inputs: closed windows are dropped (nothing writes them) and the
    // pipeline starts over now and then.
    if inputs % 50_000 == 0 { pipeline = freshPipeline() } else { pipeline.dropPending(writers: Set(pipeline.pending.map(\.writer))) }
}

/// What the pipeline relies on in an accepted event (EventDecoder's doc comment and contract 1e).
func checkDecoded(_ bytes: UnsafeRawBufferPointer, _ decoder: EventDecoder = decoder) {
    let ev = decoder.event
    for s in [ev.workflow, ev.owner] {
        if s.isAbsent || s.count == 0 || s.count > Int32(EventDecoder.maxNameBytes) { fail("workflow/owner missing, empty or too long", bytes) }
    }
    for s in [ev.id, ev.provider, ev.serviceTier, ev.outcome] + ev.contributions.map(\.model) + ev.tags.flatMap({ [$0.name, $0.value] })
    where !s.isAbsent {
        if s.start < 0 || Int(s.start) + Int(s.count) > decoder.scratch.count { fail("string outside the scratch buffer", bytes) }
        decoder.withBytes(s) { b in
            if String(validating: b, as: UTF8.self) == nil { fail("a kept string is not valid UTF-8", bytes) }
        }
    }
    if let t = ev.timestamp, t < 0 || t > 253_402_300_799_999 { fail("timestamp out of range: \(t)", bytes) }
    if let c = ev.costOverride, c < .zero { fail("negative cost_usd", bytes) }
    if let v = ev.outcomeValue, v < .zero { fail("negative value_usd", bytes) }
    if ev.outcomeCount < 0 || ev.outcomeCount > EventDecoder.maxOutcomeCount { fail("outcome count \(ev.outcomeCount)", bytes) }
    if ev.kind == .usage && ev.contributions.isEmpty { fail("a usage event with no contribution", bytes) }
    for s in [ev.provider, ev.serviceTier] + ev.contributions.map(\.model) + ev.tags.flatMap({ [$0.name, $0.value] })
    where s.count > Int32(EventDecoder.maxNameBytes) {
        fail("a kept name over \(EventDecoder.maxNameBytes) bytes", bytes)
    }
    if !ev.unrecognizedUsage.isAbsent {
        if ev.contributions.count != 1 || ev.contributions[0].tokens != TokenCounts() {
            fail("an unrecognised block with tokens", bytes)
        }
        if ev.unrecognizedUsage.count > Int32(EventDecoder.maxBlockKeysBytes + 5) { fail("unbounded block key names", bytes) }
    }
    for c in ev.contributions {
        let t = c.tokens
        for n in [t.input, t.cacheRead, t.cacheWrite, t.cacheWrite1h, t.output, t.reasoning] where n < 0 {
            fail("negative token count", bytes)
        }
        if t.cacheRead + t.cacheWrite > t.input { fail("cache tokens \(t.cacheRead)+\(t.cacheWrite) over input \(t.input)", bytes) }
        if t.cacheWrite1h > t.cacheWrite { fail("1h cache write over cache write", bytes) }
        if t.reasoning > t.output { fail("reasoning \(t.reasoning) over output \(t.output)", bytes) }
    }
}

func checkJSON(_ out: [UInt8], _ what: String, _ input: UnsafeRawBufferPointer) {
    for line in out.split(separator: UInt8(ascii: "\n")) {
        guard (try? JSONSerialization.jsonObject(with: Data(line))) is [String: Any] else {
            fail("\(what) is not a JSON object: \(String(decoding: line.prefix(500), as: UTF8.self))", input)
        }
    }
}

// MARK: OTLP traces

/// Topic 0 holds `otlp_proto`, topic 1 `otlp_json`; the pipeline's rules as for events.
let tracesConfig = pipelineConfig.replacingOccurrences(of: #"topics = ["llm-usage"]"#, with: """
    topics = ["spans-proto", "spans-json"]
    [kafka.input_formats]
    spans-proto = "otlp_proto"
    spans-json = "otlp_json"
    [otlp.tags]
    environment = "deployment.environment"
    customer = "customer.id"
    """)
nonisolated(unsafe) var traceDecoder = TraceDecoder(settings: {
    var s = OTLPSettings()
    s.tags = [KeyValue("environment", "deployment.environment"), KeyValue("customer", "customer.id")]
    return s
}())

func fuzzTraces(_ bytes: UnsafeRawBufferPointer) {
    inputs += 1
    for (topicIndex, format) in [(0, InputFormat.otlpProto), (1, .otlpJSON)] {
        let verdict = traceDecoder.check(bytes, format: format)
        var events = 0
        if let v = verdict {
            if v.detail.isEmpty { fail("an unreadable \(format) message without a reason (\(v.code))", bytes) }
        } else {
            traceDecoder.forEachSpan(bytes, format: format) { span in
                switch span {
                case .ignored: break
                case .rejected(let r): if r.detail.isEmpty { fail("a rejected span without a reason (\(r.code))", bytes) }
                case .event:
                    events += 1
                    checkDecoded(bytes, traceDecoder.events)
                    let id = traceDecoder.events.event.id
                    if id.count != 48 { fail("a span's event id of \(id.count) characters", bytes) }
                    traceDecoder.events.withBytes(id) { b in
                        if !b.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) { fail("a span's event id is not lowercase hex", bytes) }
                    }
                }
            }
        }
        let before = pipeline.metrics
        offset += 1
        let result = pipeline.process(bytes, topicIndex: topicIndex, partition: Int32(bytes.count % 2), offset: offset,
                                      messageTime: wallNow - 60_000, wallNow: wallNow)
        let after = pipeline.metrics
        switch result {
        case .rejected(let reason):
            guard let v = verdict, v.code == reason.code else { fail("the pipeline rejected a readable \(format) message: \(reason)", bytes) }
            if after.usageEvents != before.usageEvents || after.llmSpans != before.llmSpans || after.duplicates != before.duplicates
                || after.spansIgnored != before.spansIgnored || after.spansRejectedTotal != before.spansRejectedTotal {
                fail("an unreadable \(format) message changed a total", bytes)
            }
        case .counted:
            if let v = verdict { fail("the decoder found the \(format) message unreadable (\(v)) but the pipeline counted it", bytes) }
            if after.llmSpans - before.llmSpans != Int64(events) { fail("the pipeline saw another number of LLM spans than the decoder", bytes) }
            if after.usageEvents - before.usageEvents > Int64(events) { fail("more events counted than LLM spans", bytes) }
        case .late, .duplicate:
            fail("a trace message's result is per span, not \(result)", bytes)
        }
    }
    for alert in pipeline.alerts.takePending() { checkJSON(alert.jsonBytes, "alert", bytes) }
    if inputs % 50_000 == 0 { pipeline = freshPipeline() } else { pipeline.dropPending(writers: Set(pipeline.pending.map(\.writer))) }
}

/// Requests of every kind the reader meets: LLM spans of three providers with cache and reasoning tokens,
/// other spans, a negative count, a span without a workflow, an error status, in both encodings.
func traceSeeds() -> [[UInt8]] {
    let t0: UInt64 = 1_795_996_800_000_000_000
    func span(_ n: UInt8, _ model: String, _ provider: String, _ tokens: TokenCounts, workflow: String? = "agent",
              status: Int = 0, extra: [(String, OTLPValue)] = []) -> OTLPSpan {
        OTLPSpan(traceID: Array(repeating: 7, count: 15) + [n], spanID: Array(repeating: 9, count: 7) + [n], name: "chat",
                 startNanos: t0, endNanos: t0 + UInt64(n) * 1_000_000,
                 attributes: OTLPTraces.usageAttributes(workflow: workflow, model: model, provider: provider, tokens: tokens) + extra,
                 statusCode: status)
    }
    let http = OTLPSpan(traceID: Array(repeating: 1, count: 16), spanID: Array(repeating: 2, count: 8), name: "GET",
                        startNanos: t0, endNanos: t0, attributes: [("http.response.status_code", .int(200)), ("ok", .bool(true)),
                                                                   ("ratio", .double(0.5))])
    let requests: [[OTLPResourceSpans]] = [
        [OTLPResourceSpans(resource: [("service.name", .string("svc")), ("team", .string("t")), ("deployment.environment", .string("prod"))],
                           spans: [span(1, "gpt-4o-mini", "openai", TokenCounts(input: 1000, cacheRead: 200, output: 300, reasoning: 50)),
                                   http,
                                   span(2, "claude-sonnet-4-5", "anthropic", TokenCounts(input: 5000, cacheRead: 3000, cacheWrite: 1000, output: 800)),
                                   span(3, "gemini-2.5-flash", "gcp.gemini", TokenCounts(input: 900, output: 400, reasoning: 300), status: 2,
                                        extra: [("customer.id", .int(42))])])],
        [OTLPResourceSpans(resource: [("service.namespace", .string("ns"))],
                           spans: [span(4, "o3", "openai", TokenCounts(input: -3, output: 1)), span(5, "m", "p", TokenCounts(input: 1), workflow: nil)])],
        [],
    ]
    return requests.flatMap { [OTLPTraces.proto($0), Array(OTLPTraces.json($0).utf8)] }
}

// MARK: TOML

func fuzzTOML(_ bytes: UnsafeRawBufferPointer) {
    switch ConfigLoader.parse(bytes: Array(bytes), file: "fuzz.toml") {
    case .success:
        break
    case .failure(let errors):
        if errors.diagnostics.isEmpty { fail("config refused without a problem", bytes) }
        for d in errors.diagnostics where d.message.isEmpty || d.line < 1 || d.column < 1 {
            fail("problem without a message or position: \(d)", bytes)
        }
    }
}

// MARK: Secret files

let secretPath = FileManager.default.temporaryDirectory.appendingPathComponent("tokenmeter-fuzz-secret-\(getpid())").path

func fuzzSecret(_ bytes: UnsafeRawBufferPointer) {
    let fd = open(secretPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    if fd < 0 { fail("cannot write the secret file", bytes) }
    _ = write(fd, bytes.baseAddress, bytes.count)
    close(fd)
    let read = SecretFile.read(secretPath)
    unlink(secretPath)  // nothing left in the temporary folder when the run ends, however it ends
    switch read {
    case .success(let contents):
        var expected = Array(bytes)
        while expected.last == UInt8(ascii: "\n") || expected.last == UInt8(ascii: "\r") { expected.removeLast() }
        if Array(contents.value.utf8) != expected { fail("the value is not the file without its line ends", bytes) }
    case .failure(let problem):
        if problem.message.isEmpty { fail("a refused secret file without a message", bytes) }
        // No 8-byte run of the content may reach the message (paths and reasons are ours, not the content).
        let text = Array(problem.message.utf8)
        let content = Array(bytes)
        if content.count >= 8 && text.count >= 8 {
            for start in 0...(content.count - 8) where content[start..<start + 8].allSatisfy({ $0 >= 0x41 && $0 < 0x7F }) {
                let run = content[start..<start + 8]
                for i in 0...(text.count - 8) where text[i..<i + 8].elementsEqual(run) { fail("the problem repeats the content", bytes) }
                break
            }
        }
    }
}

// MARK: Seeds

func writeSeeds(_ dir: String, tomlFiles: [String]) {
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var n = 0
    func put(_ bytes: [UInt8]) {
        n += 1
        _ = FileManager.default.createFile(atPath: "\(dir)/seed-\(n)", contents: Data(bytes))
    }
    if target == .secret {
        for s in ["s3cret-value\n", "s3cret-value\r\n", "", "\n", "p\u{0}w", "pässwörd", String(repeating: "k", count: 70_000)] {
            put(Array(s.utf8))
        }
        put([0xFF, 0xFE, 0x41])
        return
    }
    if target == .otlp {
        for seed in traceSeeds() { put(seed) }
        return
    }
    if target == .toml {
        for f in tomlFiles { if let d = FileManager.default.contents(atPath: f) { put(Array(d)) } }
        put(Array(pipelineConfig.utf8))
        return
    }
    // Every shape and bad class of the generator, late events, duplicates and CloudEvents.
    var c = TrafficConfig(seed: 7, start: RFC3339.parse("2026-11-21T08:00:00Z")!, events: 1500, spanMillis: 3_600_000)
    c.badFraction = 0.15
    c.lateFraction = 0.05
    c.duplicateFraction = 0.02
    c.costOverrideFraction = 0.05
    var gen = TrafficGenerator(c)
    for e in gen.generate(1500) { put(Array(e.line.utf8)) }
    // The block shapes the generator does not write: Bedrock Converse, Cohere v2, Gemini Interactions, xAI's
    // listed left-out reasoning, an empty `iterations`, blocks no row reads, names at their bounds, repeated
    // keys, and models whose provider comes from the name.
    let wf = #""workflow":"w","owner":"o","timestamp":"2026-11-21T08:00:00Z""#
    let long = String(repeating: "x", count: 257)
    for line in [
        #"{\#(wf),"model":"us.anthropic.claude-sonnet-4-6","usage":{"inputTokens":121,"outputTokens":20,"cacheReadInputTokens":5,"cacheWriteInputTokens":3,"totalTokens":149}}"#,
        #"{\#(wf),"model":"command-r-08-2024","usage":{"billed_units":{"input_tokens":377,"output_tokens":90},"tokens":{"input_tokens":577}}}"#,
        #"{\#(wf),"model":"gemini-2.5-flash","usage":{"total_input_tokens":9,"total_output_tokens":13,"total_thought_tokens":211,"total_cached_tokens":0,"total_tool_use_tokens":0}}"#,
        #"{\#(wf),"model":"grok-3-mini","usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":241,"completion_tokens_details":{"reasoning_tokens":228}}}"#,
        #"{\#(wf),"model":"claude-sonnet-4-6","usage":{"input_tokens":3,"cache_read_input_tokens":7,"output_tokens":5,"iterations":[]}}"#,
        #"{\#(wf),"model":"mystery","usage":{"tokens_in":10,"tokens_out":{"a":1}}}"#,
        #"{\#(wf),"model":"gemini-2.5-flash","usage":{"totalTokenCount":3512}}"#,
        #"{\#(wf),"model":"claude-opus-4-1","usage":{}}"#,
        #"{\#(wf),"model":"\#(long)"}"#,
        #"{\#(wf),"model":"m","tags":{"env":"\#(long)"}}"#,
        // Oversized fields that reach state, files, metrics and alerts: each is bad input past its bound.
        #"{\#(wf),"model":"\#(String(repeating: "m", count: 20_000))","input_tokens":5}"#,
        #"{\#(wf),"model":"m","provider":"\#(String(repeating: "p", count: 4_000))"}"#,
        #"{\#(wf),"model":"m","service_tier":"\#(String(repeating: "t", count: 4_000))"}"#,
        #"{\#(wf),"model":"m","tags":{"\#(String(repeating: "k", count: 300))":"v"}}"#,
        #"{\#(wf),"model":"\#(String(repeating: "\\\"", count: 200))"}"#,
        #"{\#(wf),"input_tokens":-1,"input_tokens":5,"tags":{"a":{},"a":"b"}}"#,
        #"{\#(wf),"usage":{"prompt_tokens":-1},"usage":{"prompt_tokens":3}}"#,
    ] { put(Array(line.utf8)) }
}

#else

@main
struct FuzzStub {
    static func main() {
        print("tokenmeter-fuzz is a libFuzzer harness: run scripts/fuzz.sh [seconds] to build and run it")
    }
}

#endif
