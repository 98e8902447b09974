import Foundation
import Testing
import TokenmeterCore

/// The OpenTelemetry Python SDK's own payloads (`scripts/otlp-fixtures.py`, made at test time): each message
/// read as `otlp_proto` and as `otlp_json` gives the same spans, with the results the script's spans call for.
/// Skipped, saying so, where the SDK is not installed; CI installs it (.ci/run).
@Suite struct TraceFixtureTests {
    static let python = ProcessInfo.processInfo.environment["TOKENMETER_OTLP_PYTHON"] ?? "/var/cache/tokenmeter-ci/venv/bin/python"

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

    @Test(.enabled(if: sdkAvailable, "the OpenTelemetry Python SDK is not installed (.ci/run installs it into /var/cache/tokenmeter-ci/venv)"))
    func bothEncodingsOfTheSDKsPayloadsGiveTheSameSpans() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokenmeter-otlp-fixtures-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/otlp-fixtures.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.python)
        p.arguments = [script, dir]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let decoder = TraceDecoder()
        var events: [SpanSummary] = [], rejected: [RejectReason] = [], ignored = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir).filter({ $0.hasSuffix(".otlp_proto") }).sorted() {
            let base = dir + "/" + name.dropLast(".otlp_proto".count)
            let proto = decoder.decodeAll(Array(try Data(contentsOf: URL(fileURLWithPath: base + ".otlp_proto"))), format: .otlpProto)
            let json = decoder.decodeAll(Array(try Data(contentsOf: URL(fileURLWithPath: base + ".otlp_json"))), format: .otlpJSON)
            #expect(proto.unreadable == nil && json.unreadable == nil, "\(name)")
            #expect(proto.spans == json.spans, "\(name): the two encodings differ")
            for s in proto.spans {
                switch s.result {
                case .event: events.append(s)
                case .rejected(let r): rejected.append(r)
                case .ignored: ignored += 1
                }
            }
        }
        // What scripts/otlp-fixtures.py writes: eight calls, one with a negative count, five other spans.
        #expect(events.count == 8)
        #expect(rejected.map(\.code) == [.badTokenCount])
        #expect(ignored == 5)
        #expect(Set(events.compactMap(\.provider)) == ["openai", "anthropic", "gcp.gemini"])
        #expect(events.filter(\.isError).map(\.model) == ["gpt-4o-2024-08-06"])
        #expect(Set(events.map { "\($0.workflow!)/\($0.owner!)" }) == ["support-bot/customer-care", "research-worker/research"])
        let gemini = events.first { $0.model == "gemini-2.5-pro" }
        #expect(gemini?.tokens == TokenCounts(input: 40000, cacheRead: 30000, output: 3000, reasoning: 2200))
        let claude = events.first { $0.model == "claude-sonnet-4-5-20250929" }
        #expect(claude?.tokens == TokenCounts(input: 12000, cacheRead: 8000, cacheWrite: 3000, output: 650))
        #expect(Set(events.map(\.id)).count == 8, "span identities are distinct")
    }
}
