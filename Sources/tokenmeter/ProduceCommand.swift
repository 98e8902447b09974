import ArgumentParser
import TokenmeterCore
import TokenmeterKafka
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `tokenmeter produce`: JSON Lines (or any lines) to a topic, one message per non-blank line.
struct ProduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Send each non-blank line of FILE (or stdin) as one message to a topic.",
        discussion: """
            The message value is the line's bytes without its newline. Without --key-field there is no key \
            (messages spread over the partitions). Waits for every delivery report and exits 1 if any \
            message failed.
            """)

    @Option(help: "Bootstrap servers, e.g. 127.0.0.1:9092.")
    var brokers: String

    @Option(help: "Topic to produce to.")
    var topic: String

    @Option(name: .customLong("property"), help: "librdkafka producer property k=v (repeatable).")
    var properties: [String] = []

    @Option(help: "Key each message by this top-level field of its JSON (e.g. id): the same key always goes to the same partition, as a producer's retries do.")
    var keyField: String?

    @Option(help: "lines (each line as it is), or otlp_proto / otlp_json: each line is a JSON event, sent as an LLM span of an OpenTelemetry ExportTraceServiceRequest, as the Collector's Kafka exporter writes them (docs/otlp.md).")
    var format: String = "lines"

    @Option(help: "With --format otlp_*: LLM spans per message (each message also holds one agent span without usage).")
    var spansPerMessage: Int = 20

    @Option(help: "Give up on messages not delivered within this long (librdkafka's message.timeout.ms): with no broker answering, exit 69 after it.")
    var timeout: String = "30s"

    @Argument(help: "Input file; stdin when absent or '-'.")
    var file: String?

    func validate() throws {
        guard !topic.isEmpty else { throw ValidationError("--topic must not be empty") }
        for p in properties where !p.contains("=") { throw ValidationError("--property expects k=v") }
        guard ["lines", "otlp_proto", "otlp_json"].contains(format) else {
            throw ValidationError("--format must be lines, otlp_proto or otlp_json, not \(format)")
        }
        guard spansPerMessage >= 1 && spansPerMessage <= 10_000 else { throw ValidationError("--spans-per-message must be 1 to 10000") }
        if format != "lines" && keyField != nil { throw ValidationError("--key-field is for --format lines") }
        guard let t = DurationSpec.parse(timeout), t.millis > 0 else {
            throw ValidationError("--timeout: not a duration above 0 (such as 30s, 2m): \(timeout)")
        }
    }

    var timeoutMillis: Int64 { DurationSpec.parse(timeout)?.millis ?? 30_000 }

    func run() throws {
        let overrides: [(String, String)] = properties.map { p in
            let eq = p.firstIndex(of: "=")!
            return (String(p[..<eq]), String(p[p.index(after: eq)...]))
        }
        let input: UnsafeMutablePointer<FILE>
        if let file, file != "-" {
            guard let f = fopen(file, "r") else {
                printError("tokenmeter produce: cannot open \(file): \(String(cString: strerror(errno)))")
                throw ExitCode(66)  // EX_NOINPUT
            }
            input = f
        } else {
            input = fdopen(0, "r")
        }
        defer { fclose(input) }

        // Unkeyed messages: without linger 0 the sticky partitioner sends whole batches to one partition,
        // overflowing the mock broker's ~5 MiB per partition while others stay empty.
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(properties: [
                ("bootstrap.servers", brokers),
                ("sticky.partitioning.linger.ms", "0"),
                ("linger.ms", "5"),
                ("batch.num.messages", "10000"),
                ("queue.buffering.max.messages", "1000000"),
                ("queue.buffering.max.kbytes", "1048576"),
                ("message.timeout.ms", String(timeoutMillis)),
            ] + overrides)
        } catch let error as KafkaError {
            printError("tokenmeter produce: \(error.reason)")
            throw ExitCode(78)  // EX_CONFIG: a property librdkafka rejected
        }

        var delivered = 0
        var failed = 0
        var firstFailure: KafkaError?
        producer.onDelivery = { _, error in
            if let error {
                failed += 1
                if firstFailure == nil { firstFailure = error }
            } else {
                delivered += 1
            }
        }
        var reportedErrors = 0
        producer.onError = { error in
            reportedErrors += 1
            if reportedErrors <= 5 { printError("tokenmeter produce: \(error.reason)") }
        }

        let keyBytes = keyField.map { Array($0.utf8) }
        // getline reuses one buffer for every line: no allocation per message.
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        var sent = 0
        var traces = format == "lines" ? nil : TraceBatcher(json: format == "otlp_json", spansPerMessage: spansPerMessage)
        func sendTraces(_ messages: [[UInt8]]) throws {
            for m in messages {
                try m.withUnsafeBytes { try producer.produce(topic: topic, key: nil, value: $0, token: UInt64(sent)) }
                sent += 1
            }
        }
        while true {
            let n = getline(&line, &capacity, input)
            if n < 0 { break }
            var length = n
            if length > 0 && line![length - 1] == 0x0A { length -= 1 }
            let value = UnsafeRawBufferPointer(start: line, count: length)
            if value.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            if traces != nil {
                try sendTraces(traces!.add(value))
                producer.poll(timeoutMs: 0)
                continue
            }
            if let keyBytes {
                if let span = Self.topLevelField(keyBytes, in: value) {
                    try producer.produce(topic: topic, key: UnsafeRawBufferPointer(rebasing: value[span]), value: value, token: UInt64(sent))
                } else {
                    try producer.produce(topic: topic, key: nil, value: value, token: UInt64(sent))
                }
            } else {
                try producer.produce(topic: topic, key: nil, value: value, token: UInt64(sent))
            }
            sent += 1
            if sent & 1023 == 0 { producer.poll(timeoutMs: 0) }
        }
        if traces != nil {
            try sendTraces(traces!.finish())
            printError("tokenmeter produce: \(traces!.spans) LLM spans in \(sent) \(format) messages"
                       + (traces!.skipped > 0 ? "; \(traces!.skipped) lines skipped (outcomes and events tokenmeter rejects)" : ""))
        }
        if ferror(input) != 0 {
            printError("tokenmeter produce: read error: \(String(cString: strerror(errno)))")
        }

        // Every message is reported within the timeout (delivered or timed out); a little margin for the
        // reports themselves, so a broker that never answers cannot keep this waiting.
        let deadline = ContinuousClock.now + .milliseconds(timeoutMillis + 5_000)
        var waited = 0
        while delivered + failed < sent && ContinuousClock.now < deadline {
            if producer.flush(timeoutMs: 1000) { break }
            waited += 1
            if waited % 10 == 0 {
                printError("tokenmeter produce: waiting for \(sent - delivered - failed) delivery reports")
            }
        }
        printError("produced \(delivered) messages to \(topic)")
        let unanswered = sent - delivered - failed
        if delivered == 0 && sent > 0 && (unanswered > 0 || firstFailure?.code == KafkaError.messageTimedOut) {
            printError("tokenmeter produce: no broker at \(brokers) took the messages within \(timeout) "
                       + "(\(sent) not delivered); is the address right and the broker running?")
            throw ExitCode(69)  // EX_UNAVAILABLE
        }
        if failed > 0 {
            printError("tokenmeter produce: \(failed) messages failed; first: \(firstFailure?.reason ?? "unknown")")
            throw ExitCode(1)
        }
        if delivered != sent {
            printError("tokenmeter produce: \(sent - delivered) messages without a delivery report")
            throw ExitCode(1)
        }
    }
}

extension ProduceCommand {
    /// The raw bytes of a top-level string or number field (between the quotes for a string), or nil
    /// when the line is not a JSON object or has no such field.
    static func topLevelField(_ name: [UInt8], in line: UnsafeRawBufferPointer) -> Range<Int>? {
        var s = JSONScanner(line)
        do {
            try s.beginObject()
            while let key = try s.nextKey() {
                let k = s.bytes(key)
                if !key.escaped && k.count == name.count && k.elementsEqual(name) {
                    switch try s.peekKind() {
                    case .string: let v = try s.readString(); return v.start..<v.end
                    case .number: let v = try s.readNumber(); return v.start..<v.end
                    default: return nil
                    }
                }
                try s.skipValue()
            }
        } catch {}
        return nil
    }
}
