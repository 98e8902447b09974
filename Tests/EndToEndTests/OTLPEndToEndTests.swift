import Foundation
import Testing
import TokenmeterCore
import TokenmeterKafka
import TrafficGenerator

/// OpenTelemetry traces from the Collector's Kafka exporter as input: payloads made by the official
/// OpenTelemetry Python SDK (`scripts/otlp-fixtures.py`, run at test time) go to the development broker in
/// both encodings (one topic `otlp_proto`, one `otlp_json`), a real daemon consumes them, and the rollup
/// rows must equal the test's own sums, computed from the spans with Foundation's JSON parser (not
/// tokenmeter's reader). Then everything is sent again: the Collector's retry must count once. A malformed
/// protobuf, a truncated message and a bad JSON message are dead letters with their reason; a span with a
/// negative token count is rejected on its own, the rest of its message counts.
@Suite struct OTLPEndToEndTests {
    static let python = ProcessInfo.processInfo.environment["TOKENMETER_OTLP_PYTHON"]
        ?? "/var/cache/tokenmeter-ci/venv/bin/python"

    static let sdkAvailable: Bool = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.common.trace_encoder"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Writes the SDK's payloads to `dir`: `NN.otlp_proto` and `NN.otlp_json` per message.
    static func fixtures(_ dir: String) throws -> [(proto: [UInt8], json: [UInt8])] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [repository.appendingPathComponent("scripts/otlp-fixtures.py").path, dir]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw HarnessError("scripts/otlp-fixtures.py failed") }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".otlp_proto") }.sorted()
        return try names.map { name in
            let base = dir + "/" + name.dropLast(".otlp_proto".count)
            return (Array(try Data(contentsOf: URL(fileURLWithPath: base + ".otlp_proto"))),
                    Array(try Data(contentsOf: URL(fileURLWithPath: base + ".otlp_json"))))
        }
    }

    /// What the rollups must hold per (day, workflow, owner, model), from the OTLP/JSON payloads: an LLM span
    /// is one with a `gen_ai.usage.*` attribute; one with a negative count is rejected; the workflow is the
    /// span's or resource's `gen_ai.agent.name`, else `service.name`; the owner `team`, else
    /// `service.namespace`; the model the response model, else the request model (the documented defaults).
    static func expected(_ messages: [[UInt8]], times: Int64) throws -> (rows: [ExpectedWindowKey: ExpectedRow], rejected: Int, other: Int) {
        var rows: [ExpectedWindowKey: ExpectedRow] = [:]
        var rejected = 0, other = 0
        func attributes(_ list: Any?) -> [String: Any] {
            var out: [String: Any] = [:]
            for case let kv as [String: Any] in (list as? [Any]) ?? [] {
                let v = kv["value"] as? [String: Any] ?? [:]
                out[kv["key"] as! String] = v["stringValue"] ?? (v["intValue"] as? String).flatMap { Int64($0) } ?? v["intValue"]
            }
            return out
        }
        for message in messages {
            let request = try JSONSerialization.jsonObject(with: Data(message)) as! [String: Any]
            for case let rs as [String: Any] in request["resourceSpans"] as! [Any] {
                let resource = attributes((rs["resource"] as? [String: Any])?["attributes"])
                for case let ss as [String: Any] in rs["scopeSpans"] as! [Any] {
                    for case let span as [String: Any] in ss["spans"] as! [Any] {
                        let a = attributes(span["attributes"])
                        guard a.keys.contains(where: { $0.hasPrefix("gen_ai.usage.") }) else { other += 1; continue }
                        func count(_ name: String) -> Int64 { a[name] as? Int64 ?? 0 }
                        let names = ["input_tokens", "output_tokens", "cache_read.input_tokens", "cache_creation.input_tokens",
                                     "reasoning.output_tokens"].map { "gen_ai.usage." + $0 }
                        if names.contains(where: { count($0) < 0 }) { rejected += 1; continue }
                        func first(_ keys: [String]) -> String? {
                            for k in keys { if let v = (a[k] ?? resource[k]) as? String { return v } }
                            return nil
                        }
                        let endMillis = Int64(span["endTimeUnixNano"] as! String)! / 1_000_000
                        let key = ExpectedWindowKey(windowMillis: 86_400_000, windowStart: endMillis - endMillis % 86_400_000,
                                                    workflow: first(["gen_ai.agent.name", "service.name"])!,
                                                    owner: first(["team", "service.namespace"])!,
                                                    model: (a["gen_ai.response.model"] ?? a["gen_ai.request.model"]) as? String)
                        var r = ExpectedRow()
                        r.requests = times
                        r.errors = ((span["status"] as? [String: Any])?["code"] as? Int == 2) ? times : 0
                        r.inputTokens = count(names[0]) * times
                        r.outputTokens = count(names[1]) * times
                        r.cacheReadTokens = count(names[2]) * times
                        r.cacheWriteTokens = count(names[3]) * times
                        r.reasoningTokens = count(names[4]) * times
                        rows[key, default: ExpectedRow()].add(r)
                    }
                }
            }
        }
        return (rows, rejected, other)
    }

    /// The rollups' 1d rows with only what the spans say (tokens, requests, errors): prices are the price
    /// table's business, tested elsewhere.
    static func tokenRows(_ sums: RollupSums) -> [ExpectedWindowKey: ExpectedRow] {
        var out: [ExpectedWindowKey: ExpectedRow] = [:]
        for (k, v) in sums.rows where k.windowMillis == 86_400_000 {
            var r = ExpectedRow()
            r.requests = v.requests; r.errors = v.errors; r.inputTokens = v.inputTokens; r.outputTokens = v.outputTokens
            r.cacheReadTokens = v.cacheReadTokens; r.cacheWriteTokens = v.cacheWriteTokens; r.reasoningTokens = v.reasoningTokens
            out[k] = r
        }
        return out
    }

    @Test(.enabled(if: sdkAvailable, "the OpenTelemetry Python SDK is not installed (.ci/run installs it into /var/cache/tokenmeter-ci/venv)"),
          .timeLimit(.minutes(2)))
    func collectorPayloadsInBothEncodingsAreCountedOnce() throws {
        let dir = try Harness.tempDir("otlp")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let messages = try Self.fixtures(dir + "/payloads")
        #expect(messages.count >= 3)
        let broker = try Harness.Broker(partitions: 1, topics: ["spans-proto", "spans-json", "spans-dlq", "llm-alerts"],
                                        log: dir + "/broker.log")
        defer { broker.stop() }
        let configPath = dir + "/tokenmeter.toml"
        try """
            [kafka]
            brokers = "\(broker.bootstrap)"
            group_id = "otlp-e2e"
            topics = ["spans-proto", "spans-json"]
            alerts_topic = "llm-alerts"
            dead_letter_topic = "spans-dlq"
            [kafka.input_formats]
            spans-proto = "otlp_proto"
            spans-json = "otlp_json"
            [kafka.properties]
            "session.timeout.ms" = "6000"
            "heartbeat.interval.ms" = "500"
            "auto.offset.reset" = "earliest"
            [rollups]
            dir = "\(dir)/rollups"
            windows = ["1d"]
            idle_close = "1s"
            tags = ["environment"]
            instance = "otlp"
            [otlp.tags]
            environment = "deployment.environment"
            [state]
            dir = "\(dir)/state"
            checkpoint_interval = "500ms"
            [http]
            listen = "127.0.0.1:0"
            \(Catalogue.referencePricesTOML())
            """.write(toFile: configPath, atomically: true, encoding: .utf8)

        let producer = try KafkaProducer(properties: [("bootstrap.servers", broker.bootstrap)])
        var token: UInt64 = 0
        func send(_ topic: String, _ value: [UInt8]) throws {
            token += 1
            try value.withUnsafeBytes { try producer.produce(topic: topic, key: nil, value: $0, token: token) }
        }
        // Unreadable messages first: they must not hold up (or change) what follows.
        let truncated = Array(messages[0].proto.dropLast(7))
        let malformed: [UInt8] = [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]   // a length past the end
        try send("spans-proto", truncated)
        try send("spans-proto", malformed)
        try send("spans-json", Array(messages[0].json.dropLast(20)))
        for m in messages {
            try send("spans-proto", m.proto)
            try send("spans-json", m.json)
        }
        #expect(producer.flush(timeoutMs: 10_000))

        let daemon = try Harness.start(["run", "--config", configPath], log: dir + "/run.log")
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let (once, rejectedSpans, otherSpans) = try Self.expected(messages.map(\.json), times: 2)   // one per topic
        #expect(once.count == 8, "eight LLM calls of eight models: \(once.keys)")
        #expect(rejectedSpans == 1, "the payloads hold one span with a negative count")
        #expect(otherSpans >= 4, "the payloads mix in spans without GenAI usage")
        let started = Date()
        let arrived = Harness.await(seconds: 40) { (try? Self.tokenRows(RollupSums(dir: dir + "/rollups"))) == once }
        #expect(arrived, "rollups \(String(describing: try? Self.tokenRows(RollupSums(dir: dir + "/rollups")))) != expected \(once); see \(dir)/run.log")
        print("OTLP end to end: first pass counted in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")

        let deadLetters = try Harness.readAll(brokers: broker.bootstrap, topic: "spans-dlq", expected: 3, seconds: 20)
        let reasons = deadLetters.map { d in d.headers.first { $0.0 == "tokenmeter-error" }.map { String(decoding: $0.1, as: UTF8.self) } ?? "" }
        #expect(reasons.filter { $0.hasPrefix("invalid_protobuf: ") }.count == 2, "\(reasons)")
        #expect(reasons.filter { $0.hasPrefix("invalid_json: ") }.count == 1, "\(reasons)")
        #expect(Set(deadLetters.map(\.value)) == Set([truncated, malformed, Array(messages[0].json.dropLast(20))]),
                "dead letters are the messages unchanged")

        // The Collector's retry: everything again, then one new span per topic (its late row says the
        // daemon got past the repeats). The repeats must add nothing.
        let marker = [OTLPResourceSpans(resource: [("service.name", .string("marker")), ("team", .string("qa"))], spans: [
            OTLPSpan(traceID: OTLPTraces.stableID("marker", bytes: 16, salt: 1), spanID: OTLPTraces.stableID("marker", bytes: 8, salt: 2),
                     name: "chat", startNanos: 1_795_996_900_000_000_000, endNanos: 1_795_996_900_000_000_000,
                     attributes: OTLPTraces.usageAttributes(workflow: nil, model: "gpt-4o-mini", provider: "openai",
                                                            tokens: TokenCounts(input: 11, output: 7)))])]
        for m in messages {
            try send("spans-proto", m.proto)
            try send("spans-json", m.json)
        }
        try send("spans-proto", OTLPTraces.proto(marker))
        try send("spans-json", Array(OTLPTraces.json(marker).utf8))
        #expect(producer.flush(timeoutMs: 10_000))
        var twice = once
        var markerRow = ExpectedRow()
        markerRow.requests = 2; markerRow.inputTokens = 22; markerRow.outputTokens = 14
        twice[ExpectedWindowKey(windowMillis: 86_400_000, windowStart: 1_795_996_800_000, workflow: "marker", owner: "qa",
                                model: "gpt-4o-mini")] = markerRow
        let settled = Harness.await(seconds: 40) { (try? Self.tokenRows(RollupSums(dir: dir + "/rollups"))) == twice }
        #expect(settled, "after the resend: \(String(describing: try? Self.tokenRows(RollupSums(dir: dir + "/rollups")))); see \(dir)/run.log")
        print("OTLP end to end: \(messages.count) messages in 2 encodings, sent twice, in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }

    /// `produce --format otlp_proto|otlp_json`: generated events of every shape go out as trace messages; read
    /// back and decoded, the spans carry the same tokens, models and errors as the events (read by the event
    /// decoder), and every message holds an agent span without usage.
    @Test(.timeLimit(.minutes(1)))
    func produceWritesEventsAsTraceMessages() throws {
        let dir = try Harness.tempDir("otlp-produce")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = TrafficConfig(seed: 22, start: 1_795_996_800_000, events: 300, spanMillis: 3_600_000)
        c.badFraction = 0
        c.costOverrideFraction = 0
        var generator = TrafficGenerator(c)
        let lines = generator.generate(300).map(\.line)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/events.jsonl", atomically: true, encoding: .utf8)
        let decoder = EventDecoder()
        var expected = TokenCounts(), requests = 0, errors = 0, models: Set<String> = []
        for line in lines where decoder.decode(line) == nil && decoder.event.kind == .usage {
            for contribution in decoder.event.contributions {
                expected.add(contribution.tokens)
                requests += 1
                if decoder.event.isError { errors += 1 }
                if let m = decoder.string(contribution.model) { models.insert(m) }
            }
        }
        let broker = try Harness.Broker(partitions: 1, topics: ["spans-proto", "spans-json"], log: dir + "/broker.log")
        defer { broker.stop() }
        for (format, topic) in [(InputFormat.otlpProto, "spans-proto"), (.otlpJSON, "spans-json")] {
            #expect(try Harness.run(["produce", "--brokers", broker.bootstrap, "--topic", topic, "--format", format.rawValue,
                                     "--spans-per-message", "25", dir + "/events.jsonl"], log: dir + "/produce-\(topic).log") == 0)
            let messages = try Harness.readAll(brokers: broker.bootstrap, topic: topic, expected: (requests + 24) / 25, seconds: 20)
            let traces = TraceDecoder(settings: OTLPSettings())
            var tokens = TokenCounts(), spans = 0, failed = 0, ignored = 0, seen: Set<String> = []
            for m in messages {
                let (unreadable, results) = traces.decodeAll(m.value, format: format)
                #expect(unreadable == nil, "\(format)")
                for r in results {
                    switch r.result {
                    case .event:
                        tokens.add(r.tokens); spans += 1
                        if r.isError { failed += 1 }
                        if let model = r.model { seen.insert(model) }
                    case .ignored: ignored += 1
                    case .rejected(let reason): Issue.record("\(format): a produced span was rejected: \(reason)")
                    }
                }
            }
            #expect(messages.count == (requests + 24) / 25, "\(format)")
            #expect(spans == requests, "\(format)")
            #expect(ignored == messages.count, "one agent span per message")
            #expect(failed == errors)
            #expect(seen == models)
            // The 1-hour part of a cache write has no GenAI attribute: everything else arrives.
            var sent = expected
            sent.cacheWrite1h = 0
            #expect(tokens == sent, "\(format)")
        }
    }
}
